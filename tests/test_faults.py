"""Faults injected into training, and what is kept: divergence, Ctrl-C (KeyboardInterrupt)
at every point of an epoch, checkpoints and resuming, concurrent fits in threads, and
Numba's threading layer."""
import importlib
import importlib.metadata
import signal
import threading
import time
import warnings

import numba
import numpy as np
import pytest

import fastbp
from fastbp import _kernels as K  # the kernels as the Python layer calls them
from fastbp import _threads
from fastbp.driver import SLICE_SECONDS
from fastbp.train import InterruptedWarning

train_module = importlib.import_module("fastbp.train")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(240, 4))
Y = (X[:, :1] * X[:, 1:2] > 0).astype(float)
MODES = [("case", "sgd"), ("minibatch", "adam"), ("epoch", "sgd")]


def network(seed=1):
    return fastbp.Network([4, 6, 1], random_state=seed)


def options(mode, optimizer, **extra):
    return dict(mode=mode, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                learning_rate=0.05, batch_size=32, epochs=10, **extra)


def snapshots_callback(store, interrupt_at=None):
    def callback(net, history):
        store.append(net.params.copy())
        if history.n_epochs == interrupt_at:
            raise KeyboardInterrupt
    return callback


# -- interruption -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, optimizer", MODES)
def test_interrupt_after_an_epoch_keeps_it(mode, optimizer):
    net, seen = network(), []
    with pytest.warns(InterruptedWarning, match="after epoch 3"):
        hist = fastbp.train(net, X, Y, callback=snapshots_callback(seen, 3), **options(mode, optimizer))
    assert hist.stopped_by == "interrupted" and hist.n_epochs == 3 == len(hist.seconds)
    assert np.array_equal(net.params, seen[-1])
    assert np.isfinite(net.predict(X)).all()


def _interrupt_after_kernel_call(monkeypatch, k):
    """Every run kernel raises KeyboardInterrupt right after its k-th call returns: Ctrl-C as
    it lands when a kernel finishes, before Python has looked at what it did."""
    calls = []
    for name in sorted(K.CALLED_FROM_PYTHON):
        if name.startswith("run_"):
            def wrapper(*args, _kernel=getattr(K, name)):  # noqa: B008  (bound per kernel)
                _kernel(*args)
                calls.append(1)
                if len(calls) == k:
                    raise KeyboardInterrupt
            monkeypatch.setattr(K, name, wrapper)


@pytest.mark.parametrize("mode, optimizer", MODES)
def test_interrupt_right_after_a_kernel_call_keeps_its_epochs(monkeypatch, mode, optimizer):
    """Ctrl-C lands just after the 4th epoch's kernel call returned, before any Python
    bookkeeping: the kernel booked the epoch itself, so the weights, the optimizer's state and
    the history agree at epoch 4, and training on from there equals training 4 + 2 epochs."""
    _interrupt_after_kernel_call(monkeypatch, 4)
    net, seen = network(), []
    with pytest.warns(InterruptedWarning, match="after epoch 4"):
        hist = fastbp.train(net, X, Y, callback=snapshots_callback(seen), **options(mode, optimizer))
    assert hist.n_epochs == 4 and all(len(getattr(hist, k)) == 4 for k in ("loss", "seconds", "learning_rate"))
    assert len(seen) == 3  # the callback of epoch 4 never ran
    monkeypatch.undo()
    ref = network()
    fastbp.train(ref, X, Y, **dict(options(mode, optimizer), epochs=4))
    assert np.array_equal(ref.params, net.params)


