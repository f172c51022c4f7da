"""Bad input is refused before any kernel runs: a ValueError (TypeError for non-numbers)
whose message names the problem, and the network's params are left as they were."""

import numpy as np
import pytest

import fastbp

SIZES = [3, 4, 2]
N = 12


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return rng.normal(size=(N, 3)), rng.randint(0, 2, (N, 2)).astype(np.float64)


@pytest.fixture
def net():
    return fastbp.Network(SIZES, random_state=0)


def refused(net, X, Y, error, match, **kwargs):
    """train() raises `error` matching `match`, and params are unchanged afterwards."""
    before = net.params.copy()
    with pytest.raises(error, match=match):
        fastbp.train(net, X, Y, epochs=2, random_state=0, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def with_value(A, value, at=(1, 1)):
    A = np.array(A, dtype=np.float64)
    A[at] = value
    return A


# -- data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_X(net, data, value):
    X, Y = data
    refused(net, with_value(X, value), Y, ValueError, r"X.*(NaN|inf)")
    with pytest.raises(ValueError, match=r"X.*(NaN|inf)"):
        net.predict(with_value(X, value))
    with pytest.raises(ValueError, match=r"X.*(NaN|inf)"):
        net.loss_gradient(with_value(X, value), Y)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_Y(net, data, value):
    X, Y = data
    refused(net, X, with_value(Y, value), ValueError, r"\bY\b.*(NaN|inf)")
    with pytest.raises(ValueError, match=r"\bY\b.*(NaN|inf)"):
        net.evaluate(X, with_value(Y, value))


def test_non_finite_float32(data):
    X, Y = data
    net = fastbp.Network(SIZES, dtype=np.float32, random_state=0)
    refused(net, with_value(X, np.nan), Y, ValueError, r"X.*(NaN|inf)")
    # finite in float64 but not in float32
    refused(net, with_value(X, 1e300), Y, ValueError, r"X.*(NaN|inf)")


@pytest.mark.parametrize("mode, batch_size", [("case", None), ("epoch", None), ("minibatch", 4)])
def test_every_mode_checks(net, data, mode, batch_size):
    X, Y = data
    refused(net, with_value(X, np.nan), Y, ValueError, r"X.*(NaN|inf)", mode=mode, batch_size=batch_size)


def test_wrong_number_of_features(net, data):
    X, Y = data
    X4 = np.hstack([X, X[:, :1]])
    refused(net, X4, Y, ValueError, r"X has 4")
    with pytest.raises(ValueError, match=r"X has 4"):
        net.predict(X4)
    with pytest.raises(ValueError, match=r"X has 4"):
        net.loss_gradient(X4, Y)


def test_wrong_number_of_outputs(net, data):
    X, Y = data
    refused(net, X, np.hstack([Y, Y[:, :1]]), ValueError, r"\bY\b")
    # 1-D targets are accepted only for a one-output network
    refused(net, X, Y[:, 0], ValueError, r"\bY\b")


@pytest.mark.parametrize("shape", [(N,), (N, 3, 1), ()])
def test_X_dimensions(net, data, shape):
    X, Y = data
    bad = np.ones(shape)
    refused(net, bad, Y, ValueError, r"\bX\b")
    with pytest.raises(ValueError, match=r"\bX\b"):
        net.predict(bad)


def test_Y_dimensions(net, data):
    X, Y = data
    refused(net, X, Y[:, :, None], ValueError, r"\bY\b")


def test_empty_data(net):
    refused(net, np.empty((0, 3)), np.empty((0, 2)), ValueError, r"\bX\b.*(empty|0)")
    with pytest.raises(ValueError, match=r"\bX\b.*(empty|0)"):
        net.predict(np.empty((0, 3)))


def test_length_mismatch(net, data):
    X, Y = data
    refused(net, X, Y[:-1], ValueError, r"(?s)\bX\b.*\bY\b|\bY\b.*\bX\b")
    with pytest.raises(ValueError, match=r"(?s)\bX\b.*\bY\b|\bY\b.*\bX\b"):
        net.evaluate(X[:-2], Y)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([["a", "b", "c"]] * N),
        np.array([[1.0, None, 2.0]] * N, dtype=object),
        np.ones((N, 3), dtype=np.complex128),
    ],
    ids=["str", "object", "complex"],
)
def test_non_numeric_X(net, data, bad):
    X, Y = data
    refused(net, bad, Y, (TypeError, ValueError), r"\bX\b")
    with pytest.raises((TypeError, ValueError), match=r"\bX\b"):
        net.predict(bad)


