"""The command line: `fastbp demo`, `fastbp train`, `fastbp predict`, and model files.

Training runs are small (a few hundred rows, float64 where possible, case or epoch
updating) so they reuse the kernels other test modules compile.
"""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastbp import Network, cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--dtype", "float64", "--activation", "logistic", "--no-progress"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture
def labelled_csv(tmp_path):
    """150 rows, 3 raw-scale features, string labels of three well separated clusters."""
    rng = np.random.RandomState(0)
    names = np.array(["setosa", "versicolor", "virginica"])
    codes = np.repeat([0, 1, 2], 50)
    centers = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0], [0.0, 3.0, 3.0]])
    X = (centers[codes] + 0.5 * rng.normal(size=(150, 3))) * [1.0, 10.0, 100.0] + [0.0, 50.0, 500.0]
    path = write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "species"],
                     [[*x, name] for x, name in zip(X.tolist(), names[codes])])
    return path, X, names[codes]


@pytest.fixture
def capture_saved(monkeypatch):
    """Record the network each _save_model call is given, to compare with what loads back."""
    saved = []
    real = cli._save_model

    def spy(path, net, meta):
        saved.append(net)
        return real(path, net, meta)

    monkeypatch.setattr(cli, "_save_model", spy)
    return saved


def test_demo_runs_as_a_module():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "fastbp", "demo", "--quick", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    results = [line for line in done.stdout.splitlines() if line.endswith("tuples/s")]
    xor = [line for line in results if line.startswith("xor ")]
    assert len(xor) == 2 and all("train accuracy 100.0%" in line for line in xor)
    digits = [line for line in results if line.startswith("digits ")]
    assert len(digits) == 1 and "test accuracy" in digits[0]
    assert "Traceback" not in done.stderr


def test_train_classification_with_string_labels(labelled_csv, tmp_path, capture_saved, capsys):
    path, X, labels = labelled_csv
    model = str(tmp_path / "flowers.model.npz")
    assert cli.main(["train", path, "--target", "species", "--epochs", "20", "--out", model,
                     *FAST]) == 0
    out = capsys.readouterr().out
    assert "3 classes" in out and "test accuracy" in out and f"saved model to {model}" in out

    trained, = capture_saved
    net, meta = cli._load_model(model)
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["feature_names"] == ["a", "b", "c"] and meta["target"] == "species"
    assert net.sizes == trained.sizes == (3, 64, 3) and net.output_activation == "softmax"
    np.testing.assert_array_equal(net.params, trained.params)
    Xs = (X - np.asarray(meta["x_mean"])) / np.asarray(meta["x_std"])
    np.testing.assert_array_equal(net.predict(Xs), trained.predict(Xs))

    preds = str(tmp_path / "preds.csv")
    assert cli.main(["predict", model, path, "--out", preds]) == 0
    header, rows = read_csv(preds)
    assert header == ["prediction", "p_setosa", "p_versicolor", "p_virginica"]
    predicted = np.array([row[0] for row in rows])
    expected = np.asarray(meta["classes"])[np.argmax(trained.predict(Xs), axis=1)]
    np.testing.assert_array_equal(predicted, expected)
    assert np.mean(predicted == labels) > 0.95