def test_real_sigint_stops_within_a_slice():
    """SIGINT from another thread while training runs in slices of many epochs (no callback):
    train() answers within about one slice (SLICE_SECONDS of epochs) and keeps the last
    complete epoch, whose weights are those of a run of exactly that many epochs."""
    Xl = np.random.default_rng(1).normal(size=(60_000, 4))
    Yl = (Xl[:, :1] > 0).astype(float)
    fastbp.train(network(), Xl[:200], Yl[:200], mode="case", epochs=1)  # compiled before the clock
    net = network()
    main = threading.main_thread().ident
    timer = threading.Timer(0.6, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    with pytest.warns(InterruptedWarning):
        hist = fastbp.train(net, Xl, Yl, mode="case", epochs=10_000, learning_rate=0.01)
    elapsed = time.perf_counter() - start
    timer.join()
    assert hist.stopped_by == "interrupted" and 0 < hist.n_epochs < 10_000
    assert len(hist.loss) == len(hist.seconds) == hist.n_epochs
    epoch_time = max(hist.seconds)
    assert elapsed < 0.6 + SLICE_SECONDS + 2 * epoch_time + 1.0  # within about one slice
    ref = network()
    fastbp.train(ref, Xl, Yl, mode="case", epochs=hist.n_epochs, learning_rate=0.01)
    assert np.array_equal(ref.params, net.params)
    assert np.isfinite(net.predict(Xl[:10])).all()


def test_estimator_interrupt_keeps_the_epochs_its_kernel_ran(monkeypatch):
    """Ctrl-C right after the 3rd epoch's kernel call (a callback makes every epoch a call):
    scikit-learn's attributes are booked from the run, and agree with a 3-epoch fit."""
    _interrupt_after_kernel_call(monkeypatch, 3)
    est = fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0,
                               callback=lambda est: False)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, Y[:, 0])
    monkeypatch.undo()
    ref = fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, Y[:, 0])
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.loss_ == ref.loss_
    assert est.t_ == ref.t_ and est.loss_curve_ == ref.loss_curve_
    for a, b in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        assert np.array_equal(a, b)
    # the generator is where scikit-learn's would be after 3 epochs: training on agrees too
    assert np.array_equal(est._random_state.get_state()[1], ref._random_state.get_state()[1])


# -- divergence ---------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 16, 240])
def test_estimator_divergence_fails_as_sklearn_and_keeps_finite_weights(batch_size):
    Xb, yb = X * 1e3, X[:, 0] * 1e3
    est = fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e6,
                              batch_size=batch_size, max_iter=20, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.fit(Xb, yb)
    assert est.n_iter_ < 20 and len(est.loss_curve_) == est.n_iter_
    assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
    assert not np.isnan(est.predict(Xb)).any()


def test_train_divergence_with_huge_rate_keeps_finite_weights():
    net = fastbp.Network([4, 8, 1], activation="relu", output_activation="identity", random_state=0)
    with pytest.warns(fastbp.DivergenceWarning):
        hist = fastbp.train(net, X * 1e3, Y * 1e3, learning_rate=1e6, epochs=20, mode="minibatch")
    assert hist.stopped_by == "diverged" and np.isfinite(net.predict(X)).all()


# -- checkpoints --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, optimizer", MODES)
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, mode, optimizer):
    kw = options(mode, optimizer, tol=1e-9, n_iter_no_change=3)
    full = network()
    whole = fastbp.train(full, X, Y, **kw)
    path = tmp_path / "run.ckpt"
    with pytest.warns(InterruptedWarning):
        first = fastbp.train(network(), X, Y, checkpoint=path, callback=snapshots_callback([], 4), **kw)
    assert first.n_epochs == 4
    saved = fastbp.load(path)
    assert isinstance(saved, fastbp.Network) and np.isfinite(saved.params).all()
    other = network(seed=99)  # another start: the checkpoint overrides weights and shuffles
    rest = fastbp.train(other, X, Y, checkpoint=path, resume=True, **kw)
    assert np.array_equal(other.params, full.params)
    assert rest.loss == whole.loss and rest.n_epochs == whole.n_epochs
    assert rest.stopped_by == whole.stopped_by
    # a finished run resumed again trains no more, and says why
    again = network(seed=5)
    with pytest.warns(UserWarning, match="nothing left to train|would stop it again"):
        done = fastbp.train(again, X, Y, checkpoint=path, resume=True, **kw)
    assert done.n_epochs == whole.n_epochs and np.array_equal(again.params, full.params)


def test_checkpoint_every_n_epochs(tmp_path, monkeypatch):
    written = []
    real = train_module.save_checkpoint
    monkeypatch.setattr(train_module, "save_checkpoint",
                        lambda path, run: written.append(run.epoch) or real(path, run))
    fastbp.train(network(), X, Y, epochs=7, checkpoint=tmp_path / "c.npz", checkpoint_every=3)
    assert written == [3, 6, 7]


