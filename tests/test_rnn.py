"""fastbp.RNN: backpropagation through time against central differences and a plain numpy
reference (with truncation), case updating step by step, clipping, problems a
feed-forward network cannot learn (delayed XOR, the adding problem), bad input."""
import numpy as np
import pytest

import fastbp
from fastbp import RNN

ACT = {"tanh": np.tanh, "logistic": lambda a: 1 / (1 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0),
       "identity": lambda a: a}
DACT = {"tanh": lambda h: 1 - h * h, "logistic": lambda h: h * (1 - h), "relu": lambda h: (h > 0) * 1.0,
        "identity": lambda h: np.ones_like(h)}


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def naive_loss_grad(rnn, X, Y, bptt=None):
    """Mean loss over sequences and its gradient, BPTT written out in numpy: an error at step
    t flows back within its block of bptt steps (blocks counted back from the last step)."""
    f, df = ACT[rnn.activation], DACT[rnn.activation]
    out = {"identity": lambda z: z, "logistic": ACT["logistic"], "softmax": softmax}[rnn.output_activation]
    Wx, Wh, bh, Wy, by = (a.astype(np.float64) for a in (rnn.W_x, rnn.W_h, rnn.b_h, rnn.W_y, rnn.b_y))
    g = {k: np.zeros_like(v) for k, v in dict(Wx=Wx, Wh=Wh, bh=bh, Wy=Wy, by=by).items()}
    n, T, _ = X.shape
    per_step = Y.ndim == 3
    total = 0.0
    for s in range(n):
        hs = [np.zeros(len(bh))]
        for t in range(T):
            hs.append(f(X[s, t] @ Wx + hs[-1] @ Wh + bh))
        steps = range(T) if per_step else [T - 1]
        for t in steps:
            o = out(hs[t + 1] @ Wy + by)
            y = Y[s, t] if per_step else Y[s]
            if rnn.loss == "squared_error":
                total += 0.5 * np.sum((y - o) ** 2) / len(steps)
                do = (o - y) * (o * (1 - o) if rnn.output_activation == "logistic" else 1)
            else:
                total -= np.sum(y * np.log(o)) / len(steps)
                do = o - y
            do = do / len(steps)
            g["Wy"] += np.outer(hs[t + 1], do)
            g["by"] += do
            dh = Wy @ do
            # the first step of t's block: blocks of bptt steps, counted back from step T-1
            block_start = max(0, T - ((T - 1 - t) // bptt + 1) * bptt) if bptt else 0
            for u in range(t, block_start - 1, -1):
                da = dh * df(hs[u + 1])
                g["Wx"] += np.outer(X[s, u], da)
                g["Wh"] += np.outer(hs[u], da)
                g["bh"] += da
                dh = Wh @ da
    grad = np.concatenate([g[k].ravel() for k in ("Wx", "Wh", "bh", "Wy", "by")]) / n
    return total / n, grad


def problem(kind, n=7, T=5, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, n_in))
    shape = (n, T, n_out) if kind == "step" else (n, n_out)
    Y = rng.normal(size=shape)
    return X, Y


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu"])
@pytest.mark.parametrize("targets", ["sequence", "step"])
def test_bptt_gradient_matches_central_differences(activation, targets):
    rnn = RNN([3, 4, 2], activation=activation, random_state=1)  # with the L2 term too
    X, Y = problem(targets)
    loss, grad = rnn.loss_gradient(X, Y, alpha=0.2)
    eps = 1e-6
    numeric = np.empty_like(grad)
    for k in range(rnn.n_params):
        keep = rnn.params[k]
        rnn.params[k] = keep + eps
        up, _ = rnn.loss_gradient(X, Y, alpha=0.2)
        rnn.params[k] = keep - eps
        down, _ = rnn.loss_gradient(X, Y, alpha=0.2)
        rnn.params[k] = keep
        numeric[k] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(grad).max() > 1e-3


@pytest.mark.parametrize("bptt", [None, 1, 2, 3])
@pytest.mark.parametrize("targets", ["sequence", "step"])
def test_bptt_and_truncation_match_the_numpy_reference(bptt, targets):
    rnn = RNN([3, 5, 2], activation="tanh", random_state=2)
    X, Y = problem(targets, T=7)
    loss, grad = rnn.loss_gradient(X, Y, bptt_steps=bptt)
    ref_loss, ref_grad = naive_loss_grad(rnn, X, Y, bptt)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


def test_softmax_log_loss_gradient_matches_reference():
    rnn = RNN([3, 4, 3], activation="logistic", output_activation="softmax", loss="log_loss",
              random_state=3)
    X, _ = problem("step", n_out=3)
    Y = np.eye(3)[np.random.default_rng(0).integers(0, 3, size=(7, 5))]
    loss, grad = rnn.loss_gradient(X, Y)
    ref_loss, ref_grad = naive_loss_grad(rnn, X, Y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


def test_case_updating_is_one_step_per_sequence():
    rnn = RNN([3, 4, 2], random_state=4)
    X, Y = problem("sequence", n=3)
    expected = rnn.params.copy()
    probe = rnn.copy()
    for s in range(3):
        probe.params[:] = expected
        _, grad = probe.loss_gradient(X[s:s + 1], Y[s:s + 1])
        expected = expected - 0.1 * grad
    fastbp.train(rnn, X, Y, mode="case", learning_rate=0.1, epochs=1, shuffle=False)
    np.testing.assert_allclose(rnn.params, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["epoch", "minibatch"])
def test_epoch_and_minibatch_follow_the_mean_gradient(mode):
    rnn = RNN([3, 4, 2], random_state=5)
    X, Y = problem("step", n=12)
    start = rnn.params.copy()
    fastbp.train(rnn, X, Y, mode=mode, batch_size=4, learning_rate=0.2, epochs=1, shuffle=False)
    probe = rnn.copy()
    probe.params[:] = start
    batches = [slice(0, 12)] if mode == "epoch" else [slice(0, 4), slice(4, 8), slice(8, 12)]
    for b in batches:
        _, grad = probe.loss_gradient(X[b], Y[b])
        probe.params[:] -= 0.2 * grad
    np.testing.assert_allclose(rnn.params, probe.params, rtol=1e-12, atol=1e-14)


def test_clip_norm_bounds_each_update():
    rnn = RNN([3, 4, 2], random_state=6)
    X, Y = problem("sequence", n=1)
    Y = Y * 100  # a big gradient
    _, grad = rnn.loss_gradient(X, Y)
    assert np.linalg.norm(grad) > 1.0
    start = rnn.params.copy()
    fastbp.train(rnn, X, Y, mode="case", learning_rate=0.1, epochs=1, clip_norm=1.0)
    step = rnn.params - start
    assert np.linalg.norm(step) == pytest.approx(0.1 * 1.0, rel=1e-9)
    np.testing.assert_allclose(step / np.linalg.norm(step), -grad / np.linalg.norm(grad), atol=1e-12)


def delayed_xor(n, T, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(n, T))
    y = x.copy()
    y[:, 2:] = x[:, 2:] ^ x[:, :-2]  # y_t = x_t xor x_{t-2} (x_{-1} = x_{-2} = 0)
    return x[:, :, None].astype(float), y.astype(float)


def test_learns_delayed_xor_which_a_feed_forward_network_cannot():
    X, Y = delayed_xor(400, 12, seed=0)
    rnn = RNN([1, 12, 1], output_activation="logistic", loss="log_loss", random_state=0)
    hist = fastbp.train(rnn, X, Y, mode="minibatch", batch_size=16, optimizer="adam",
                        learning_rate=0.02, epochs=60)
    Xt, Yt = delayed_xor(200, 12, seed=1)
    accuracy = ((rnn.predict(Xt)[:, :, 0] > 0.5) == Yt).mean()
    assert rnn.targets_ == "step" and accuracy > 0.97, (accuracy, hist.loss[-3:])
    # a feed-forward network sees x_t alone: it cannot beat chance on the xor steps
    net = fastbp.Network([1, 12, 1], output_activation="logistic", loss="log_loss", random_state=0)
    fastbp.train(net, X.reshape(-1, 1), Y.reshape(-1, 1), mode="minibatch", batch_size=64,
                 optimizer="adam", learning_rate=0.02, epochs=20)
    ff = ((net.predict(Xt.reshape(-1, 1))[:, 0] > 0.5) == Yt.ravel()).mean()
    assert ff < 0.8


def adding_problem(n, T, seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(n, T))
    marks = np.zeros((n, T))
    first = rng.integers(0, T // 2, size=n)
    second = rng.integers(T // 2, T, size=n)
    marks[np.arange(n), first] = 1
    marks[np.arange(n), second] = 1
    X = np.stack([values, marks], axis=2)
    return X, (values * marks).sum(axis=1)


def test_learns_the_adding_problem():
    X, y = adding_problem(2000, 10, seed=0)
    rnn = RNN([2, 24, 1], activation="tanh", random_state=0)
    fastbp.train(rnn, X, y, mode="minibatch", batch_size=20, optimizer="adam", learning_rate=0.01,
                 epochs=40, clip_norm=1.0)
    Xt, yt = adding_problem(500, 10, seed=1)
    mse = np.mean((rnn.predict(Xt)[:, 0] - yt) ** 2)
    baseline = np.mean((yt - 1.0) ** 2)  # always answering 1, the mean of the sum: ~0.167
    assert rnn.targets_ == "sequence" and mse < 0.1 * baseline, (mse, baseline)


def test_views_and_layout():
    rnn = RNN([3, 4, 2], dtype=np.float32, random_state=0)
    assert rnn.n_params == 3 * 4 + 4 * 4 + 4 + 4 * 2 + 2
    for view in (rnn.W_x, rnn.W_h, rnn.b_h, rnn.W_y, rnn.b_y):
        assert np.shares_memory(view, rnn.params) and view.dtype == np.float32
    rnn.W_h[1, 2] = 7.0
    assert rnn.params[3 * 4 + 1 * 4 + 2] == 7.0
    assert np.abs(RNN([3, 16, 2], random_state=0).params).max() <= 0.25  # 1/sqrt(16)
    assert rnn.predict(np.zeros((5, 6, 3))).shape == (5, 2)  # untrained: per sequence


def test_same_seed_same_bits_on_any_thread_count():
    X, Y = problem("step", n=60)

    def fit(n_jobs):
        rnn = RNN([3, 5, 2], random_state=0)
        fastbp.train(rnn, X, Y, mode="epoch", epochs=3, n_jobs=n_jobs, learning_rate=0.1)
        return rnn.params

    assert np.array_equal(fit(1), fit(2))


BAD = [
    (lambda: np.zeros((5, 3)), None, "must be 3-D"),
    (lambda: np.zeros((5, 4, 3, 1)), None, "must be 3-D"),
    (lambda: [np.zeros((4, 3)), np.zeros((5, 3))], None, "different lengths"),
    (lambda: np.full((5, 4, 3), np.nan), None, "NaN"),
    (lambda: np.zeros((5, 4, 2)), None, "2 features per step, the network expects 3"),
    (lambda: np.zeros((0, 4, 3)), None, "empty"),
    (lambda: np.zeros((5, 4, 3)), np.zeros((4, 2)), "X has 5 sequences but Y has 4"),
    (lambda: np.zeros((5, 4, 3)), np.zeros((5, 3, 2)), "Y must be per sequence"),
    (lambda: np.zeros((5, 4, 3)).astype(complex), None, "real numbers"),
]


@pytest.mark.parametrize("make_X, Y, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_refused_clearly_and_changes_nothing(make_X, Y, message):
    rnn = RNN([3, 4, 2], random_state=0)
    before = rnn.params.copy()
    Y = np.zeros((5, 2)) if Y is None else Y
    with pytest.raises((ValueError, TypeError), match=message):
        fastbp.train(rnn, make_X(), Y, epochs=1)
    assert np.array_equal(rnn.params, before)


def test_bad_options_are_refused():
    rnn = RNN([3, 4, 2], random_state=0)
    X, Y = problem("sequence", n=5, T=4)
    with pytest.raises(ValueError, match="bptt_steps must be >= 1"):
        fastbp.train(rnn, X, Y, bptt_steps=0)
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        fastbp.train(rnn, X, Y, clip_norm=-1.0)
    with pytest.raises(ValueError, match="apply to recurrent networks"):
        fastbp.train(fastbp.Network([3, 2]), X[:, 0], Y, bptt_steps=2)
    with pytest.raises(ValueError, match="sizes must be \\[n_in, n_hidden, n_out\\]"):
        RNN([3, 4, 4, 2])
    with pytest.raises(ValueError, match="activation must be one of"):
        RNN([3, 4, 2], activation="softmax")


# -- the scikit-learn style estimators ----------------------------------------------------------
def test_rnn_classifier_per_step_and_per_sequence_labels():
    import pickle

    from sklearn.base import clone
    X, Y = delayed_xor(300, 10, seed=0)
    labels = np.array(["off", "on"])[Y.astype(int)]
    clf = fastbp.RNNClassifier(hidden_size=12, learning_rate_init=0.02, batch_size=16,
                               max_iter=50, random_state=0)
    assert clf.fit(X, labels) is clf
    Xt, Yt = delayed_xor(100, 10, seed=1)
    assert clf.predict(Xt).shape == (100, 10) and set(clf.classes_) == {"off", "on"}
    assert clf.score(Xt, np.array(["off", "on"])[Yt.astype(int)]) > 0.97
    proba = clf.predict_proba(Xt)
    assert proba.shape == (100, 10, 2) and np.allclose(proba.sum(axis=-1), 1)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict(Xt), clf.predict(Xt))
    assert clone(clf).get_params() == clf.get_params()
    # per sequence, three classes: which third of the range the sequence's mean falls in
    rng = np.random.default_rng(2)
    Xs = rng.normal(size=(600, 8, 1))
    ys = np.digitize(Xs.mean(axis=(1, 2)), [-0.15, 0.15])
    seq = fastbp.RNNClassifier(hidden_size=10, max_iter=40, random_state=0).fit(Xs[:500], ys[:500])
    assert seq.predict(Xs[500:]).shape == (100,) and seq.score(Xs[500:], ys[500:]) > 0.8
    assert seq.rnn_.output_activation == "softmax"


def test_rnn_regressor_adding_problem_and_shapes():
    X, y = adding_problem(1500, 10, seed=0)
    reg = fastbp.RNNRegressor(hidden_size=24, batch_size=20, max_iter=40, clip_norm=1.0,
                              random_state=0).fit(X, y)
    Xt, yt = adding_problem(300, 10, seed=1)
    assert reg.predict(Xt).shape == (300,) and reg.score(Xt, yt) > 0.9
    per_step = fastbp.RNNRegressor(hidden_size=8, max_iter=3, random_state=0).fit(
        X[:50], np.cumsum(X[:50, :, :1], axis=1))
    assert per_step.predict(X[:5]).shape == (5, 10, 1) and per_step.n_iter_ == 3


def test_rnn_estimators_refuse_bad_input():
    clf = fastbp.RNNClassifier(max_iter=2)
    with pytest.raises(ValueError, match="must be 3-D"):
        clf.fit(np.zeros((10, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="y must hold a label per sequence"):
        clf.fit(np.zeros((10, 4, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(np.zeros((10, 4, 2)), np.zeros(10))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        fastbp.RNNClassifier(batch_size=0).fit(np.zeros((10, 4, 2)), np.arange(10) % 2)
    with pytest.raises(ValueError, match="NaN"):
        fastbp.RNNRegressor(max_iter=2).fit(np.full((10, 4, 2), np.nan), np.zeros(10))
    with pytest.raises(TypeError, match="y must hold numbers"):
        fastbp.RNNRegressor(max_iter=2).fit(np.zeros((10, 4, 2)), np.array(["a"] * 10))


def test_forward_passes_run_on_threads_only_for_a_large_input(monkeypatch, spy_kernels):
    """predict() and evaluate() run their sequences on several threads when sequences x
    steps x weights reach PARALLEL_FORWARD_WORK, else on one (as Network's): the same chunks,
    the same numbers either way."""
    rnn = RNN([3, 5, 2], random_state=3)
    rng = np.random.RandomState(4)
    X, Y = rng.normal(size=(300, 6, 3)), rng.normal(size=(300, 2))
    assert X.shape[0] * X.shape[1] * rnn.n_params < fastbp._model.PARALLEL_FORWARD_WORK
    calls = spy_kernels("rnn_predict", "rnn_predict_serial", "rnn_evaluate", "rnn_evaluate_serial")
    one = rnn.predict(X), rnn.evaluate(X, Y)
    assert calls == ["rnn_predict_serial", "rnn_evaluate_serial"]
    monkeypatch.setattr(fastbp._model, "PARALLEL_FORWARD_WORK", 1)
    several = rnn.predict(X, n_jobs=2), rnn.evaluate(X, Y)
    assert calls[2:] == ["rnn_predict", "rnn_evaluate"]
    np.testing.assert_array_equal(several[0], one[0])
    assert several[1] == one[1]
    h = np.zeros((300, 5))  # the numbers themselves: the recurrence written out
    for t in range(6):
        h = np.tanh(X[:, t] @ rnn.W_x + h @ rnn.W_h + rnn.b_h)
    np.testing.assert_allclose(one[0], h @ rnn.W_y + rnn.b_y, rtol=1e-10, atol=1e-12)


def test_training_evaluations_run_on_threads_only_for_large_data(monkeypatch, spy_kernels):
    """train()'s evaluations after each epoch (validation, track="end") run in run_rnn on one
    thread, and in its twin run_rnn_parallel only past PARALLEL_FORWARD_WORK: the same
    chunks, so the same history and weights either way."""
    rng = np.random.RandomState(5)
    X, Y = rng.normal(size=(300, 4, 2)), rng.normal(size=(300, 1))  # 3 chunks each
    val = (rng.normal(size=(300, 4, 2)), rng.normal(size=(300, 1)))
    calls = spy_kernels("run_rnn", "run_rnn_parallel")
    fits = []
    for work, kernel in ((fastbp._model.PARALLEL_FORWARD_WORK, "run_rnn"), (1, "run_rnn_parallel")):
        monkeypatch.setattr(fastbp._model, "PARALLEL_FORWARD_WORK", work)
        for mode in ("case", "epoch"):
            rnn = RNN([2, 4, 1], random_state=6)
            h = fastbp.train(rnn, X, Y, mode=mode, epochs=5, learning_rate=0.05, track="end",
                             validation=val, random_state=7)
            fits.append((rnn.params.copy(), h.loss, h.val_loss))
            assert calls and set(calls) == {kernel}  # a fit may take several slices (calls)
            calls.clear()
    for serial, threaded in zip(fits[:2], fits[2:]):
        for a, b in zip(serial, threaded):
            np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(fits[0][2])) and fits[0][1][-1] < fits[0][1][0]


def test_evaluate_answers_as_a_network_does():
    """evaluate() is the models' one method: accuracy None for outputs that are not class
    scores, else the fraction of sequences whose thresholded outputs match the targets."""
    rng = np.random.RandomState(8)
    X = rng.normal(size=(50, 3, 2))
    Y = (X[:, -1, :1] > 0).astype(float)
    regressor = RNN([2, 4, 1], random_state=1)
    loss, accuracy = regressor.evaluate(X, Y)
    assert accuracy is None
    np.testing.assert_allclose(loss, 0.5 * np.mean((regressor.predict(X) - Y) ** 2), rtol=1e-10)
    classifier = RNN([2, 4, 1], output_activation="logistic", random_state=1)
    _, accuracy = classifier.evaluate(X, Y)
    assert accuracy == np.mean((classifier.predict(X) > 0.5) == (Y > 0.5))
