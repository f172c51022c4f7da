"""Same seed, same bits; the thread count changes nothing but speed, and is put back."""

import copy

import numba
import numpy as np
import pytest

import fastbp
from fastbp._threads import compute_threads
from fastbp.network import n_chunks_for

SIZES = [6, 9, 4]
N = 500  # enough tuples for a parallel pass to be cut into several chunks (20)
MAX_THREADS = numba.config.NUMBA_NUM_THREADS
TWO = min(2, MAX_THREADS)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(N, SIZES[0]))
    Y = np.eye(SIZES[-1])[rng.randint(0, SIZES[-1], N)]
    return X, Y


def network(dtype=np.float64):
    return fastbp.Network(
        SIZES, activation="tanh", output_activation="softmax", loss="log_loss", dtype=dtype, random_state=1
    )


def fit(data, dtype=np.float64, **kwargs):
    X, Y = data
    net = network(dtype)
    kwargs = {"learning_rate": 0.05, "epochs": 3, "random_state": 2, **kwargs}
    hist = fastbp.train(net, X, Y, **kwargs)
    return net, hist


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "mode, batch_size, extra",
    [
        ("case", None, {}),
        ("case", None, {"momentum": 0.9, "nesterov": True}),
        ("epoch", None, {}),
        ("minibatch", 32, {}),
        ("minibatch", 32, {"optimizer": "adam"}),
    ],
)
def test_same_seed_same_bits(data, mode, batch_size, extra, dtype):
    a, hist_a = fit(data, dtype, mode=mode, batch_size=batch_size, **extra)
    b, hist_b = fit(data, dtype, mode=mode, batch_size=batch_size, **extra)
    assert np.array_equal(a.params, b.params)
    assert hist_a.loss == hist_b.loss and hist_a.accuracy == hist_b.accuracy
    # and training did move the weights, so equality is not trivial
    assert not np.array_equal(a.params, network(dtype).params)


@pytest.mark.parametrize("mode", ["case", "minibatch"])
def test_other_seed_other_result(data, mode):
    a, _ = fit(data, mode=mode, batch_size=32, random_state=2)
    b, _ = fit(data, mode=mode, batch_size=32, random_state=3)
    assert not np.array_equal(a.params, b.params)


def test_network_generator_continues(data):
    """random_state=None draws the shuffles from net.random_state_, continuing it call after call."""
    X, Y = data
    a, _ = fit(data, mode="case", random_state=None)
    b, _ = fit(data, mode="case", random_state=None)
    assert np.array_equal(a.params, b.params)  # reproducible through the network's seed
    c, d, e = a.copy(), a.copy(), a.copy()
    stream = copy.deepcopy(a.random_state_)
    for _ in range(2):
        fastbp.train(c, X, Y, learning_rate=0.05, epochs=1, random_state=None)
        fastbp.train(d, X, Y, learning_rate=0.05, epochs=1, random_state=stream)
    assert np.array_equal(c.params, d.params)
    # restarting the generator each call repeats the first permutation: a different result
    for _ in range(2):
        fastbp.train(e, X, Y, learning_rate=0.05, epochs=1, random_state=copy.deepcopy(a.random_state_))
    assert not np.array_equal(c.params, e.params)


# The chunk count of every parallel pass depends on the number of tuples only (n_chunks_for),
# never on the thread count, and the per-chunk sums are added in chunk order: so the thread
# count changes no bit of the result, not merely "close".
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "mode, batch_size, extra",
    [
        ("epoch", None, {"learning_rate": 0.5}),
        ("epoch", None, {"learning_rate": 0.5, "momentum": 0.9}),
        ("minibatch", 100, {}),  # 100-tuple batches: each gradient is summed over 4 chunks
        ("minibatch", 100, {"optimizer": "adam"}),
        ("minibatch", 32, {}),
        ("case", None, {}),  # sequential updates; the per-epoch evaluation pass is parallel
    ],
)
def test_thread_count_changes_no_bit(data, mode, batch_size, extra, dtype, monkeypatch,
                                    spy_kernels):
    assert n_chunks_for(N) > 1 and (batch_size is None or batch_size < N)
    # runs this short take the serial run kernels (parallel_gradient): the threaded ones here
    monkeypatch.setattr(fastbp._model, "PARALLEL_RUN_WORK", 1)
    calls = spy_kernels("run_minibatch_parallel", "run_full_batch_parallel")
    runs = [fit(data, dtype, mode=mode, batch_size=batch_size, n_jobs=n_jobs, epochs=5, **extra)
            for n_jobs in (1, TWO, -1)]
    assert (len(calls) > 0) == (mode == "epoch" or mode == "minibatch" and
                                n_chunks_for(batch_size) > 1)
    (one, hist_one), *others = runs
    assert not np.array_equal(one.params, network(dtype).params)
    for net, hist in others:
        assert np.array_equal(one.params, net.params)
        assert hist.loss == hist_one.loss and hist.accuracy == hist_one.accuracy


