"""The scripts in scripts/ run and print what the README quotes from them."""
import importlib.util
import pathlib

import numpy as np
import pytest

import fastbp

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_case_update_floor_prints_one_row_per_network(capsys):
    floor = load_script("case_update_floor")
    floor.main(["--reps", "20", "--repeats", "1", "--other-us", "100"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(floor.NETWORKS)  # header + one per network
    assert "7,510" in rows[1] and "3,201" in rows[2] and "6,337" in rows[3]  # weights + biases
    for row in rows[1:]:
        floor_us, ratio = row.strip("| ").split(" | ")[-2:]
        floor_us, ratio = float(floor_us), float(ratio.rstrip("x"))
        # the ratio is 100 us over the floor, as far as the printed roundings allow
        assert floor_us > 0
        assert 100 / (floor_us + 0.005) - 1 <= ratio <= 100 / max(floor_us - 0.005, 1e-9) + 1


def test_case_update_floor_refuses_bad_arguments():
    with pytest.raises(SystemExit):
        load_script("case_update_floor").main(["--reps", "0"])


def test_tiny_floor_hand_kernel_does_fastbps_arithmetic():
    """The hand-written 3-8-8-1 kernel the floor is measured with trains exactly as fastbp's
    case updating does (so its speed is a fair bound), up to float32 rounding."""
    floor = load_script("tiny_case_floor")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    Y = (X[:, :1] > 0).astype(np.float32)
    order = np.arange(300, dtype=np.int64)  # train()'s order without shuffling
    net = fastbp.Network(floor.SIZES, dtype=np.float32, random_state=0)
    (W1, W2, w3), (b1, b2, b3) = [w.copy() for w in net.coefs], [b.copy() for b in net.intercepts]
    w3, start = w3[:, 0].copy(), net.params.copy()
    floor.hand(W1, b1, W2, b2, w3, b3, X, Y, order, np.float32(0.1), np.uint64(8))
    fastbp.train(net, X, Y, mode="case", learning_rate=0.1, epochs=1, shuffle=False)
    assert np.abs(net.params - start).max() > 1e-3  # both trained: the weights moved
    for got, want in zip((W1, W2, w3[:, None], b1, b2, b3), net.coefs + net.intercepts):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_compare_peers_small_section_times_whole_calls(capsys):
    """--small prints one row per problem, fastbp's whole call and each peer's ratio; the
    seeds' numpy loop it compares with learns XOR."""
    peers = load_script("compare_peers")
    peers.main(["--small", "--problems", "xor-epoch,parity8-rprop", "--small-peers", "numpy",
                "--rounds", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| problem | fastbp | numpy loop | numpy loop / fastbp |")
    xor_row, rprop_row = rows[1:]
    assert xor_row.startswith("| XOR 2-2-1, epoch updating") and xor_row.count(" ms") == 2
    assert xor_row.rstrip().endswith("× |")
    assert rprop_row.startswith("| parity(8) 8-16-1, RPROP") and "| — | — |" in rprop_row
    X, Y = peers._xor()
    loss = peers.seeds_numpy_xor(X, Y, [2, 2, 1], 5000, 2.0, np.random.default_rng(0))
    assert loss < 0.01


def test_compare_peers_builds_a_proben_like_problem_of_any_shape():
    """--problems proben-<tuples>x<inputs>-<outputs> names shapes beyond the table's five:
    one hidden layer of 32, case updating, about 100,000 tuples in all."""
    peers = load_script("compare_peers")
    problem = peers.small_problem("proben-1000x16-3")
    assert problem.sizes == [16, 32, 3] and problem.mode == "case" and problem.epochs == 100
    assert problem.title == "1,000 tuples, 16-32-3, case updating, 100 epochs"
    X, Y = problem.data()
    assert X.shape == (1000, 16) and Y.shape == (1000, 3)
    assert set(Y.sum(axis=1)) == {1.0}  # one-hot classes
    assert peers.small_problem("proben-400x8-1") is peers.SMALL_PROBLEMS["proben-400x8-1"]
    assert peers.problem_list("proben-214x9-6,xor-case,proben-214x9-6") == \
        ["proben-214x9-6", "xor-case"]
    assert peers.small_problem("proben-0400x8-01") is peers.SMALL_PROBLEMS["proben-400x8-1"]


@pytest.mark.parametrize("script, argv", [
    ("epoch_times", ["--epochs", "0"]), ("epoch_times", ["--n-jobs", "0"]),
    ("epoch_times", ["--n-jobs", "two"]), ("epoch_times", ["--batch-size", "-3"]),
    ("epoch_times", ["--workloads", "huge"]), ("compare_peers", ["--epochs", "0"]),
    ("compare_peers", ["--learning-rate", "nan"]), ("compare_peers", ["--workloads", "x"]),
    ("compare_peers", ["--small", "--problems", "nope"]),
    ("compare_peers", ["--small", "--problems", "proben-0x3-1"]),
    ("compare_peers", ["--small", "--problems", "proben-100x3-5000"]),
    ("compare_sklearn", ["--repeats", "0"]), ("compare_sklearn", ["--datasets", "nope"]),
    ("tiny_case_floor", ["--rounds", "0"]), ("case_update_floor", ["--repeats", "-1"]),
    ("loop_cost", ["--epochs", "1"]), ("loop_cost", ["--modes", "batch"]),
    ("dask_epoch", ["--epochs", "0"]), ("dask_epoch", ["--workloads", "huge"]),
    ("dask_epoch", ["--rows", "5"]),
])
def test_scripts_refuse_bad_arguments_with_a_usage_error(capsys, script, argv):
    """argparse's usage error (exit code 2, one line naming the option), never a traceback."""
    with pytest.raises(SystemExit) as exit_:
        load_script(script).main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_loop_cost_prints_a_row_per_mode(capsys):
    load_script("loop_cost").main(["--epochs", "50", "--rounds", "1", "--modes", "case,epoch"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| case", "| epoch"]
    assert all(row.endswith(" ns |") for row in rows[1:])


def test_memmap_peak_trains_on_a_written_file(tmp_path, capfd):
    peak = load_script("memmap_peak")
    assert peak.main(["--rows", "5000", "--features", "6", "--dir", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    assert (tmp_path / "teacher_5000x6_X.npy").exists()
    assert "trained 1 epoch(s)" in out and "peak anonymous memory" in out and "X: 5,000 x 6 float32" in out
    with pytest.raises(SystemExit):
        peak.main(["--rows", "0"])


def test_compare_rnn_prints_a_table(capsys):
    compare = load_script("compare_rnn")
    assert compare.main(["--sequences", "40", "--steps", "5", "--hidden", "4", "--epochs", "1",
                         "--rounds", "1", "--case-subset", "10", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| per-sequence") or line.startswith("| full batch")]
    assert len(rows) == 2
    for row in rows:
        assert float(row.split("|")[2]) > 0  # fastbp's seconds per epoch
    with pytest.raises(SystemExit):
        compare.main(["--hidden", "0"])


def test_dask_epoch_fits_on_a_loopback_cluster_and_locally(capsys):
    pytest.importorskip("distributed")
    load_script("dask_epoch").main(["--workloads", "tiny", "--rows", "20000", "--epochs", "2"])
    out = capsys.readouterr().out
    assert "2 workers" in out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("tiny")]
    rows, blocks, local, cluster, ratio = int(row[1]), int(row[2]), *map(float, row[3:6])
    assert (rows, blocks) == (20000, 32) and row[7] in ("True", "False")
    assert local > 0 and cluster > 0 and ratio > 0
