"""Epoch updating on Dask arrays (fastbp.dask_arrays): the local fit's weights bit for bit on
1, 2 and 4 workers, with every batch optimizer, validation, sample weights and checkpoints;
a worker killed mid-fit costs time, not correctness; predict and evaluate block by block;
clear refusals of what cannot run on a cluster, leaving the network unchanged."""
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastbp
from fastbp.dask_arrays import local_chunks

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [6, 8, 3]
# name: (optimizer, its options): every batch optimizer (plain SGD and momentum are separate
# compiled updates)
OPTIMIZERS = {"sgd": ("sgd", dict(learning_rate=0.5)),
              "momentum": ("sgd", dict(momentum=0.9, learning_rate=0.5)),
              "adam": ("adam", dict(learning_rate=0.05)), "rprop": ("rprop", {}),
              "quickprop": ("quickprop", dict(learning_rate=0.5))}


def data(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0]))
    Y = np.stack([(X[:, 0] * X[:, 1] > 0), X[:, 2] > 0.3, X[:, 3] + X[:, 4] > 0], axis=1)
    return X, Y.astype(float)


def kill_once(block, marks, block_info=None):
    """X's blocks pass through here on a worker: block 3, once the client has armed it (a
    file in `marks`), kills its own worker process in the middle of a pass; its rerun on
    another worker goes through."""
    armed, done = os.path.join(marks, "armed"), os.path.join(marks, "killed")
    if block_info[0]["chunk-location"][0] == 3 and os.path.exists(armed) and not os.path.exists(done):
        with open(done, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), 9)
    return block


def worker_only(block):
    """A block that may be computed only inside a Dask worker, never on the client."""
    distributed.get_worker()  # ValueError outside a worker
    return block


def on_blocks(*arrays, chunks=None):
    n = arrays[0].shape[0]
    return tuple(da.from_array(a, chunks=((chunks or local_chunks(n)),) + a.shape[1:])
                 for a in arrays)


