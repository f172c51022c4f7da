"""train()'s contract beyond the arithmetic: many epochs per kernel call, divergence,
weights changed by a callback, targets outside a loss's range, argument types."""
import importlib

import numpy as np
import pytest

import fastbp
from fastbp import _kernels as K  # the kernels as the Python layer calls them

train_module = importlib.import_module("fastbp.train")  # the module, not fastbp.train()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = (X[:, :1] + X[:, 1:2] > 0).astype(float)
    return X, Y


def net_for(**kwargs):
    return fastbp.Network([3, 4, 1], random_state=0, **kwargs)


@pytest.mark.parametrize("mode", ["case", "epoch", "minibatch"])
def test_a_small_run_is_one_kernel_call(monkeypatch, data, mode):
    """The epochs of a small problem run in ONE call of a run kernel: the tuple orders, the
    passes, the history and the rules all in compiled code, no Python between epochs."""
    calls = []
    for name in sorted(K.CALLED_FROM_PYTHON):
        if name.startswith("run_"):
            kernel = getattr(K, name)
            monkeypatch.setattr(K, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    hist = fastbp.train(net_for(), *data, mode=mode, batch_size=7, epochs=50)
    assert hist.n_epochs == 50 and len(calls) == 1, calls
    # with a callback, Python is wanted after every epoch: one call each
    calls.clear()
    fastbp.train(net_for(), *data, mode=mode, batch_size=7, epochs=5, callback=lambda n, h: False)
    assert len(calls) == 5


@pytest.mark.parametrize("mode", ["case", "epoch", "minibatch"])
def test_divergence_stops_and_keeps_last_finite_weights(data, mode):
    X, Y = data
    net = fastbp.Network([3, 8, 1], activation="relu", output_activation="identity",
                         random_state=0)
    snapshots = []
    with pytest.warns(fastbp.DivergenceWarning, match="diverged"):
        hist = fastbp.train(net, X * 1e3, Y * 1e3, mode=mode, batch_size=7, learning_rate=10.0,
                            epochs=50, callback=lambda n, h: snapshots.append(n.params.copy()))
    assert hist.stopped_by == "diverged"
    assert np.isfinite(net.params).all()
    assert np.isfinite(net.predict(X)).all()
    assert len(hist.loss) == len(hist.seconds) == hist.n_epochs == len(snapshots)
    # The network holds the weights after the last finite epoch (or the initial ones).
    expected = snapshots[-1] if snapshots else fastbp.Network([3, 8, 1], activation="relu",
                                                              output_activation="identity",
                                                              random_state=0).params
    assert np.array_equal(net.params, expected)


def test_epoch_mode_follows_weights_changed_by_callback(data):
    """A callback that resets the weights: the next epoch starts from them, not a stale gradient."""
    X, Y = data
    net = net_for()

    def reset_after_first(n, h):
        if h.n_epochs == 1:
            n.params[:] = 0.0

    fastbp.train(net, X, Y, mode="epoch", epochs=2, callback=reset_after_first)
    fresh = net_for()
    fresh.params[:] = 0.0
    fastbp.train(fresh, X, Y, mode="epoch", epochs=1)
    assert np.array_equal(net.params, fresh.params)


@pytest.mark.parametrize("loss, out, Y, match", [
    ("log_loss", "logistic", [[3.0]], r"\[0, 1\]"),
    ("log_loss", "softmax", [[0.5, 0.2]], "sum to 1"),
    ("poisson", "exp", [[-1.0]], ">= 0"),
])
def test_targets_outside_the_loss_range_are_refused(loss, out, Y, match):
    n_out = len(Y[0])
    net = fastbp.Network([2, 3, n_out], output_activation=out, loss=loss, random_state=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        fastbp.train(net, [[0.0, 1.0]], Y, epochs=1)
    assert np.array_equal(net.params, before)


def test_generator_random_state_is_reproducible(data):
    a = fastbp.Network([3, 4, 1], random_state=np.random.default_rng(5))
    b = fastbp.Network([3, 4, 1], random_state=np.random.default_rng(5))
    fastbp.train(a, *data, epochs=2)
    fastbp.train(b, *data, epochs=2)
    assert np.array_equal(a.params, b.params)


@pytest.mark.parametrize("option", ["shuffle", "nesterov"])
def test_flags_must_be_booleans(data, option):
    with pytest.raises(TypeError, match=option):
        fastbp.train(net_for(), *data, epochs=1, **{option: "no"})


def test_init_options_are_keyword_only():
    with pytest.raises(TypeError):
        fastbp.Network([2, 1], "logistic", "logistic", "squared_error", np.float64, 0, "glorot")
    net = fastbp.Network([2, 1], "logistic", "logistic", "squared_error", np.float64, 0, init="glorot")
    assert np.abs(net.params).max() <= np.sqrt(2 / 3)


def test_unknown_dtype_is_a_value_error():
    with pytest.raises(ValueError, match="dtype"):
        fastbp.Network([2, 1], dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        fastbp.Network([2, 1], dtype="no such dtype")


def test_progress_bar_closed_when_callback_raises(data, monkeypatch):
    closed = []
    real = train_module._progress_bar

    def spying(epochs, progress):
        bar = real(epochs, progress)
        original = bar.close
        bar.close = lambda: closed.append(True) or original()
        return bar

    monkeypatch.setattr(train_module, "_progress_bar", spying)
    with pytest.raises(RuntimeError):
        fastbp.train(net_for(), *data, epochs=3, progress=True,
                     callback=lambda n, h: (_ for _ in ()).throw(RuntimeError("boom")))
    assert closed == [True]


def test_short_epochs_are_timed_in_groups():
    """Epochs under 4 us are timed 16 at a time, each booked at their mean; longer ones one
    at a time. Every epoch gets a positive time, the last ones of a run too."""
    X, y = fastbp.datasets.xor()
    Y = y.reshape(-1, 1).astype(float)
    short = fastbp.train(fastbp.Network([2, 2, 1], random_state=0), X, Y, mode="case",
                         learning_rate=0.5, epochs=1001).seconds
    assert len(short) == 1001 and min(short) > 0
    assert len(set(short)) < 200  # one reading per epoch would give ~1001 different times
    X, Y = np.repeat(X, 500, axis=0), np.repeat(Y, 500, axis=0)  # epochs of ~100 us
    long = fastbp.train(fastbp.Network([2, 2, 1], random_state=0), X, Y, mode="case",
                        learning_rate=0.5, epochs=20).seconds
    assert len(long) == 20 and min(long) > 0 and len(set(long)) > 10  # grouped: 2 or 3


def test_a_history_that_outgrows_its_buffer_changes_nothing(monkeypatch, data):
    """When a run outlives the history's first buffer (HISTORY_CAPACITY epochs), the buffer
    doubles between kernel calls: the same weights and the same history as with room."""
    whole = net_for()
    expected = fastbp.train(whole, *data, mode="minibatch", batch_size=7, epochs=40)
    monkeypatch.setattr(fastbp.driver, "HISTORY_CAPACITY", 4)
    grown = net_for()
    history = fastbp.train(grown, *data, mode="minibatch", batch_size=7, epochs=40)
    assert history.n_epochs == 40 and history.loss == expected.loss
    assert history.learning_rate == expected.learning_rate
    assert np.array_equal(grown.params, whole.params)
