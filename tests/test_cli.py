"""The command line: `fastbp demo`, `fastbp train`, `fastbp predict`, and model files.

Training runs are small (a few hundred rows, float64 where possible, case or epoch
updating) so they reuse the kernels other test modules compile.
"""
import csv
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastbp
from fastbp import Network, cli, io

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

    monkeypatch.setattr(cli.commands, "_save_model", spy)
    return saved


DIGITS_PART = """
import argparse, json
from numba.core import event
compiled = []

class Compiles(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__name__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Compiles())
from fastbp.cli import demo
demo._digits(argparse.Namespace(seed=0, n_jobs=1, quick=True, progress=False))
print(json.dumps(compiled))
"""


def test_the_demo_compiles_its_digits_kernels_aside(tmp_path, monkeypatch):
    """A first demo (no kernel of these sources cached) compiles the digits network's kernels
    in a second process (_compile.compile_aside): what that process runs (demo_digits, also a
    `fastbp compile` configuration) compiles every kernel the demo's digits part then calls,
    which compiles none; and a cache that holds kernels is no first run."""
    from fastbp._kernels import _cache
    cache = tmp_path / "cache"
    monkeypatch.setenv("FASTBP_CACHE_DIR", str(cache))
    assert _cache.holds_no_kernels()
    from fastbp._compile import compile_aside, demo_digits, end_aside
    from fastbp._threads import usable_cores
    aside = compile_aside(demo_digits, 1)
    if aside is None:  # one core: nothing to compile on beside this process
        assert usable_cores() < 2
        demo_digits(1)
    else:
        assert end_aside(aside, 900)
    assert not _cache.holds_no_kernels()
    assert compile_aside(demo_digits, 1) is None
    env = dict(os.environ, FASTBP_NATIVE="0",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", DIGITS_PART], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_demo_ends_the_process_compiling_aside(monkeypatch):
    """run_demo starts compile_aside before XOR, hands its process to the digits part (which
    waits for it) and ends it however the demo ends (here: interrupted in the digits part)."""
    from fastbp.cli import demo
    events = []

    class Aside:  # a process of compile_aside that is still compiling
        done = False

        def wait(self, timeout=None):
            if not self.done:
                raise subprocess.TimeoutExpired("python", timeout)
            return -9

        def poll(self):
            return -9 if self.done else None

        def kill(self):
            self.done = True
            events.append("kill")

    def digits(args, aside):
        events.append(("digits", type(aside).__name__))
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "compile_aside", lambda f, *a: events.append((f.__name__, a)) or Aside())
    monkeypatch.setattr(demo, "_xor", lambda args: events.append("xor"))
    monkeypatch.setattr(demo, "_digits", digits)
    assert cli.main(["demo", "--no-progress", "--plot", ""]) == 130
    assert events == [("demo_digits", (1,)), "xor", ("digits", "Aside"), "kill"]