def test_resume_without_a_file_starts_anew(tmp_path):
    a, b = network(), network()
    fastbp.train(a, X, Y, epochs=3)
    fastbp.train(b, X, Y, epochs=3, checkpoint=tmp_path / "new.npz", resume=True)
    assert np.array_equal(a.params, b.params) and (tmp_path / "new.npz").exists()


def test_resume_refuses_another_training(tmp_path):
    path = tmp_path / "c.npz"
    fastbp.train(network(), X, Y, epochs=2, checkpoint=path)
    other = fastbp.Network([4, 7, 1], random_state=0)
    before = other.params.copy()
    with pytest.raises(ValueError, match="not this network"):
        fastbp.train(other, X, Y, epochs=4, checkpoint=path, resume=True)
    assert np.array_equal(other.params, before)
    net = network()
    before = net.params.copy()
    with pytest.raises(ValueError, match="mode='case'; this call has mode='epoch'"):
        fastbp.train(net, X, Y, epochs=4, mode="epoch", checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="n_samples=240; this call has n_samples=100"):
        fastbp.train(net, X[:100], Y[:100], epochs=4, checkpoint=path, resume=True)
    assert np.array_equal(net.params, before)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        fastbp.train(net, X, Y, resume=True)
    with pytest.raises(TypeError, match="checkpoint must be a file path"):
        fastbp.train(net, X, Y, checkpoint=3)
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        fastbp.train(net, X, Y, checkpoint=path, checkpoint_every=0)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(fastbp.ModelFileError):
        fastbp.train(net, X, Y, checkpoint=tmp_path / "bad.npz", resume=True)
    assert np.array_equal(net.params, before)


# -- concurrent use -----------------------------------------------------------------------------
def _run_in_threads(functions):
    results, errors = [None] * len(functions), []

    def run(i):
        try:
            results[i] = functions[i]()
        except BaseException as error:  # noqa: BLE001  reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(functions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("mode", ["epoch", "minibatch", "case"])
def test_concurrent_train_calls_equal_sequential_ones(mode):
    def job(seed):
        def run():
            net = fastbp.Network([4, 16, 1], random_state=seed)
            fastbp.train(net, X, Y, mode=mode, batch_size=16, epochs=15, n_jobs=2, random_state=seed)
            assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored
            return net.params
        return run

    sequential = [job(seed)() for seed in range(4)]
    concurrent = _run_in_threads([job(seed) for seed in range(4)])
    for a, b in zip(sequential, concurrent):
        assert np.array_equal(a, b)


def test_concurrent_estimator_fits_equal_sequential_ones():
    def job(seed):
        def run():
            est = fastbp.MLPClassifier(hidden_layer_sizes=(12,), max_iter=30, random_state=seed,
                                       n_jobs=2, batch_size=24)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, Y[:, 0])
            return np.concatenate([c.ravel() for c in est.coefs_])
        return run

    sequential = [job(seed)() for seed in range(3)]
    concurrent = _run_in_threads([job(seed) for seed in range(3)])
    for a, b in zip(sequential, concurrent):
        assert np.array_equal(a, b)