# Bit-for-bit comparisons run in a process that loads every kernel from the disk cache (this
# process fills it first): a process that has just compiled a kernel runs Numba's in-memory
# code, which can round a fused multiply-add differently from the cached code (README, "First
# run"), and the kernels of the two sides may be compiled in different processes.
COMPARE = textwrap.dedent("""
    import json, os, signal, sys, threading, time, warnings
    import numpy as np, dask, distributed, fastbp
    sys.path.insert(0, {here!r})
    from test_dask_arrays import OPTIMIZERS, SIZES, data, kill_once, on_blocks

    def fit(X, Y, name, **extra):
        net = fastbp.Network(SIZES, random_state=1)
        optimizer, options = OPTIMIZERS[name]
        history = fastbp.train(net, X, Y, mode="epoch", epochs=15, optimizer=optimizer,
                               random_state=0, **dict(options, **extra))
        return net.params.tolist(), history.loss, history.n_epochs

    def main():
        X, Y = data()
        Xv, Yv = data(300, seed=1)
        w = np.random.default_rng(2).uniform(0.5, 2.0, size=X.shape[0])
        out = {{"local": {{}}, "cluster": {{}}}}
        for optimizer in OPTIMIZERS:
            out["local"][optimizer] = fit(X, Y, optimizer)
        extra = dict(validation=(Xv, Yv), sample_weight=w, track="end", alpha=1e-3)
        out["local"]["extras"] = fit(X, Y, "adam", **extra)
        for workers in (1, 2, 4):
            with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                                          dashboard_address=None) as cluster, \\
                    distributed.Client(cluster):
                Xd, Yd, wd = on_blocks(X, Y, w)
                out["cluster"][workers] = {{o: fit(Xd, Yd, o) for o in OPTIMIZERS}}
                out["cluster"][workers]["extras"] = fit(Xd, Yd, "adam", **dict(extra, sample_weight=wd))
        # a worker process killed in the middle of epoch 6's pass: Dask runs its tasks again
        Xk, Yk = data(40_000, seed=3)
        out["kill_local"] = fit(Xk, Yk, "rprop")
        marks = {marks!r}
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            pids = sorted(client.run(os.getpid).values())
            Xd, Yd = on_blocks(Xk, Yk)
            Xd = Xd.map_blocks(kill_once, marks, dtype=Xd.dtype)  # computed every pass

            def arm(net, history):
                if history.n_epochs == 5:
                    open(os.path.join(marks, "armed"), "w").close()

            out["kill_cluster"] = fit(Xd, Yd, "rprop", callback=arm)
            client.wait_for_workers(2, timeout=60)
            out["pids_before"], out["pids_after"] = pids, sorted(client.run(os.getpid).values())
            with open(os.path.join(marks, "killed")) as f:
                out["victim"] = int(f.read())
        print(json.dumps(out))

    if __name__ == "__main__":  # (the worker processes import this file)
        main()
""")


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """The outcome of COMPARE, run after this process has compiled (and cached) the kernels."""
    X, Y = data(200)
    for optimizer, options in OPTIMIZERS.values():  # compile: the local and the cluster side
        for x, y in ((X, Y), on_blocks(X, Y)):
            fastbp.train(fastbp.Network(SIZES, random_state=1), x, y, mode="epoch", epochs=2,
                         optimizer=optimizer, **options)
    Xv, Yv = data(50, seed=1)
    w = np.ones(X.shape[0])
    for x, y, ww in ((X, Y, w), on_blocks(X, Y, w)):
        fastbp.train(fastbp.Network(SIZES, random_state=1), x, y, mode="epoch", epochs=2,
                     optimizer="adam", validation=(Xv, Yv), sample_weight=ww, track="end",
                     alpha=1e-3)
    folder = tmp_path_factory.mktemp("dask")
    script = folder / "compare.py"
    script.write_text(COMPARE.format(here=HERE, marks=str(folder)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("workers", ["1", "2", "4"])
def test_epoch_fit_on_a_cluster_gives_the_local_weights_bit_for_bit(compared, workers):
    for name, (params, loss, epochs) in compared["cluster"][workers].items():
        local_params, local_loss, local_epochs = compared["local"][name]
        assert params == local_params, name  # every weight, bit for bit
        assert epochs == local_epochs == 15
        # the history's figures to the last bit or two: the local kernel's epoch loop may
        # divide by n through a reciprocal, the cluster's bookkeeping by n itself
        np.testing.assert_allclose(loss, local_loss, rtol=1e-14, atol=0)


def test_a_worker_killed_mid_pass_costs_time_not_correctness(compared):
    assert compared["victim"] in compared["pids_before"]  # a worker process died in a pass
    assert compared["victim"] not in compared["pids_after"]  # and the nanny started another
    assert compared["kill_cluster"][2] == 15
    assert compared["kill_cluster"][0] == compared["kill_local"][0]  # the same weights


def test_x_never_comes_to_the_client():
    X, Y = data(500)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        Xd = on_blocks(X)[0].map_blocks(worker_only, dtype=X.dtype)
        with pytest.raises(ValueError, match="No worker found"):
            Xd.compute(scheduler="sync")  # (the guard works: on the client it raises)
        net = fastbp.Network(SIZES, random_state=0)
        history = fastbp.train(net, Xd, Y, mode="epoch", epochs=3, optimizer="rprop",
                               validation=(X[:50], Y[:50]), early_stopping=True)
        assert history.n_epochs == 3 and len(history.val_loss) == 3
        assert net.predict(Xd).compute().shape == (500, 3)
        net.evaluate(Xd, Y)
        model = fastbp.MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Xd, Y[:, 0])
        assert model.n_iter_ >= 1


def test_predict_and_evaluate_run_block_by_block():
    X, Y = data(700)
    net = fastbp.Network(SIZES, random_state=3)
    Xd, Yd = on_blocks(X, Y, chunks=(250, 250, 200))
    out = net.predict(Xd)
    assert isinstance(out, da.Array) and out.chunks[0] == (250, 250, 200)
    before = net.params.copy()
    net.params[:] = 0.0  # the weights as they were at the call count, not later ones
    np.testing.assert_array_equal(out.compute(), fastbp.Network(SIZES, random_state=3).predict(X))
    net.params[:] = before
    # evaluate: the local chunks as blocks give the local figures bit for bit
    Xl, Yl = on_blocks(X, Y)
    assert net.evaluate(Xl, Yl) == net.evaluate(X, Y)
    w = np.random.default_rng(0).uniform(size=700)
    loss, accuracy = net.evaluate(Xl, Yl, sample_weight=w)
    assert (loss, accuracy) == net.evaluate(X, Y, sample_weight=w)
    # loss_gradient (the drop-ins' L-BFGS objective): the blocks' gradients in the local tree
    (loss, grad), (local_loss, local_grad) = (net.loss_gradient(Xl, Yl, alpha=1e-3, sample_weight=w),
                                              net.loss_gradient(X, Y, alpha=1e-3, sample_weight=w))
    assert loss == local_loss
    np.testing.assert_array_equal(grad, local_grad)


def test_softmax_labels_and_one_output_targets_are_taken_as_locally():
    X, Y = data(400)
    labels = Y.argmax(axis=1).astype(np.int64)
    for sizes, target, options in (([6, 5, 3], labels, dict(output_activation="softmax",
                                                                loss="log_loss")),
                                   ([6, 4, 1], Y[:, 0], {})):
        local = fastbp.Network(sizes, random_state=0, **options)
        remote = fastbp.Network(sizes, random_state=0, **options)
        fastbp.train(local, X, target, mode="epoch", epochs=3)
        Xd, Td = on_blocks(X, target)
        fastbp.train(remote, Xd, Td, mode="epoch", epochs=3)
        np.testing.assert_allclose(remote.params, local.params, rtol=1e-12, atol=1e-15)


def test_what_cannot_run_on_a_cluster_is_refused_and_changes_nothing():
    X, Y = data(300)
    Xd, Yd = on_blocks(X, Y)
    net = fastbp.Network(SIZES, random_state=0)
    before = net.params.copy()
    cases = [
        (dict(mode="case"), ValueError, "only mode='epoch'"),
        (dict(mode="minibatch"), ValueError, "each update needing the one before"),
        (dict(mode="epoch", dropout=0.2), ValueError, "dropout"),
    ]
    for options, error, words in cases:
        with pytest.raises(error, match=words):
            fastbp.train(net, Xd, Yd, epochs=2, **options)
    with pytest.raises(TypeError, match="trains on numpy arrays"):
        fastbp.train(fastbp.RNN([6, 4, 3]), Xd, Yd, mode="epoch")
    with pytest.raises(ValueError, match="network expects 6"):
        fastbp.train(net, Xd[:, :5], Yd, mode="epoch")
    with pytest.raises(ValueError, match="different numbers of rows"):
        fastbp.train(net, Xd, Yd[:200], mode="epoch")
    unknown = da.from_array(X, chunks=(100, 6))[da.from_array(X[:, 0] > -10, chunks=100)]
    with pytest.raises(ValueError, match="unknown length"):
        fastbp.train(net, unknown, Yd, mode="epoch")
    # values are checked where the blocks live, by the first pass: before any update
    bad = X.copy()
    bad[250, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        fastbp.train(net, on_blocks(bad)[0], Yd, mode="epoch")
    with pytest.raises(ValueError, match="Y must lie in"):
        fastbp.train(fastbp.Network(SIZES, loss="log_loss"), Xd, on_blocks(Y * 2)[0], mode="epoch")
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        fastbp.train(net, Xd, Yd, mode="epoch", sample_weight=-np.ones(300))
    with pytest.raises(ValueError, match="0 for every tuple"):
        fastbp.train(net, Xd, Yd, mode="epoch", sample_weight=np.zeros(300))
    with pytest.raises(TypeError, match="X must be a Dask array too"):
        fastbp.train(net, X, Yd, mode="epoch")
    with pytest.raises(ValueError, match="Y has row blocks of unknown length"):
        fastbp.train(net, Xd, da.from_array(Y, chunks=(100, 3))[da.from_array(Y[:, 0] > -1, chunks=100)],
                     mode="epoch")
    np.testing.assert_array_equal(net.params, before)
    # the values are checked before the run draws its seed or loads a checkpoint
    state = net.random_state_.get_state()[1].copy()
    with pytest.raises(ValueError, match="X contains NaN"):
        fastbp.train(net, on_blocks(bad)[0], Yd, mode="epoch")
    np.testing.assert_array_equal(net.random_state_.get_state()[1], state)
    # a numpy Y (and weights) beside a Dask X: cut into X's blocks
    local = fastbp.Network(SIZES, random_state=0)
    fastbp.train(local, X, Y, mode="epoch", epochs=3, random_state=0)
    fastbp.train(net, Xd, Y, mode="epoch", epochs=3, random_state=0)
    np.testing.assert_allclose(net.params, local.params, rtol=1e-12, atol=1e-15)


def test_checkpoint_resume_and_interrupt_on_a_cluster(tmp_path):
    X, Y = data(400)
    Xd, Yd = on_blocks(X, Y)
    path = tmp_path / "run.npz"
    whole = fastbp.Network(SIZES, random_state=0)
    fastbp.train(whole, Xd, Yd, mode="epoch", epochs=8, optimizer="rprop", random_state=0)
    part = fastbp.Network(SIZES, random_state=0)
    fastbp.train(part, Xd, Yd, mode="epoch", epochs=4, optimizer="rprop", random_state=0,
                 checkpoint=path)
    resumed = fastbp.Network(SIZES, random_state=0)
    history = fastbp.train(resumed, Xd, Yd, mode="epoch", epochs=8, optimizer="rprop",
                           random_state=0, checkpoint=path, resume=True)
    assert history.n_epochs == 8
    np.testing.assert_array_equal(resumed.params, whole.params)

    # Ctrl-C inside an epoch's pass on the cluster: the epoch never happened
    from fastbp import dask_arrays
    net = fastbp.Network(SIZES, random_state=0)
    real = dask_arrays.BlockData.gradient
    calls = []

    def interrupted(self, params, grad):
        calls.append(1)
        if len(calls) == 4:  # the pass of epoch 3, after its update
            raise KeyboardInterrupt
        return real(self, params, grad)

    dask_arrays.BlockData.gradient = interrupted
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = fastbp.train(net, Xd, Yd, mode="epoch", epochs=8, optimizer="rprop",
                                   random_state=0)
    finally:
        dask_arrays.BlockData.gradient = real
    assert history.stopped_by == "interrupted" and history.n_epochs == 2
    assert any(issubclass(w.category, fastbp.InterruptedWarning) for w in caught)
    two = fastbp.Network(SIZES, random_state=0)
    fastbp.train(two, Xd, Yd, mode="epoch", epochs=2, optimizer="rprop", random_state=0)
    np.testing.assert_array_equal(net.params, two.params)


def test_import_fastbp_does_not_import_dask():
    code = "import sys, fastbp; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(HERE))


@pytest.mark.parametrize("solver", ["rprop", "quickprop", "lbfgs"])
def test_the_drop_ins_full_batch_solvers_fit_dask_arrays(solver):
    X, Y = data(600)
    y = Y[:, 0] + 2 * Y[:, 1]  # four classes
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=600)
    Xd, yd, wd = on_blocks(X, y, w)
    options = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of a short fit
        local = fastbp.MLPClassifier(**options).fit(X, y, sample_weight=w)
        remote = fastbp.MLPClassifier(**options).fit(Xd, yd, sample_weight=wd)
    np.testing.assert_array_equal(remote.classes_, local.classes_)
    assert remote.n_iter_ == local.n_iter_ and remote.n_features_in_ == 6
    np.testing.assert_allclose(remote._net.params, local._net.params, rtol=1e-10, atol=1e-13)
    assert remote.score(X, y) == local.score(X, y)
    target = X[:, 0] - 2 * X[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = fastbp.MLPRegressor(**options).fit(X, target)
        remote = fastbp.MLPRegressor(**options).fit(Xd, on_blocks(target)[0])
    np.testing.assert_allclose(remote._net.params, local._net.params, rtol=1e-10, atol=1e-13)


def test_the_drop_ins_refuse_what_needs_every_update_in_turn():
    X, Y = data(300)
    Xd, yd = on_blocks(X, Y[:, 0])
    for options, words in ((dict(solver="adam"), "full-batch solvers"),
                           (dict(solver="sgd"), "each update needing the one before"),
                           (dict(solver="rprop", early_stopping=True), "validation_data"),
                           (dict(solver="rprop", class_weight="balanced"), "sample_weight")):
        with pytest.raises(ValueError, match=words):
            fastbp.MLPClassifier(**options).fit(Xd, yd)
    with pytest.raises(ValueError, match="one label per row"):
        fastbp.MLPClassifier(solver="rprop").fit(Xd, on_blocks(Y)[0])
    # a refused call leaves a fitted model as it was, its data's values included
    model = fastbp.MLPClassifier(hidden_layer_sizes=(4,), solver="rprop", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xd, yd)
    params, attributes = model._net.params.copy(), set(vars(model))
    bad = X.copy()
    bad[5, 0] = np.inf
    for call in (lambda: model.fit(on_blocks(bad)[0], yd),
                 lambda: model.fit(Xd, yd, sample_weight=np.ones(299)),
                 lambda: model.partial_fit(Xd, yd)):
        with pytest.raises(ValueError):
            call()
        assert set(vars(model)) == attributes and model.n_features_in_ == 6
        np.testing.assert_array_equal(model._net.params, params)
        np.testing.assert_array_equal(model.coefs_[0].ravel(), params[:24])
