"""scripts/sweep.py (fastbp.sweep): a small sweep end to end locally and on a Dask
LocalCluster, refusals of bad grids, failures recorded, a killed sweep resumed with every
run recorded exactly once, and memory-mapped data."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastbp
from fastbp import sweep

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "sweep.py"

GRID = """
[data]
n_samples = [300, 600]
n_features = [5]
n_classes = [2, 3, 0]
seed = [0]
[model]
hidden = [[6]]
activation = ["logistic"]
dtype = ["float64"]
[train]
mode = ["case", "minibatch"]
learning_rate = [0.1]
epochs = [2]
batch_size = [32]
"""
N_RUNS = 2 * 3 * 2


def write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def records(out):
    with open(Path(out) / "runs.jsonl") as f:
        return [json.loads(line) for line in f]


def test_local_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "results"
    assert sweep.main(["--config", write(tmp_path, GRID), "--out", str(out), "--workers", "2",
                       "--no-progress"]) == 0
    lines = records(out)
    assert len(lines) == N_RUNS and len({r["run_id"] for r in lines}) == N_RUNS
    for r in lines:
        assert r["status"] == "ok", r.get("error")
        assert set(r["config"]) == {"data", "model", "train"}
        assert r["config"]["train"]["n_jobs"] == 1 and r["config"]["data"]["noise"] == 0.0  # defaults
        assert np.isfinite(r["final_loss"]) and r["epochs"] == 2 and r["seconds"] > 0
        assert r["tuples_per_second"] > 0 and r["peak_memory_bytes"] > 10 * 2 ** 20
        assert r["fastbp_version"] == fastbp.__version__ and r["numba_version"] and r["host"]
        assert (r["accuracy"] is None) == (r["config"]["data"]["n_classes"] == 0)
        if r["accuracy"] is not None:
            assert 0 <= r["accuracy"] <= 1
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N_RUNS and {row["mode"] for row in rows} == {"case", "minibatch"}
    assert (out / "throughput.png").stat().st_size > 1000 and (out / "loss.png").stat().st_size > 1000

    # the same command again: nothing to run, nothing recorded twice
    capsys.readouterr()
    assert sweep.main(["--config", write(tmp_path, GRID), "--out", str(out), "--no-progress"]) == 0
    assert f"{N_RUNS} already recorded ok, 0 to run" in capsys.readouterr().out
    assert len(records(out)) == N_RUNS


def test_same_runs_give_the_same_numbers_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = write(tmp_path, GRID)
    local, remote = tmp_path / "local", tmp_path / "dask"
    # Both sides in processes that load the kernels from the disk cache (this process's run
    # fills it first): code Numba has just compiled in memory can round a fused multiply-add
    # differently from the machine code it keeps in the cache (last bit; see README, "First
    # run"), so this process's own numbers are not the comparison.
    assert sweep.main(["--config", grid, "--out", str(tmp_path / "warm"), "--workers", "0",
                       "--no-progress", "--no-plots"]) == 0
    assert sweep.main(["--config", grid, "--out", str(local), "--workers", "1", "--no-progress",
                       "--no-plots"]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert sweep.main(["--config", grid, "--out", str(remote), "--scheduler",
                           cluster.scheduler_address, "--no-progress", "--no-plots"]) == 0
    a = {r["run_id"]: r for r in records(local)}
    b = {r["run_id"]: r for r in records(remote)}
    assert a.keys() == b.keys() and len(b) == N_RUNS
    pids = {r["pid"] for r in b.values()}
    assert os.getpid() not in pids  # the runs ran in the cluster's worker processes
    for key in a:  # same seed and thread count: bit-identical training
        assert a[key]["final_loss"] == b[key]["final_loss"]
        assert a[key]["accuracy"] == b[key]["accuracy"]


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, capsys):
    real = fastbp.train

    def train(net, X, Y, **kwargs):
        if kwargs.get("mode") == "minibatch" and X.shape[0] > 2:
            raise RuntimeError("injected failure")
        return real(net, X, Y, **kwargs)

    monkeypatch.setattr(sys.modules["fastbp.train"], "train", train)
    grid, out = write(tmp_path, GRID), tmp_path / "results"
    assert sweep.main(["--config", grid, "--out", str(out), "--workers", "0", "--no-progress"]) == 1
    lines = records(out)
    failed = [r for r in lines if r["status"] == "failed"]
    assert len(lines) == N_RUNS and len(failed) == N_RUNS // 2
    assert all(r["error"] == "RuntimeError: injected failure" and r["config"]["train"]["mode"] == "minibatch"
               for r in failed)
    assert "run the same command again" in capsys.readouterr().err
    monkeypatch.undo()
    assert sweep.main(["--config", grid, "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    lines = records(out)
    assert len(lines) == N_RUNS and all(r["status"] == "ok" for r in lines)  # each once, redone


SLOW_GRID = """
[data]
n_samples = [20000]
n_features = [8]
n_classes = [2]
seed = [0, 1, 2, 3, 4, 5]
[model]
hidden = [[32]]
activation = ["logistic"]
[train]
mode = ["case"]
learning_rate = [0.05]
epochs = [4]
"""


def test_killed_sweep_resumes_and_records_every_run_once(tmp_path):
    grid, out = write(tmp_path, SLOW_GRID), tmp_path / "results"
    command = [sys.executable, str(SCRIPT), "--config", grid, "--out", str(out), "--workers", "1",
               "--no-progress", "--no-plots"]
    proc = subprocess.Popen(command, cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs_file = out / "runs.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if runs_file.exists() and runs_file.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-run
    proc.wait()
    first = records(out)
    assert 2 <= len(first) < 6
    with open(runs_file, "a") as f:
        f.write('{"run_id": "torn')  # as if killed mid-write too
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(first)} already recorded ok, {6 - len(first)} to run" in result.stdout
    lines = records(out)
    assert len(lines) == 6 and len({r["run_id"] for r in lines}) == 6
    assert all(r["status"] == "ok" for r in lines)
    assert [r["run_id"] for r in lines[:len(first)]] == [r["run_id"] for r in first]


def test_memmap_data_is_trained_in_place_with_the_same_result(tmp_path, monkeypatch):
    grid = GRID.replace('n_classes = [2, 3, 0]', 'n_classes = [3]').replace(
        'mode = ["case", "minibatch"]', 'mode = ["epoch"]')
    in_memory, mapped = tmp_path / "memory", tmp_path / "mapped"
    assert sweep.main(["--config", write(tmp_path, grid), "--out", str(in_memory), "--workers", "0",
                       "--no-progress", "--no-plots"]) == 0
    seen = []
    real = fastbp.train
    monkeypatch.setattr(sys.modules["fastbp.train"], "train",
                        lambda net, X, Y, **kw: seen.append(X) or real(net, X, Y, **kw))
    mapped_grid = grid.replace("[model]", "memmap = [true]\n[model]")
    data_dir = tmp_path / "data"
    assert sweep.main(["--config", write(tmp_path, mapped_grid, "mapped.toml"), "--out", str(mapped),
                       "--workers", "0", "--data-dir", str(data_dir), "--no-progress", "--no-plots"]) == 0
    assert len(list(data_dir.glob("*_X.npy"))) == 2 and not list(data_dir.glob(".*"))  # no temporaries
    assert all(isinstance(X, np.memmap) or isinstance(X.base, np.memmap) for X in seen)
    net = fastbp.Network([5, 6, 3], output_activation="softmax", loss="log_loss")
    X_checked, _ = net.check_XY(seen[-1], np.eye(3)[np.zeros(seen[-1].shape[0], dtype=int)])
    assert np.shares_memory(X_checked, seen[-1])  # validation reads it in place: no copy
    a = {r["config"]["data"]["n_samples"]: r["final_loss"] for r in records(in_memory)}
    b = {r["config"]["data"]["n_samples"]: r["final_loss"] for r in records(mapped)}
    assert a == b


BAD_GRIDS = [
    ("[data]\nn_samples = [10]\n", "[data] n_features is missing"),
    (GRID + "\n[extra]\nx = [1]\n", "unknown section(s) ['extra']"),
    (GRID.replace("seed = [0]", "seed = [0]\nsed = [1]"), "[data] unknown key(s) ['sed']"),
    (GRID.replace("n_samples = [300, 600]", "n_samples = 300"), "[data] n_samples must be a non-empty list"),
    (GRID.replace("n_samples = [300, 600]", "n_samples = []"), "[data] n_samples must be a non-empty list"),
    (GRID.replace("n_samples = [300, 600]", "n_samples = [0]"), "[data] n_samples must be >= 1"),
    (GRID.replace("n_samples = [300, 600]", "n_samples = [1.5]"), "[data] n_samples must be an integer"),
    (GRID.replace("n_classes = [2, 3, 0]", "n_classes = [1]"), "[data] n_classes must be 0"),
    (GRID.replace("n_classes = [2, 3, 0]", "n_classes = [2]\nnoise = [1.5]"), "[data] noise: the fraction"),
    (GRID.replace('hidden = [[6]]', 'hidden = [6]'), "[model] hidden: each entry must be a list"),
    (GRID.replace('hidden = [[6]]', 'hidden = [[0]]'), "[model] hidden must be >= 1"),
    (GRID.replace('activation = ["logistic"]', 'activation = ["swish"]'), "[model] activation must be one of"),
    (GRID.replace('dtype = ["float64"]', 'dtype = ["int8"]'), "[model] dtype must be one of"),
    (GRID.replace('mode = ["case", "minibatch"]', 'mode = ["online"]'), "[train] mode must be one of"),
    (GRID.replace("learning_rate = [0.1]", "learning_rate = [-0.1]"), "[train] learning_rate must be > 0"),
    (GRID.replace("learning_rate = [0.1]", "learning_rate = [nan]"), "[train] learning_rate must be finite"),
    (GRID.replace("epochs = [2]", "epochs = [0]"), "[train] epochs must be >= 1"),
    (GRID.replace("batch_size = [32]", "batch_size = [true]"), "[train] batch_size must be an integer"),
    (GRID + "n_jobs = [0]\n", "[train] n_jobs must be >= 1"),
    ("this is = not toml [", "is not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD_GRIDS, ids=[m[:40] for _, m in BAD_GRIDS])
def test_bad_grids_are_refused_before_anything_runs(tmp_path, capsys, text, message):
    out = tmp_path / "results"
    assert sweep.main(["--config", write(tmp_path, text), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists()


def test_bad_arguments(tmp_path, capsys):
    assert sweep.main(["--config", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert sweep.main(["--config", write(tmp_path, GRID), "--out", str(tmp_path / "o"), "--workers", "-1"]) == 2
    assert "--workers must be >= 0" in capsys.readouterr().err
    # --config is required: argparse's usage error, exit code 2 (scripts/sweep.py exits with it)
    assert sweep.main(["--out", str(tmp_path)]) == 2
    assert "--config" in capsys.readouterr().err


def test_the_readme_grid_is_valid_and_big_enough():
    grid = sweep.load_config(REPO / "scripts" / "sweep_grid.toml")
    runs = sweep.expand(grid)
    assert len(runs) >= 100 and max(r["data"]["n_samples"] for r in runs) == 10 ** 6


def test_a_diverging_run_is_recorded_ok_in_strict_json(tmp_path):
    grid = GRID.replace('n_classes = [2, 3, 0]', 'n_classes = [0]').replace(
        'activation = ["logistic"]', 'activation = ["relu"]').replace(
        "learning_rate = [0.1]", "learning_rate = [1e9]").replace('mode = ["case", "minibatch"]', 'mode = ["case"]')
    out = tmp_path / "results"
    assert sweep.main(["--config", write(tmp_path, grid), "--out", str(out), "--workers", "0",
                       "--no-progress"]) == 0
    text = (out / "runs.jsonl").read_text()

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    lines = [json.loads(line, parse_constant=refuse) for line in text.splitlines()]
    assert all(r["status"] == "ok" and r["stopped_by"] == "diverged" for r in lines)
    assert any(r["tuples_per_second"] is None for r in lines)  # no epoch finished to time


def test_ctrl_c_stops_the_sweep_keeping_finished_runs(tmp_path):
    grid = write(tmp_path, SLOW_GRID.replace("n_samples = [20000]", "n_samples = [300000]"))
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--config", grid, "--out", str(out),
                             "--no-progress"], cwd=REPO, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs_file = out / "runs.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (runs_file.exists() and runs_file.read_text().count("\n") >= 1):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the sweep and its workers
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted; finished runs are in" in err
    assert "Traceback" not in err, err
    lines = records(out)
    assert 1 <= len(lines) < 6 and all(r["status"] == "ok" for r in lines)


def test_plots_mark_diverged_runs_and_count_failed_ones(tmp_path, monkeypatch):
    """Issue 16, item 8: a diverged run (no finite loss) is a marked row of the loss plot, and
    the titles count the failed runs they leave out."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.axes
    marks, titles = [], []
    real_annotate, real_set = matplotlib.axes.Axes.annotate, matplotlib.axes.Axes.set
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate",
                        lambda self, text, *a, **k: marks.append(text) or real_annotate(self, text, *a, **k))
    monkeypatch.setattr(matplotlib.axes.Axes, "set",
                        lambda self, **k: titles.append(k.get("title")) or real_set(self, **k))
    row = dict(n_samples=10, n_features=2, n_classes=2, hidden="4", activation="logistic",
               dtype="float32", mode="case", learning_rate=0.1, n_params=17, status="ok",
               tuples_per_second=1e5, final_loss=0.2)
    rows = [row, dict(row, learning_rate=1e6, final_loss=None),
            dict(row, status="failed", tuples_per_second=None, final_loss=None)]
    paths = sweep.write_plots(tmp_path, rows)
    assert [p.name for p in paths] == [sweep.THROUGHPUT_PLOT, sweep.LOSS_PLOT]
    assert marks == ["diverged"]
    assert all("1 of 3 runs failed" in t for t in titles if t)
    assert any("1 run(s) diverged" in t for t in titles if t)