def test_train_regression_predicts_in_target_units(tmp_path, capture_saved, capsys):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(200, 2))
    y = 1000.0 + 50.0 * X[:, 0] - 30.0 * X[:, 1] + 20.0 * np.tanh(2 * X[:, 0] * X[:, 1])
    path = write_csv(tmp_path / "prices.csv", ["x1", "x2", "price"],
                     [[*x, t] for x, t in zip(X.tolist(), y.tolist())])
    model = str(tmp_path / "prices.npz")
    assert cli.main(["train", path, "--target", "price", "--epochs", "40", "--out", model,
                     *FAST]) == 0
    out = capsys.readouterr().out
    assert "regression" in out and "test RMSE" in out

    trained, = capture_saved
    net, meta = cli._load_model(model)
    assert meta["task"] == "regression" and net.output_activation == "identity"
    np.testing.assert_array_equal(net.params, trained.params)

    preds = str(tmp_path / "preds.csv")
    assert cli.main(["predict", model, path, "--out", preds]) == 0
    header, rows = read_csv(preds)
    assert header == ["prediction"]
    predicted = np.array([float(row[0]) for row in rows])
    Xs = (X - np.asarray(meta["x_mean"])) / np.asarray(meta["x_std"])
    expected = trained.predict(Xs)[:, 0] * meta["y_std"][0] + meta["y_mean"][0]
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    r2 = 1 - np.sum((predicted - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 > 0.9


def test_train_npy_binary_saves_next_to_the_file(tmp_path, capsys):
    rng = np.random.RandomState(2)
    X = rng.normal(size=(120, 2))
    data = np.column_stack([X, (X[:, 0] + X[:, 1] > 0)]).astype(np.float64)
    np.save(tmp_path / "points.npy", data)
    assert cli.main(["train", str(tmp_path / "points.npy"), "--target", "-1", "--mode", "epoch",
                     "--epochs", "100", *FAST]) == 0
    model = tmp_path / "points.fastbp.npz"
    assert f"saved model to {model}" in capsys.readouterr().out
    net, meta = cli._load_model(model)
    # two classes: one logistic output unit, as scikit-learn's MLPClassifier has
    assert net.sizes[-1] == 1 and net.output_activation == "logistic" and net.loss == "log_loss"
    assert meta["classes"] == [0, 1] and meta["target_index"] == 2
    # the table still holds its target column: predict drops it
    assert cli.main(["predict", str(model), str(tmp_path / "points.npy")]) == 0
    header, rows = read_csv_text(capsys.readouterr().out)
    assert header == ["prediction", "p_0", "p_1"]
    accuracy = np.mean(np.array([int(row[0]) for row in rows]) == data[:, 2])
    assert accuracy > 0.9


def read_csv_text(text):
    rows = list(csv.reader(text.splitlines()))
    return rows[0], rows[1:]


def test_model_file_needs_no_pickle(tmp_path):
    net = Network([4, 3, 2], activation="tanh", output_activation="softmax", loss="log_loss",
                  dtype=np.float32, random_state=0)
    meta = {"task": "classification", "classes": ["no", "yes"], "feature_names": list("abcd"),
            "x_mean": [0.5] * 4, "x_std": [2.0] * 4}
    path = tmp_path / "model.bin"  # any name: the file is not renamed to .npz
    cli._save_model(path, net, meta)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"params", "layout", "sizes", "header"}
        assert all(data[key].dtype != object for key in data.files)
        header = json.loads(str(data["header"]))
    assert header["format_version"] == cli.MODEL_VERSION and header["dtype"] == "float32"
    assert header["sizes"] == [4, 3, 2] and header["classes"] == ["no", "yes"]
    loaded, meta_back = cli._load_model(path)
    assert loaded.params.dtype == np.float32 and loaded.activation == "tanh"
    np.testing.assert_array_equal(loaded.params, net.params)
    assert meta_back["x_std"] == [2.0] * 4


@pytest.fixture
def bad_files(tmp_path, labelled_csv):
    path, _, _ = labelled_csv
    write_csv(tmp_path / "words.csv", ["a", "b", "y"], [[1, "foo", "x"], [2, 3, "z"]])
    write_csv(tmp_path / "holes.csv", ["a", "b", "y"], [[1, 2, "x"], [2, "", "z"], [3, 4, "x"]])
    np.savez(tmp_path / "only_x.npz", X=np.zeros((3, 2)))
    return {"good": path, "dir": str(tmp_path)}


@pytest.mark.parametrize("argv, problem", [
    (["train", "{dir}/absent.csv", "--target", "y"], "absent.csv: no such file"),
    (["train", "{good}", "--target", "colour"], "unknown target column 'colour'"),
    (["train", "{dir}/words.csv", "--target", "y"], "feature column 'b' is not numeric"),
    (["train", "{dir}/holes.csv", "--target", "y"], "feature column 'b' has a missing"),
    (["train", "{good}", "--target", "species", "--hidden", "64,x"], "--hidden"),
    (["train", "{good}", "--target", "species", "--hidden", "0"], "layer sizes must be >= 1"),
    (["train", "{good}"], "--target COLUMN is required"),
    (["train", "{dir}/only_x.npz"], "needs arrays X and y"),
    (["train", "{good}", "--target", "species", "--task", "regression"], "numeric target"),
    (["predict", "{good}", "{good}"], "not a fastbp model"),
])
def test_bad_input_is_one_line_and_exit_code_2(bad_files, argv, problem, capsys):
    argv = [arg.format(**bad_files) for arg in argv]
    assert cli.main(argv + ["--no-progress"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_every_option_is_documented_with_its_default():
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    for name, parser in commands.items():
        for action in parser._actions:
            if action.dest in ("help", "file", "model", "target"):
                continue
            assert action.help and "default" in action.help, (name, action.option_strings)


def test_main_returns_exit_codes(capsys):
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