def test_non_numeric_Y(net, data):
    X, Y = data
    refused(net, X, Y.astype(str), (TypeError, ValueError), r"\bY\b")


def test_integer_and_bool_data_are_fine(data):
    """Not every non-float dtype is bad: integers and booleans are numbers."""
    X, Y = data
    net = fastbp.Network(SIZES, random_state=0)
    hist = fastbp.train(net, (X > 0).astype(np.int32), Y.astype(bool), epochs=2, random_state=0)
    assert hist.n_epochs == 2


# -- train() parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "batch"}, "mode"),
        ({"mode": "minibatch", "batch_size": 0}, "batch_size"),
        ({"mode": "minibatch", "batch_size": -3}, "batch_size"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": np.nan}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": -1}, "epochs"),
        ({"schedule": "exponential"}, "schedule"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"track": "middle"}, "track"),
        ({"momentum": -0.5}, "momentum"),
        ({"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_train_parameters(net, data, kwargs, match):
    X, Y = data
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        # epochs given here unless the case itself sets it
        fastbp.train(net, X, Y, **{"epochs": 2, "random_state": 0, **kwargs})
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 2.5}, "epochs"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"batch_size": "7", "mode": "minibatch"}, "batch_size"),
    ],
)
def test_wrongly_typed_train_parameters(net, data, kwargs, match):
    X, Y = data
    before = net.params.copy()
    with pytest.raises((TypeError, ValueError), match=match):
        fastbp.train(net, X, Y, **{"epochs": 2, **kwargs})
    np.testing.assert_array_equal(net.params, before)


# -- Network parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sizes": [3]}, "sizes"),
        ({"sizes": [3, 0, 2]}, "sizes"),
        ({"sizes": [3, -4, 2]}, "sizes"),
        ({"activation": "swish"}, "activation"),
        ({"activation": "softmax"}, "activation"),  # softmax is for outputs only
        ({"output_activation": "tanh2"}, "output_activation"),
        ({"loss": "hinge"}, "loss"),
        ({"loss": "log_loss", "output_activation": "identity"}, "log_loss|output_activation"),
        ({"loss": "poisson", "output_activation": "logistic"}, "poisson|output_activation"),
        ({"init": "zeros"}, "init"),
        ({"init_range": -0.5}, "init_range"),
    ],
)
def test_bad_network_parameters(kwargs, match):
    kwargs = {"sizes": SIZES, **kwargs}
    with pytest.raises(ValueError, match=match):
        fastbp.Network(**kwargs)


@pytest.mark.parametrize("dtype", [np.int32, np.complex128, np.float16, "not a dtype"])
def test_bad_dtype(dtype):
    with pytest.raises((TypeError, ValueError), match="dtype"):
        fastbp.Network(SIZES, dtype=dtype)


def test_loss_gradient_rejects_negative_alpha(net, data):
    X, Y = data
    with pytest.raises(ValueError, match="alpha"):
        net.loss_gradient(X, Y, alpha=-1.0)


def test_softmax_networks_take_class_labels():
    """Issue 16, item 4: train() on a softmax network accepts integer class labels (as
    PyTorch's cross-entropy does): the same run as with their one-hot rows."""
    X = np.random.default_rng(0).normal(size=(60, 4))
    y = np.arange(60) % 3
    a = fastbp.Network([4, 5, 3], output_activation="softmax", loss="log_loss", random_state=0)
    b = fastbp.Network([4, 5, 3], output_activation="softmax", loss="log_loss", random_state=0)
    ha = fastbp.train(a, X, y, epochs=3)
    hb = fastbp.train(b, X, fastbp.datasets.one_hot(y), epochs=3)
    assert np.array_equal(a.params, b.params) and ha.loss == hb.loss
    assert a.evaluate(X, y) == b.evaluate(X, fastbp.datasets.one_hot(y))
    with pytest.raises(ValueError, match="class labels must lie in 0..2"):
        fastbp.train(a, X, y + 1)
    with pytest.raises(ValueError, match="e.g. fastbp.datasets.one_hot"):
        fastbp.train(a, X, y + 0.5)


def test_a_wrong_target_shape_speaks_of_outputs():
    net = fastbp.Network([4, 2], output_activation="logistic")
    with pytest.raises(ValueError, match=r"Y must be a 2-D array \(n_samples, n_outputs\)"):
        fastbp.train(net, np.zeros((5, 4)), np.zeros((5, 2, 1)))