def test_demo_runs_as_a_module(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "fastbp", "demo", "--quick", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert (tmp_path / "fastbp-demo.png").stat().st_size > 1000  # the digits run's curves
    assert done.returncode == 0, done.stderr
    results = [line for line in done.stdout.splitlines() if line.endswith("tuples/s")]
    xor = [line for line in results if line.startswith("xor ")]
    assert len(xor) == 2 and all("train accuracy 100.0%" in line for line in xor)
    outputs = [line.split(":", 1)[1].split("(")[0].split() for line in done.stdout.splitlines()
               if "outputs for (0,0)" in line]
    assert len(outputs) == 2  # a learned XOR: every output within 0.05 of its target
    assert all(abs(float(o) - t) < 0.05 for row in outputs for o, t in zip(row, (0, 1, 1, 0)))
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
    assert header["format_version"] == io.archive.FORMAT_VERSION and header["dtype"] == "float32"
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


# -- tampered model files: every one is a one-line error with exit code 2, never a traceback ----
def _model_arrays(tmp_path):
    """The arrays of a good saved model (4 features, 2 classes), and a .npz of rows to predict."""
    net = Network([4, 3, 2], activation="tanh", output_activation="softmax", loss="log_loss",
                  dtype=np.float64, random_state=0)
    meta = {"task": "classification", "classes": ["no", "yes"], "feature_names": list("abcd"),
            "target": "y", "target_index": None, "x_mean": [0.5] * 4, "x_std": [2.0] * 4,
            "y_mean": None, "y_std": None}
    good = cli._save_model(tmp_path / "good.npz", net, meta)
    with np.load(good, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    rows = tmp_path / "rows.npz"
    np.savez(rows, X=np.random.RandomState(0).normal(size=(5, 4)))
    return arrays, json.loads(str(arrays["header"])), str(rows)


def _write_model(path, arrays, header=None, **replace):
    """np.savez the model arrays with `replace`d ones and, if given, the header dict as JSON
    (or a header string/array as is)."""
    arrays = dict(arrays, **replace)
    if header is not None:
        arrays["header"] = np.array(header if isinstance(header, (str, np.ndarray)) else json.dumps(header))
    np.savez(path, **arrays)
    return str(path)


def _predict_fails(capsys, model, rows, problem):
    assert cli.main(["predict", model, rows]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert problem in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("fastbp predict: error: ")


def test_untampered_model_predicts(tmp_path, capsys):
    arrays, header, rows = _model_arrays(tmp_path)
    model = _write_model(tmp_path / "same.npz", arrays, header)
    assert cli.main(["predict", model, rows]) == 0
    out_header, out_rows = read_csv_text(capsys.readouterr().out)
    assert out_header == ["prediction", "p_no", "p_yes"] and len(out_rows) == 5


def _without(header, key):
    return {k: v for k, v in header.items() if k != key}


TAMPERED_HEADERS = [  # (id, change to the header, what the message says)
    ("no sizes", lambda h: _without(h, "sizes"), "it lacks 'sizes'"),
    ("no activation", lambda h: _without(h, "activation"), "it lacks 'activation'"),
    ("no feature names", lambda h: _without(h, "feature_names"), "it lacks 'feature_names'"),
    ("string version", lambda h: dict(h, format_version="1"), "format_version must be an integer >= 1, got '1'"),
    ("bool version", lambda h: dict(h, format_version=True), "format_version must be an integer"),
    ("no version", lambda h: _without(h, "format_version"), "format_version must be an integer"),
    ("future version", lambda h: dict(h, format_version=99), "was written in model format 99"),
    ("unknown activation", lambda h: dict(h, activation="swish"), "activation must be one of"),
    ("activation not a string", lambda h: dict(h, activation=3), "activation must be one of"),
    ("unknown output", lambda h: dict(h, output_activation="softplus"), "output_activation must be one of"),
    ("unknown loss", lambda h: dict(h, loss="hinge"), "loss must be one of"),
    ("loss and output disagree", lambda h: dict(h, output_activation="identity"), "loss='log_loss' needs"),
    ("unknown dtype", lambda h: dict(h, dtype="int32"), "'dtype' must be 'float32' or 'float64', got 'int32'"),
    ("sizes a string", lambda h: dict(h, sizes="4,3,2"), "'sizes' must be a list"),
    ("sizes of floats", lambda h: dict(h, sizes=[4.0, 3, 2]), "'sizes' must be a list"),
    ("one layer", lambda h: dict(h, sizes=[4]), "'sizes' must be a list of at least 2"),
    ("zero size", lambda h: dict(h, sizes=[4, 0, 2]), "'sizes' must be a list"),
    ("wrong params length", lambda h: dict(h, sizes=[4, 5, 2]),
     "need 37 params, the file holds an array of shape (23,)"),
    ("huge sizes", lambda h: dict(h, sizes=[10**9, 10**9]), "need 1000000001000000000 params"),
    ("feature names short", lambda h: dict(h, feature_names=["a"]), "'feature_names' must be a list of 4 strings"),
    ("feature names numbers", lambda h: dict(h, feature_names=[1, 2, 3, 4]), "'feature_names' must be"),
    ("target index out of range", lambda h: dict(h, target_index=9),
     "'target_index' must be null or an integer in 0..4"),
    ("unknown task", lambda h: dict(h, task="clustering"), "'task' must be 'classification' or 'regression'"),
    ("no task", lambda h: _without(h, "task"), "it lacks 'task'"),
    ("too few classes", lambda h: dict(h, classes=["no"]), "'classes' must be a list of 2 labels"),
    ("classes a dict", lambda h: dict(h, classes={"no": 0}), "'classes' must be a list"),
    ("mixed classes", lambda h: dict(h, classes=["no", 1]), "all strings or all numbers"),
    ("zero x_std", lambda h: dict(h, x_std=[2.0, 0.0, 2.0, 2.0]), "'x_std' must be a list of 4 finite positive"),
    ("short x_mean", lambda h: dict(h, x_mean=[0.5]), "'x_mean' must be a list of 4 finite numbers"),
    ("x_mean without x_std", lambda h: dict(h, x_std=None), "'x_mean' and 'x_std' must both"),
    ("regression without y scale", lambda h: dict(h, task="regression"), "'y_mean' must be a list of 2"),
    ("not a fastbp header", lambda h: dict(h, format="other"), "not a fastbp model (no fastbp header)"),
    ("header a list", lambda h: [h], "not a fastbp model (no fastbp header)"),
]


@pytest.mark.parametrize("change, problem", [case[1:] for case in TAMPERED_HEADERS],
                         ids=[case[0] for case in TAMPERED_HEADERS])
def test_tampered_model_header_is_a_usage_error(tmp_path, capsys, change, problem):
    arrays, header, rows = _model_arrays(tmp_path)
    model = _write_model(tmp_path / "tampered.npz", arrays, change(header))
    _predict_fails(capsys, model, rows, problem)


@pytest.mark.parametrize("header, problem", [
    ("{not json", "its header is not JSON"),
    ("", "its header is not JSON"),
    ("[" * 100_000, "its header is not JSON"),  # nested deeper than the parser recurses
    (np.array(["{}", "{}"]), "its header is not one string"),
    (np.array(7), "its header is not one string"),
], ids=["broken", "empty", "too deep", "two strings", "a number"])
def test_model_header_that_is_not_json_is_a_usage_error(tmp_path, capsys, header, problem):
    arrays, _, rows = _model_arrays(tmp_path)
    model = _write_model(tmp_path / "tampered.npz", arrays, header)
    _predict_fails(capsys, model, rows, problem)


def test_tampered_model_arrays_are_usage_errors(tmp_path, capsys):
    arrays, header, rows = _model_arrays(tmp_path)
    params = arrays["params"]
    cases = [
        (dict(params=np.full_like(params, np.nan)), "params must be finite"),
        (dict(params=params.astype(np.float32)), "params have dtype float32, the header says float64"),
        (dict(params=params.reshape(1, -1)), "the file holds an array of shape (1, 23)"),
        (dict(layout=arrays["layout"][:1]), "the layout array does not match"),
        (dict(sizes=np.array([4, 5, 2])), "differ from the sizes array [4, 5, 2]"),
        (dict(params=np.array(["x"] * params.size)), "array 'params' has dtype <U1"),
    ]
    for replace, problem in cases:
        model = _write_model(tmp_path / "tampered.npz", arrays, header, **replace)
        _predict_fails(capsys, model, rows, problem)
    model = str(tmp_path / "no_params.npz")
    np.savez(model, **{k: v for k, v in arrays.items() if k != "params"})
    _predict_fails(capsys, model, rows, "it lacks the array 'params'")
    model = str(tmp_path / "pickled.npz")
    np.savez(model, **dict(arrays, params=np.array([object()], dtype=object)))
    _predict_fails(capsys, model, rows, "not a fastbp model")


def test_truncated_model_file_is_a_usage_error(tmp_path, capsys):
    arrays, header, rows = _model_arrays(tmp_path)
    whole = (tmp_path / "good.npz").read_bytes()
    for size in (10, len(whole) // 2, len(whole) - 10):
        model = tmp_path / "truncated.npz"
        model.write_bytes(whole[:size])
        _predict_fails(capsys, str(model), rows, "not a fastbp model")


def test_corrupted_model_file_is_a_usage_error(tmp_path, capsys):
    arrays, header, rows = _model_arrays(tmp_path)
    whole = (tmp_path / "good.npz").read_bytes()
    # a str array is stored as UTF-32: change a byte inside the header member, so its CRC fails
    start = whole.index("fastbp-model".encode("utf-32-le"))
    model = tmp_path / "corrupted.npz"
    model.write_bytes(whole[:start] + b"F" + whole[start + 1:])
    _predict_fails(capsys, str(model), rows, "not a fastbp model")


def test_predict_into_a_closed_pipe_ends_quietly(tmp_path):
    """`fastbp predict ... | head -1`: the reader leaves early; no traceback, exit code 141."""
    arrays, header, _ = _model_arrays(tmp_path)
    model = _write_model(tmp_path / "model.npz", arrays, header)
    rows = tmp_path / "many.npz"
    np.savez(rows, X=np.random.RandomState(1).normal(size=(20_000, 4)))  # far more than a pipe holds
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    reader = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"],
                              stdin=subprocess.PIPE)
    done = subprocess.run([sys.executable, "-m", "fastbp", "predict", model, str(rows)],
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    reader.stdin.close()
    reader.wait(timeout=60)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


def test_ctrl_c_during_train_saves_the_last_epoch_and_exits_130(tmp_path):
    """SIGINT while `fastbp train` runs many epochs: the model of the last completed epoch is
    saved (atomically), a line says so, and the exit code is 130."""
    import signal
    import time
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20_000, 3))
    path = write_csv(tmp_path / "big.csv", ["a", "b", "c", "y"],
                     [[*x, int(x[0] > 0)] for x in X.tolist()])
    out = tmp_path / "big.model.npz"
    proc = subprocess.Popen([sys.executable, "-m", "fastbp", "train", path, "--target", "y",
                             "--epochs", "100000", "--mode", "case", "--out", str(out), *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    for line in proc.stdout:
        if "kernels ready" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: the model saved is the one after epoch" in stderr
    assert "Traceback" not in stderr and f"saved model to {out}" in stdout
    net, meta = cli._load_model(out)
    assert np.isfinite(net.predict(X[:5])).all() and meta["task"] == "classification"


def test_train_writes_a_plot(labelled_csv, tmp_path, capsys):
    path, _, _ = labelled_csv
    png = tmp_path / "curves.png"
    assert cli.main(["train", path, "--target", "species", "--epochs", "5", "--out",
                     str(tmp_path / "m.npz"), "--plot", str(png), *FAST]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote the training curves to {png}" in capsys.readouterr().out


def test_sweep_is_a_subcommand(tmp_path, capsys):
    assert cli.main(["sweep", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: fastbp sweep")
    assert cli.main(["sweep", "--config", str(tmp_path / "none.toml"), "--out", str(tmp_path)]) == 2
    assert "none.toml" in capsys.readouterr().err
    assert "sweep" in cli.build_parser().format_help()


def test_output_paths_and_the_plot_are_checked_before_training(labelled_csv, tmp_path, monkeypatch, capsys):
    """Issue 16, item 7: --out into a missing folder, and --plot without matplotlib, fail at
    once (exit 2, one line), before any training; nothing is written."""
    path, _, _ = labelled_csv
    trained = []
    monkeypatch.setattr(cli.commands, "_timed_train", lambda *a, **k: trained.append(1) / 0)
    assert cli.main(["train", path, "--target", "species", "--out", str(tmp_path / "no" / "m.npz")]) == 2
    assert "the folder" in capsys.readouterr().err and not trained
    assert cli.main(["train", path, "--target", "species", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err and not trained
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert cli.main(["train", path, "--target", "species", "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "needs matplotlib" in err and not trained and not list(tmp_path.glob("*.npz"))


def test_predict_names_what_the_model_file_is(labelled_csv, tmp_path, capsys):
    path, X, labels = labelled_csv
    est = fastbp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, labels)
    saved = fastbp.save(est, tmp_path / "clf.npz")
    assert cli.main(["predict", str(saved), path]) == 2
    err = capsys.readouterr().err
    assert "holds an MLPClassifier saved by fastbp.save" in err and "fastbp.load" in err
    assert cli.main(["predict", str(tmp_path), path]) == 2
    assert "is a folder, not a model file" in capsys.readouterr().err
    assert cli.main(["predict", str(saved), path, "--out", str(tmp_path / "no" / "p.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
