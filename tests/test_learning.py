"""Does training learn, and do the termination rules, schedules and History behave?"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastbp
from fastbp.datasets import xor


@pytest.fixture(scope="module")
def xor_data():
    X, y = xor()
    return X, y.astype(np.float64)[:, None]


@pytest.fixture(scope="module")
def digits():
    """load_digits standardised on the training part, 75/25 split, one-hot targets."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, np.eye(10)[y_train], (X_test - mean) / std, np.eye(10)[y_test]


@pytest.fixture(scope="module")
def blobs():
    """A small two-class problem for the termination rules."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    Y = (X[:, :1] + 0.5 * X[:, 1:2] > 0).astype(np.float64)
    return X, Y


# -- it learns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, learning_rate, momentum, seed",
    [
        # case updating, the textbook's way (converges in ~400-1100 epochs for every seed tried)
        ("case", 1.0, 0.0, 0),
        ("case", 1.0, 0.0, 1),
        ("case", 1.0, 0.0, 2),
        # epoch updating, plain (~1200 epochs) and with momentum (~200-500 epochs)
        ("epoch", 2.0, 0.0, 0),
        ("epoch", 1.0, 0.9, 1),
        ("epoch", 1.0, 0.9, 2),
    ],
)
def test_xor(xor_data, mode, learning_rate, momentum, seed):
    X, Y = xor_data
    net = fastbp.Network([2, 4, 1], activation="logistic", output_activation="logistic", random_state=seed)
    hist = fastbp.train(  # track="end": the rule judges the network after each epoch
        net, X, Y, mode=mode, learning_rate=learning_rate, momentum=momentum, epochs=20000,
        random_state=seed, max_misclassified=0.0, track="end",
    )  # fmt: skip
    assert hist.stopped_by == "misclassified" and hist.n_epochs < 20000
    assert hist.accuracy[-1] == 1.0
    # the outputs really are on the right side of 0.5 for all four corners
    np.testing.assert_array_equal(net.predict(X) >= 0.5, Y >= 0.5)
    assert net.evaluate(X, Y)[1] == 1.0


@pytest.mark.parametrize(
    "mode, activation, init, learning_rate, epochs, batch_size, dtype",
    [
        ("minibatch", "logistic", "glorot", 0.2, 30, 32, np.float64),
        ("case", "logistic", "uniform", 0.05, 10, None, np.float64),
        ("case", "tanh", "glorot", 0.01, 10, None, np.float32),
    ],
)
def test_digits(digits, mode, activation, init, learning_rate, epochs, batch_size, dtype):
    X_train, Y_train, X_test, Y_test = digits
    net = fastbp.Network(
        [64, 64, 10], activation=activation, output_activation="softmax", loss="log_loss", init=init,
        dtype=dtype, random_state=0,
    )  # fmt: skip
    hist = fastbp.train(
        net, X_train, Y_train, mode=mode, batch_size=batch_size, learning_rate=learning_rate, epochs=epochs,
        random_state=0,
    )  # fmt: skip
    loss, acc = net.evaluate(X_test, Y_test)
    assert acc >= 0.95, acc
    # test accuracy by hand, from predict, agrees with evaluate
    assert np.mean(net.predict(X_test).argmax(axis=1) == Y_test.argmax(axis=1)) == pytest.approx(acc)
    # the training loss went down a long way
    assert hist.loss[-1] < 0.25 * hist.loss[0]


# -- termination rules ------------------------------------------------------------------


def fresh():
    return fastbp.Network([3, 4, 1], activation="tanh", random_state=0)


def test_stop_by_epochs(blobs):
    X, Y = blobs
    hist = fastbp.train(fresh(), X, Y, epochs=7, random_state=0)
    assert hist.stopped_by == "epochs" and hist.n_epochs == 7


def test_stop_by_misclassified(blobs):
    X, Y = blobs
    # any network misclassifies at most all tuples: stops after the first epoch
    hist = fastbp.train(fresh(), X, Y, epochs=50, random_state=0, max_misclassified=1.0)
    assert hist.stopped_by == "misclassified" and hist.n_epochs == 1
    # a reachable target: stops at the first epoch whose error fraction is low enough
    hist = fastbp.train(fresh(), X, Y, learning_rate=0.1, epochs=500, random_state=0, max_misclassified=0.05)
    assert hist.stopped_by == "misclassified"
    errors = 1.0 - np.asarray(hist.accuracy)
    assert errors[-1] <= 0.05 and np.all(errors[:-1] > 0.05)


def test_stop_by_weight_change(blobs):
    X, Y = blobs
    net = fresh()
    before = net.params.copy()
    hist = fastbp.train(net, X, Y, epochs=50, random_state=0, min_weight_change=1e9)
    assert hist.stopped_by == "weight_change" and hist.n_epochs == 1
    # the recorded change is the largest |change| of any weight or bias over the epoch
    assert hist.weight_change[0] == pytest.approx(np.abs(net.params - before).max(), rel=1e-12)
    # a real threshold: stops at the first epoch that moved every parameter less than it
    hist = fastbp.train(fresh(), X, Y, mode="epoch", learning_rate=0.5, epochs=5000, min_weight_change=1e-3)
    assert hist.stopped_by == "weight_change" and hist.n_epochs < 5000
    changes = np.asarray(hist.weight_change)
    assert changes[-1] < 1e-3 and np.all(changes[:-1] >= 1e-3)


def test_stop_by_no_improvement(blobs):
    X, Y = blobs
    # with a huge tol every epoch after the first counts as "no improvement":
    # scikit-learn's rule stops once the count exceeds n_iter_no_change
    hist = fastbp.train(fresh(), X, Y, epochs=100, random_state=0, tol=1e9, n_iter_no_change=3)
    assert hist.stopped_by == "no_improvement" and hist.n_epochs == 3 + 2
    # replay the rule on the recorded losses: it fires exactly at the last epoch
    hist = fastbp.train(fresh(), X, Y, learning_rate=0.5, epochs=2000, random_state=0, tol=1e-4, n_iter_no_change=5)
    assert hist.stopped_by == "no_improvement" and hist.n_epochs < 2000
    best, count, stop_at = np.inf, 0, None
    for epoch, loss in enumerate(hist.loss, start=1):
        count = count + 1 if loss > best - 1e-4 else 0
        best = min(best, loss)
        if count > 5:
            stop_at = epoch
            break
    assert stop_at == hist.n_epochs


def test_no_rule_without_tol(blobs):
    X, Y = blobs
    hist = fastbp.train(fresh(), X, Y, learning_rate=1e-9, epochs=30, random_state=0)
    assert hist.stopped_by == "epochs" and hist.n_epochs == 30


def test_stop_by_callback(blobs):
    X, Y = blobs
    seen = []

    def enough(net, history):
        assert isinstance(net, fastbp.Network)
        seen.append((len(history.loss), history.loss[-1]))
        return len(history.loss) >= 4

    net = fresh()
    hist = fastbp.train(net, X, Y, epochs=50, random_state=0, callback=enough)
    assert hist.stopped_by == "callback" and hist.n_epochs == 4
    # called once per epoch, after the epoch is in the history
    assert [n for n, _ in seen] == [1, 2, 3, 4]
    assert [loss for _, loss in seen] == hist.loss


# -- schedules and History --------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", lambda t: 0.4),
        ("1/t", lambda t: 0.4 / t),
        ("invscaling", lambda t: 0.4 / t**0.7),
    ],
)
@pytest.mark.parametrize("mode", ["case", "epoch"])
def test_schedule_records_learning_rate(blobs, mode, schedule, expected):
    X, Y = blobs
    hist = fastbp.train(fresh(), X, Y, mode=mode, learning_rate=0.4, epochs=6, schedule=schedule, power_t=0.7)
    np.testing.assert_allclose(hist.learning_rate, [expected(t) for t in range(1, 7)], rtol=1e-12)


def test_callable_schedule(blobs):
    X, Y = blobs
    a, b = fresh(), fresh()
    hist = fastbp.train(a, X, Y, mode="epoch", epochs=4, schedule=lambda epoch: 0.1 * epoch)
    np.testing.assert_allclose(hist.learning_rate, [0.1, 0.2, 0.3, 0.4], rtol=1e-12)
    # the rates are really used: a constant 0.1 ends elsewhere
    fastbp.train(b, X, Y, mode="epoch", epochs=4, learning_rate=0.1)
    assert not np.allclose(a.params, b.params)


@pytest.mark.parametrize("mode, batch_size", [("case", None), ("epoch", None), ("minibatch", 16)])
@pytest.mark.parametrize("output_activation", ["logistic", "identity"])
def test_history_lengths(blobs, mode, batch_size, output_activation):
    X, Y = blobs
    net = fastbp.Network([3, 4, 1], activation="tanh", output_activation=output_activation, random_state=0)
    hist = fastbp.train(net, X, Y, mode=mode, batch_size=batch_size, epochs=5, random_state=0)
    assert isinstance(hist, fastbp.History)
    assert hist.n_epochs == 5
    for name in ("loss", "seconds", "learning_rate", "weight_change"):
        assert len(getattr(hist, name)) == 5, name
    assert len(hist.accuracy) == (5 if output_activation == "logistic" else 0)
    assert all(s >= 0 for s in hist.seconds)
    assert all(np.isfinite(hist.loss)) and all(w > 0 for w in hist.weight_change)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("mode, batch_size", [("case", None), ("epoch", None), ("minibatch", 16)])
def test_track_end_is_the_final_network(blobs, mode, batch_size, alpha):
    X, Y = blobs
    net = fresh()
    hist = fastbp.train(net, X, Y, mode=mode, batch_size=batch_size, epochs=4, random_state=0, track="end", alpha=alpha)
    loss, acc = net.evaluate(X, Y)
    assert hist.loss[-1] == pytest.approx(loss, rel=1e-12)
    assert hist.accuracy[-1] == pytest.approx(acc)


def test_track_pass_differs_from_end(blobs):
    X, Y = blobs
    end = fastbp.train(fresh(), X, Y, mode="case", learning_rate=0.5, epochs=3, random_state=0, track="end")
    passed = fastbp.train(fresh(), X, Y, mode="case", learning_rate=0.5, epochs=3, random_state=0, track="pass")
    assert end.loss != passed.loss
    # early in training the network at the end of a pass is better than during it
    assert end.loss[0] < passed.loss[0]