def test_grid_search_with_threads_equals_sequential():
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV
    grid = {"hidden_layer_sizes": [(4,), (8,)], "alpha": [1e-4, 1e-2]}

    def search(n_jobs):
        est = fastbp.MLPClassifier(max_iter=20, random_state=0, n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with parallel_backend("threading", n_jobs=n_jobs):
                return GridSearchCV(est, grid, cv=3).fit(X, Y[:, 0])

    one, many = search(1), search(4)
    assert one.best_params_ == many.best_params_
    assert np.array_equal(one.cv_results_["mean_test_score"], many.cv_results_["mean_test_score"])


def test_threading_layer_is_chosen_deliberately():
    layer = _threads.threading_layer()
    assert layer in ("tbb", "omp"), layer  # both are safe for concurrent calls
    try:
        importlib.metadata.version("tbb")
    except importlib.metadata.PackageNotFoundError:
        return
    from fastbp._kernels import _jit
    assert layer == "tbb" and _jit.preload_tbb() is not None


def test_workqueue_layer_makes_fits_take_turns(monkeypatch):
    """Were the layer the unsafe workqueue, kernels from two threads never overlap."""
    monkeypatch.setitem(_threads._layer, "name", "workqueue")
    inside, overlap = [0], []
    lock = threading.Lock()

    def job():
        with _threads.compute_threads(1):
            with lock:
                inside[0] += 1
                overlap.append(inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    _run_in_threads([job] * 4)
    assert max(overlap) == 1



@pytest.mark.parametrize("mode", ["case", "minibatch", "epoch"])
@pytest.mark.parametrize("track", ["end", "pass"])
def test_no_returned_network_predicts_nan(mode, track):
    """Huge rates on badly scaled data, any mode and loss tracking: whatever train() returns
    predicts no NaN on the data it trained on (epoch updating with track="pass" did, before
    the loss at the new weights counted for divergence)."""
    rng = np.random.default_rng(7)
    for trial in range(6):
        Xs = rng.normal(size=(200, 4)) * 10 ** rng.uniform(0, 4)
        Ys = Xs[:, :1] * rng.uniform(1, 1e3)
        net = fastbp.Network([4, 8, 8, 1], activation=("relu", "identity")[trial % 2],
                             output_activation="identity", random_state=trial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastbp.DivergenceWarning)
            fastbp.train(net, Xs, Ys, mode=mode, track=track, batch_size=16, epochs=30,
                         learning_rate=10 ** rng.uniform(0, 6))
        assert np.isfinite(net.params).all()
        assert not np.isnan(net.predict(Xs)).any()


@pytest.mark.parametrize("mode", ["case", "epoch", "minibatch"])
def test_an_rnn_interrupted_and_resumed_equals_uninterrupted(tmp_path, mode):
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(40, 6, 2))
    Ys = Xs[:, :, 0].sum(axis=1, keepdims=True)
    kw = dict(mode=mode, batch_size=8, learning_rate=0.01, epochs=8, optimizer="adam"
              if mode == "minibatch" else "sgd", bptt_steps=3)
    full = fastbp.RNN([2, 5, 1], random_state=1)
    whole = fastbp.train(full, Xs, Ys, **kw)
    path = tmp_path / "rnn.ckpt"
    with pytest.warns(InterruptedWarning):
        fastbp.train(fastbp.RNN([2, 5, 1], random_state=1), Xs, Ys, checkpoint=path,
                     callback=snapshots_callback([], 3), **kw)
    assert isinstance(fastbp.load(path), fastbp.RNN)
    other = fastbp.RNN([2, 5, 1], random_state=7)
    rest = fastbp.train(other, Xs, Ys, checkpoint=path, resume=True, **kw)
    assert np.array_equal(other.params, full.params) and rest.loss == whole.loss
    with pytest.raises(ValueError, match="which is not this network"):
        fastbp.train(fastbp.RNN([2, 4, 1]), Xs, Ys, checkpoint=path, resume=True, **kw)
    kw.pop("bptt_steps")
    with pytest.raises(ValueError, match="which is not this network"):
        fastbp.train(fastbp.Network([2, 1]), Xs[:, 0], Ys, checkpoint=path, resume=True, **kw)


def test_resume_of_a_finished_run_continues_to_the_new_epochs(tmp_path):
    """train(epochs=10, checkpoint=f), then train(epochs=30, checkpoint=f, resume=True): 30
    epochs in all, the params of one 30-epoch run."""
    path = tmp_path / "c.npz"
    fastbp.train(network(), X, Y, epochs=10, checkpoint=path, learning_rate=0.05)
    net = network(seed=9)
    history = fastbp.train(net, X, Y, epochs=30, checkpoint=path, resume=True, learning_rate=0.05)
    whole = network()
    reference = fastbp.train(whole, X, Y, epochs=30, learning_rate=0.05)
    assert history.n_epochs == 30 and history.stopped_by == "epochs"
    assert np.array_equal(net.params, whole.params) and history.loss == reference.loss


def test_resume_refuses_other_settings_by_name(tmp_path):
    path = tmp_path / "c.npz"
    fastbp.train(network(), X, Y, epochs=3, checkpoint=path, learning_rate=0.05, momentum=0.5)
    for change, name in ((dict(learning_rate=0.5, momentum=0.5), "learning_rate"),
                         (dict(learning_rate=0.05, momentum=0.9), "momentum"),
                         (dict(learning_rate=0.05, momentum=0.5, schedule="1/t"), "schedule"),
                         (dict(learning_rate=0.05, momentum=0.5, dropout=0.1), "dropout"),
                         (dict(learning_rate=0.05, momentum=0.5, validation=(X, Y)), "validation"),
                         (dict(learning_rate=0.05, momentum=0.5, alpha=1e-4), "alpha")):
        net = network(seed=4)
        before = net.params.copy()
        with pytest.raises(ValueError, match=f"trained with {name}=.*this call has {name}="):
            fastbp.train(net, X, Y, epochs=6, checkpoint=path, resume=True, **change)
        assert np.array_equal(net.params, before)  # refused before anything changed


def test_resume_of_a_rule_stopped_run_warns_and_trains_nothing(tmp_path):
    path = tmp_path / "c.npz"
    first = fastbp.train(network(), X, Y, epochs=50, checkpoint=path, tol=10.0, n_iter_no_change=1)
    assert first.stopped_by == "no_improvement"
    net = network(seed=3)
    with pytest.warns(UserWarning, match="stopped by 'no_improvement'.*would stop it again"):
        again = fastbp.train(net, X, Y, epochs=50, checkpoint=path, resume=True, tol=10.0,
                             n_iter_no_change=1)
    assert again.n_epochs == first.n_epochs and again.stopped_by == "no_improvement"
    # a threshold of the rule that stopped it may change: the run goes on under the new one
    net = network(seed=3)
    on = fastbp.train(net, X, Y, epochs=8, checkpoint=path, resume=True, tol=0.0, n_iter_no_change=50)
    assert on.n_epochs == 8 and on.stopped_by == "epochs"


@pytest.mark.parametrize("kind", ["Network", "RNN"])
def test_damaged_checkpoints_are_refused_and_leave_the_model_alone(tmp_path, kind):
    """Cut short, a counter or a history series tampered with, a byte flipped: resume=True
    raises ModelFileError (or the file still reads whole) and the model is unchanged; never a
    crash, never a run from half a state. Network and RNN checkpoints alike."""
    import json
    rng = np.random.default_rng(3)
    if kind == "RNN":
        data = rng.normal(size=(30, 4, 2)), rng.normal(size=(30, 1))
        make = lambda seed: fastbp.RNN([2, 3, 1], random_state=seed)  # noqa: E731
    else:
        data = X[:60], Y[:60]
        make = lambda seed: network(seed=seed)  # noqa: E731
    path = tmp_path / "run.ckpt"
    fastbp.train(make(0), *data, epochs=3, learning_rate=0.01, checkpoint=path)
    good = path.read_bytes()
    header, arrays = fastbp.io.read_archive(path)

    def damaged(content):
        path.write_bytes(content)
        net = make(5)
        before = net.params.copy()
        with pytest.raises(fastbp.ModelFileError):
            fastbp.train(net, *data, epochs=5, learning_rate=0.01, checkpoint=path, resume=True)
        assert np.array_equal(net.params, before)

    for cut in (0, 10, len(good) // 3, len(good) // 2, len(good) - 1):
        damaged(good[:cut])
    info = header["checkpoint"]
    def rewritten(head, arrays):  # to a file object: np.savez would add ".npz" to the path
        with open(path, "wb") as file:
            np.savez(file, header=np.array(json.dumps(head)), **arrays)
        return path.read_bytes()

    rewritten(header, arrays)  # untampered, rewritten so: it resumes
    resumed = make(5)
    assert fastbp.train(resumed, *data, epochs=4, learning_rate=0.01, checkpoint=path,
                        resume=True).n_epochs == 4
    for tampered in (dict(info, epoch=-1), dict(info, no_improvement="3"),
                     dict(info, history=dict(info["history"], loss=[1.0])),
                     dict(info, stopped_by="boredom")):
        damaged(rewritten(dict(header, checkpoint=tampered), arrays))
    damaged(rewritten(header, dict(arrays, **{"trainer.state": arrays["trainer.state"][:, :-1]})))
    for position in range(0, len(good), max(1, len(good) // 40)):  # flipped bytes
        flipped = bytearray(good)
        flipped[position] ^= 0xFF
        path.write_bytes(bytes(flipped))
        net = make(5)
        try:
            fastbp.train(net, *data, epochs=5, learning_rate=0.01, checkpoint=path, resume=True)
        except fastbp.ModelFileError:
            continue
        assert np.isfinite(net.params).all()  # a byte the format does not cover: a whole run