@pytest.mark.parametrize("mode, batch_size", [("minibatch", 250), ("epoch", None)])
def test_gradient_passes_on_threads_only_for_long_runs(data, mode, batch_size, monkeypatch,
                                                       spy_kernels):
    """Minibatch and epoch updating run their passes' chunks in the serial run kernel, and in
    its twin on threads only for a long pass or run (fastbp._model.parallel_gradient): the
    same chunks, so the same weights and history either way."""
    kernel = {"minibatch": "run_minibatch", "epoch": "run_full_batch"}[mode]
    calls = spy_kernels(kernel, kernel + "_parallel")
    fits = []
    for work, used in ((fastbp._model.PARALLEL_RUN_WORK, kernel), (1, kernel + "_parallel")):
        monkeypatch.setattr(fastbp._model, "PARALLEL_RUN_WORK", work)
        net, hist = fit(data, mode=mode, batch_size=batch_size, epochs=4, n_jobs=TWO,
                        learning_rate=0.5)
        assert calls and set(calls) == {used}
        calls.clear()
        fits.append((net.params, hist.loss, hist.accuracy))
    serial, threaded = fits
    np.testing.assert_array_equal(serial[0], threaded[0])
    assert serial[1:] == threaded[1:]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_and_evaluate_thread_count_changes_no_bit(data, dtype):
    X, Y = data
    net, _ = fit(data, dtype, mode="epoch", epochs=2)
    results = []
    for n_jobs in (1, TWO, -1):
        with compute_threads(n_jobs):
            results.append((net.predict(X), net.evaluate(X, Y), net.loss_gradient(X, Y)))
    (outputs, scores, (loss, grad)), *others = results
    for other_outputs, other_scores, (other_loss, other_grad) in others:
        assert np.array_equal(outputs, other_outputs)
        assert scores == other_scores
        assert loss == other_loss and np.array_equal(grad, other_grad)


@pytest.mark.parametrize("mode, batch_size", [("case", None), ("epoch", None), ("minibatch", 32)])
def test_thread_count_restored(data, mode, batch_size):
    numba.set_num_threads(MAX_THREADS)
    fit(data, mode=mode, batch_size=batch_size, n_jobs=1, epochs=1)
    assert numba.get_num_threads() == MAX_THREADS
    fit(data, mode=mode, batch_size=batch_size, n_jobs=None, epochs=1)
    assert numba.get_num_threads() == MAX_THREADS


def test_thread_count_restored_after_an_error(data, monkeypatch):
    monkeypatch.setattr(fastbp._model, "PARALLEL_RUN_WORK", 1)  # the threaded kernel
    numba.set_num_threads(MAX_THREADS)
    seen = []

    def explode(net, history):
        seen.append(numba.get_num_threads())  # inside train, the requested count is in force
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        fit(data, mode="epoch", n_jobs=1, callback=explode)
    assert seen == [1]
    assert numba.get_num_threads() == MAX_THREADS
    # and after an input error
    X, Y = data
    net = fastbp.Network(SIZES, output_activation="softmax", loss="log_loss", random_state=0)
    with pytest.raises(ValueError):
        fastbp.train(net, X[:, :3], Y, n_jobs=1)
    assert numba.get_num_threads() == MAX_THREADS


@pytest.mark.parametrize("n_jobs, expected", [
    (1, 1), (MAX_THREADS + 5, MAX_THREADS), (-1, MAX_THREADS),
    (-2, max(1, MAX_THREADS - 1)), (-1000, 1),
])
def test_n_jobs_counts_threads_as_joblib(n_jobs, expected):
    """A positive n_jobs is a count (clipped to Numba's threads), -1 all, -2 all but one, ..."""
    numba.set_num_threads(MAX_THREADS)
    with compute_threads(n_jobs):
        assert numba.get_num_threads() == expected
    assert numba.get_num_threads() == MAX_THREADS


@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2"])
def test_bad_n_jobs(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        with compute_threads(n_jobs):
            pass


@pytest.mark.parametrize("solver, batch_size", [("sgd", 1), ("adam", 32), ("sgd", 500), ("lbfgs", "auto")])
def test_estimators_same_seed_same_bits_any_thread_count(data, solver, batch_size,
                                                         monkeypatch):
    """The drop-ins: same data, random_state and thread count -> bit-identical coefs_, for
    case, minibatch and epoch updating and L-BFGS; and the thread count changes nothing."""
    import warnings
    monkeypatch.setattr(fastbp._model, "PARALLEL_RUN_WORK", 1)  # threads, though the run is short
    X, Y = data
    y = Y.argmax(axis=1)

    def fit(n_jobs):
        est = fastbp.MLPClassifier(hidden_layer_sizes=(7,), solver=solver, batch_size=batch_size,
                                   max_iter=4, random_state=5, n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        return np.concatenate([a.ravel() for a in est.coefs_ + est.intercepts_])

    first = fit(TWO)
    assert np.array_equal(first, fit(TWO))
    assert np.array_equal(first, fit(1))


def test_no_random_state_draws_from_numpys_global_generator():
    """random_state=None means numpy's global RandomState, as in scikit-learn: np.random.seed
    makes the initial weights reproducible, and each new network draws new ones."""
    np.random.seed(3)
    a = fastbp.Network([2, 3, 1]).params.copy()
    np.random.seed(3)
    b = fastbp.Network([2, 3, 1]).params.copy()
    c = fastbp.Network([2, 3, 1]).params
    assert np.array_equal(a, b) and not np.array_equal(b, c)
