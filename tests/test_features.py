"""Issue 8's features beyond the textbook: more activations, RPROP / Quickprop, validation
data, dropout, plots."""
import warnings

import numpy as np
import pytest

import fastbp


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "softplus"])
def test_new_activations_everywhere(activation):
    """Network, RNN and the drop-ins take them (scikit-learn's MLPs do not); they learn XOR-ish data."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastbp.MLPClassifier(hidden_layer_sizes=(16,), activation=activation, max_iter=300,
                                   learning_rate_init=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert fastbp.RNN([2, 3, 1], activation=activation).activation == activation
    net = fastbp.Network([2, 3, 1], activation=activation)
    assert np.isfinite(net.predict(X * 100)).all()


# -- RPROP and Quickprop ------------------------------------------------------------------------
def rprop_reference(w, g_seq, delta_zero=0.1, inc=1.2, dec=0.5, dmin=0.0, dmax=50.0):
    """iRPROP- in plain numpy, with FANN's floor of 1e-4 under the last step."""
    step, last = np.full_like(w, delta_zero), np.zeros_like(w)
    for g in g_seq:
        step = np.maximum(step, 1e-4)
        flip = last * g < 0
        step = np.where(flip, np.maximum(step * dec, dmin), np.minimum(step * inc, dmax))
        g = np.where(flip, 0.0, g)
        w = w - np.sign(g) * step
        last = g
    return w


def quickprop_reference(w, g_seq, n, lr=0.7, decay=-0.0001, mu=1.75):
    """FANN's fann_update_weights_quickprop in numpy: slopes are minus summed gradients."""
    step, last = np.zeros_like(w), np.zeros_like(w)
    shrink = mu / (1 + mu)
    for g in g_seq:
        slope = -n * g + decay * w
        new = np.zeros_like(w)
        for i in range(len(w)):
            if step[i] > 0.001:
                new[i] += lr / n * slope[i] if slope[i] > 0 else 0.0
                new[i] += mu * step[i] if slope[i] > shrink * last[i] else step[i] * slope[i] / (last[i] - slope[i])
            elif step[i] < -0.001:
                new[i] += lr / n * slope[i] if slope[i] < 0 else 0.0
                new[i] += mu * step[i] if slope[i] < shrink * last[i] else step[i] * slope[i] / (last[i] - slope[i])
            else:
                new[i] += lr / n * slope[i]
        w, step, last = w + new, new, slope
    return w


@pytest.mark.parametrize("optimizer", ["rprop", "quickprop"])
def test_batch_algorithms_follow_their_reference(optimizer):
    """Three epochs of train(optimizer=...) = the reference rule fed the same mean gradients."""
    X, y = fastbp.datasets.parity(3)
    Y = y[:, None].astype(float)
    net = fastbp.Network([3, 4, 1], activation="tanh", random_state=0)
    probe = net.copy()
    w, grads = probe.params.copy(), []
    for _ in range(3):
        probe.params[:] = w
        grads.append(probe.loss_gradient(X, Y)[1])
        w = rprop_reference(net.params, grads) if optimizer == "rprop" else \
            quickprop_reference(net.params, grads, len(X))
    fastbp.train(net, X, Y, mode="epoch", optimizer=optimizer, learning_rate=0.7, epochs=3)
    np.testing.assert_allclose(net.params, w, rtol=1e-12, atol=1e-14)


def test_rprop_and_quickprop_beat_plain_epoch_updating_on_parity_and_two_spirals():
    X, y = fastbp.datasets.parity(4)
    Y = y[:, None].astype(float)
    final = {}
    for optimizer in ("sgd", "rprop", "quickprop"):
        losses = []
        for seed in range(4):
            net = fastbp.Network([4, 8, 1], activation="tanh", random_state=seed)
            losses.append(fastbp.train(net, X, Y, mode="epoch", optimizer=optimizer,
                                       learning_rate=0.7, epochs=300).loss[-1])
        final[optimizer] = np.mean(losses)
    assert final["rprop"] < 0.5 * final["sgd"] and final["quickprop"] < final["sgd"], final
    Xs, ys = fastbp.datasets.two_spirals(97)
    acc = {}
    for optimizer in ("sgd", "rprop"):
        net = fastbp.Network([2, 24, 24, 1], activation="tanh", random_state=0)
        acc[optimizer] = fastbp.train(net, Xs, ys, mode="epoch", optimizer=optimizer,
                                      learning_rate=0.7, epochs=1500).accuracy[-1]
    assert acc["rprop"] > 0.95 and acc["rprop"] > acc["sgd"] + 0.1, acc


def test_batch_algorithms_need_epoch_mode_and_good_parameters():
    net = fastbp.Network([2, 2, 1], random_state=0)
    X, y = fastbp.datasets.xor()
    before = net.params.copy()
    with pytest.raises(ValueError, match="batch algorithm .* needs mode='epoch'"):
        fastbp.train(net, X, y, mode="case", optimizer="rprop")
    with pytest.raises(ValueError, match="rprop_decrease_factor must be < 1"):
        fastbp.train(net, X, y, mode="epoch", optimizer="rprop", rprop_decrease_factor=1.5)
    with pytest.raises(ValueError, match="rprop_delta_max must be >"):
        fastbp.train(net, X, y, mode="epoch", optimizer="rprop", rprop_delta_min=2.0, rprop_delta_max=1.0)
    with pytest.raises(ValueError, match="quickprop_mu must be > 0"):
        fastbp.train(net, X, y, mode="epoch", optimizer="quickprop", quickprop_mu=0.0)
    assert np.array_equal(net.params, before)
    rnn = fastbp.RNN([1, 4, 1], random_state=0)  # the RNN's epoch kernel takes them too
    Xr = np.random.default_rng(0).normal(size=(20, 5, 1))
    hist = fastbp.train(rnn, Xr, Xr.sum(axis=1), mode="epoch", optimizer="rprop", epochs=30)
    assert hist.loss[-1] < hist.loss[0]


@pytest.mark.parametrize("solver", ["rprop", "quickprop"])
def test_estimators_take_fanns_batch_solvers(solver):
    from sklearn.base import clone
    X, y = fastbp.datasets.parity(4)
    clf = fastbp.MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver=solver,
                               learning_rate_init=0.7, max_iter=400, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert clf._trainer.mode == "epoch" and clf.n_iter_ == 400
    assert clf.score(X, y) >= (0.9 if solver == "rprop" else 0.6)
    assert clone(clf).get_params()["rprop_delta_max"] == 50.0
    with pytest.raises(ValueError, match="rprop_decrease_factor"):
        fastbp.MLPRegressor(solver="rprop", rprop_decrease_factor=2.0, max_iter=2).fit(X, y)
    from sklearn.neural_network import MLPClassifier
    with pytest.raises(ValueError, match="solver"):  # scikit-learn's own class is unaffected
        MLPClassifier(solver=solver).fit(X, y)


# -- validation data ----------------------------------------------------------------------------
def test_train_validation_history_and_early_stopping():
    X, y = fastbp.datasets.teacher(400, 5, seed=0, dtype=np.float64)
    Xv, yv = fastbp.datasets.teacher(200, 5, seed=1, dtype=np.float64)
    Xv, yv = Xv[:100], yv[:100]
    net = fastbp.Network([5, 64, 1], activation="relu", random_state=0)
    hist = fastbp.train(net, X, y, mode="minibatch", batch_size=16, optimizer="adam",
                        learning_rate=0.01, epochs=400, validation=(Xv, yv), early_stopping=True,
                        n_iter_no_change=5)
    assert hist.stopped_by == "early_stopping" and hist.n_epochs < 400
    assert len(hist.val_loss) == len(hist.val_accuracy) == hist.n_epochs
    best = int(np.argmin(hist.val_loss))
    loss_now, accuracy_now = net.evaluate(Xv, yv)
    assert loss_now == pytest.approx(hist.val_loss[best], rel=1e-9)  # the best epoch's weights back
    assert accuracy_now == hist.val_accuracy[best]
    with pytest.raises(ValueError, match="early_stopping=True needs validation"):
        fastbp.train(net, X, y, early_stopping=True)
    with pytest.raises(ValueError, match="validation: X has 4 features"):
        fastbp.train(net, X, y, validation=(Xv[:, :4], yv))
    with pytest.raises(TypeError, match="validation must be a pair"):
        fastbp.train(net, X, y, validation=Xv)


def test_estimator_validation_data_class_weight_and_callback():
    X, y = fastbp.datasets.teacher(600, 6, n_classes=3, seed=0, dtype=np.float64)
    Xv, yv = fastbp.datasets.teacher(900, 6, n_classes=3, seed=0, dtype=np.float64)
    Xv, yv = Xv[600:], yv[600:]  # the same teacher, other inputs
    clf = fastbp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y, validation_data=(Xv, yv))
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_ == 30
    assert clf.validation_scores_[-1] == pytest.approx(clf.score(Xv, yv))
    assert clf.validation_loss_curve_[-1] < clf.validation_loss_curve_[0]
    # early stopping on the user's set: its best epoch's weights come back
    early = fastbp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, early_stopping=True,
                                 n_iter_no_change=3, random_state=0)
    early.fit(X, y, validation_data=(Xv, yv))
    assert early.n_iter_ < 300 and early.score(Xv, yv) == pytest.approx(max(early.validation_scores_))
    # class_weight: a rare class weighed up is predicted more often
    rare = np.where(y == 2, 2, 0)
    keep = (rare == 0) | (np.arange(len(y)) % 5 == 0)
    plain = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0)
    balanced = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0,
                                    class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(X[keep], rare[keep])
        balanced.fit(X[keep], rare[keep])
    assert (balanced.predict(X) == 2).sum() > (plain.predict(X) == 2).sum()
    # a per-epoch callback that stops training
    seen = []
    stopper = fastbp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=50, random_state=0,
                                  callback=lambda est: seen.append(est.n_iter_) or est.n_iter_ == 5)
    stopper.fit(X, X[:, 0])
    assert stopper.n_iter_ == 5 and seen == [1, 2, 3, 4, 5]
    with pytest.raises(TypeError, match="validation_data must be a pair"):
        clf.fit(X, y, validation_data=Xv)
    with pytest.raises(ValueError, match="classes not seen"):
        clf.fit(X, y, validation_data=(Xv, yv + 7))


# -- plots --------------------------------------------------------------------------------------
def test_plot_history_of_histories_and_estimators(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    X, y = fastbp.datasets.xor()
    net = fastbp.Network([2, 4, 1], random_state=0)
    hist = fastbp.train(net, X, y, epochs=20, validation=(X, y))
    fig = fastbp.plot_history(hist, tmp_path / "h.png")
    assert len(fig.axes) == 2 and (tmp_path / "h.png").stat().st_size > 1000
    assert len(fig.axes[0].lines) == 2  # training and validation loss
    reg = fastbp.MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y)
    assert len(fastbp.plot_history(reg).axes) == 1  # a regressor: loss only
    rnn = fastbp.RNNRegressor(hidden_size=3, max_iter=3).fit(np.zeros((4, 3, 1)), np.arange(4.0))
    assert fastbp.plot_history(rnn).axes[0].lines[0].get_ydata().shape == (3,)
    with pytest.raises(TypeError, match="plot_history takes"):
        fastbp.plot_history(net)
    with pytest.raises(ValueError, match="no epochs"):
        fastbp.plot_history(fastbp.History())
    from sklearn.exceptions import NotFittedError  # what scikit-learn users expect (issue 16)
    for unfitted in (fastbp.MLPClassifier(), fastbp.RNNRegressor()):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            fastbp.plot_history(unfitted)


# -- dropout ------------------------------------------------------------------------------------
from fastbp._kernels import backprop as K  # noqa: E402
from fastbp.network import n_chunks_for  # noqa: E402
from fastbp.train import Trainer  # noqa: E402


def dropout_problem(dtype=np.float64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(dtype)
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(dtype)
    net = fastbp.Network([5, 7, 6, 1], activation="tanh", dtype=dtype, random_state=0)
    return net, X, Y


def test_dropout_gradient_is_the_thinned_networks_gradient():
    """With the pass's seed fixed, the gradient under dropout is the gradient of the loss the
    same (dropped-out) pass computes: central differences through the same masks."""
    net, X, Y = dropout_problem()
    trainer = Trainer(net, "epoch", dropout=[0.3, 0.5])
    trainer.dropout_seed = 12345
    layout = trainer.training_layout()
    order = np.arange(len(X), dtype=np.int64)
    rows = np.empty((n_chunks_for(len(X)), net.n_params))
    grad = np.empty(net.n_params)

    def loss_and_grad():
        loss, _, _ = K.batch_gradient(net.params, layout, X, Y, np.empty(0), order, 0, len(X),
                                      net.codes, rows, grad, True, None)
        return loss, grad.copy()

    loss, analytic = loss_and_grad()
    numeric = np.empty_like(analytic)
    for k in range(net.n_params):
        keep = net.params[k]
        net.params[k] = keep + 1e-6
        up, _ = loss_and_grad()
        net.params[k] = keep - 1e-6
        down, _ = loss_and_grad()
        net.params[k] = keep
        numeric[k] = (up - down) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    plain, _, _ = K.batch_gradient(net.params, net.layout, X, Y, np.empty(0), order, 0, len(X),
                                   net.codes, rows, grad, None, None)
    assert loss != plain  # units were dropped


def test_dropout_case_equals_minibatch_of_one_and_repeats_bit_for_bit():
    net, X, Y = dropout_problem()
    runs = {}
    for mode, batch in (("case", None), ("minibatch", 1), ("case-again", None)):
        run = net.copy()
        fastbp.train(run, X, Y, mode=mode.split("-")[0], batch_size=batch, epochs=3,
                     learning_rate=0.1, dropout=0.4, random_state=7)
        runs[mode] = run.params
    assert np.array_equal(runs["case"], runs["case-again"])
    np.testing.assert_allclose(runs["case"], runs["minibatch"], rtol=1e-10, atol=1e-12)
    other = net.copy()
    fastbp.train(other, X, Y, mode="case", epochs=3, learning_rate=0.1, dropout=0.4, random_state=8)
    assert not np.allclose(other.params, runs["case"])
    zero = net.copy()
    plain = net.copy()
    fastbp.train(zero, X, Y, mode="case", epochs=2, dropout=0.0, random_state=7)
    fastbp.train(plain, X, Y, mode="case", epochs=2, random_state=7)
    assert np.array_equal(zero.params, plain.params)  # rate 0 is no dropout, bit for bit


def test_dropout_epoch_mode_same_bits_on_any_thread_count_and_off_at_predict():
    net, X, Y = dropout_problem(np.float32)
    X = np.tile(X, (20, 1))
    Y = np.tile(Y, (20, 1))
    a, b = net.copy(), net.copy()
    fastbp.train(a, X, Y, mode="epoch", epochs=3, dropout=0.5, random_state=1, n_jobs=1)
    fastbp.train(b, X, Y, mode="epoch", epochs=3, dropout=0.5, random_state=1, n_jobs=2)
    assert np.array_equal(a.params, b.params)
    ref = fastbp.Network.from_coefs(a.coefs, a.intercepts, activation="tanh")
    assert np.array_equal(a.predict(X), ref.predict(X)) and np.array_equal(a.predict(X), a.predict(X))


def test_dropout_drops_at_its_rate():
    layout = np.zeros((2, K.TRAIN_LAYOUT_COLUMNS), dtype=np.int64)
    layout[0, K.DROP], layout[0, K.DROP_SEED] = round(0.3 * K.DROP_ONE), 99
    kept = [K.keep_scale(layout, 0, t, j) for t in range(200) for j in range(50)]
    assert abs(np.mean(np.array(kept) == 0) - 0.3) < 0.02
    assert set(kept) == {0.0, K.DROP_ONE / (K.DROP_ONE - layout[0, K.DROP])}  # 1/(1 - 0.3), to 2**-32


def test_dropout_refusals():
    net, X, Y = dropout_problem()
    for bad, message in ((1.0, "dropout\\[0\\] must be < 1"), (-0.1, "must be >= 0"),
                         ([0.1], "one per hidden layer \\(2\\)"), ("x", "must be a real number")):
        with pytest.raises((ValueError, TypeError), match=message):
            fastbp.train(net, X, Y, dropout=bad)
    with pytest.raises(ValueError, match="needs a hidden layer"):
        fastbp.train(fastbp.Network([5, 1]), X, Y, dropout=0.2)
    with pytest.raises(ValueError, match="not supported for fastbp.RNN"):
        fastbp.train(fastbp.RNN([5, 3, 1]), X[:, None, :], Y, dropout=0.2)


def test_estimators_take_dropout():
    X, y = fastbp.datasets.teacher(300, 8, seed=0, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fastbp.MLPClassifier(hidden_layer_sizes=(32,), dropout=0.3, max_iter=20, random_state=0).fit(X, y)
        b = fastbp.MLPClassifier(hidden_layer_sizes=(32,), dropout=0.3, max_iter=20, random_state=0).fit(X, y)
        c = fastbp.MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0).fit(X, y)
    assert np.array_equal(a.coefs_[0], b.coefs_[0]) and not np.array_equal(a.coefs_[0], c.coefs_[0])
    assert a.score(X, y) > 0.7  # 20 epochs of adam at its default rate, half the units gone
    with pytest.raises(ValueError, match="dropout works with the stochastic solvers"):
        fastbp.MLPClassifier(solver="lbfgs", dropout=0.2, max_iter=2).fit(X, y)


# -- batch normalisation ------------------------------------------------------------------------
def bn_problem():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 4)) * [1, 10, 0.1, 3] + [0, 5, -2, 1]
    y = rng.integers(0, 3, size=30)
    net = fastbp.Network([4, 6, 5, 3], activation="tanh", output_activation="softmax",
                         loss="log_loss", random_state=0, batch_norm=True)
    net.params[:] += np.random.default_rng(1).normal(scale=0.1, size=net.n_params)  # gamma, beta != 1, 0
    return net, X, fastbp.datasets.one_hot(y, 3)


def naive_bn_forward(net, X, stats=None):
    """Plain numpy: each hidden layer's I normalised over the batch (or with running stats)."""
    A = X
    n_layers = len(net.sizes) - 1
    for l in range(n_layers):
        Z = A @ net.coefs[l] + net.intercepts[l]
        on, g, b, s = net.bn_layout[l]
        if on:
            size = net.sizes[l + 1]
            mean, var = (Z.mean(0), Z.var(0)) if stats is None else \
                (stats[s:s + size], stats[s + size:s + 2 * size])
            Z = net.params[g:g + size] * (Z - mean) / np.sqrt(var + net.bn_eps) + net.params[b:b + size]
        if l < n_layers - 1:
            A = np.tanh(Z)
        else:
            e = np.exp(Z - Z.max(1, keepdims=True))
            A = e / e.sum(1, keepdims=True)
    return A


def test_batch_norm_gradient_matches_central_differences():
    net, X, Y = bn_problem()
    loss, grad = net.loss_gradient(X, Y, alpha=0.1)
    ref = -np.mean(np.sum(Y * np.log(naive_bn_forward(net, X)), axis=1))
    assert loss == pytest.approx(ref + 0.05 * sum((c ** 2).sum() for c in net.coefs) / len(X), rel=1e-10)
    numeric = np.empty_like(grad)
    for k in range(net.n_params):
        keep = net.params[k]
        net.params[k] = keep + 1e-6
        up = net.loss_gradient(X, Y, alpha=0.1)[0]
        net.params[k] = keep - 1e-6
        down = net.loss_gradient(X, Y, alpha=0.1)[0]
        net.params[k] = keep
        numeric[k] = (up - down) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    n_bn = 6 + 5
    assert np.abs(grad[-2 * n_bn:]).max() > 1e-3  # gamma and beta have gradients too


def test_batch_norm_trains_keeps_running_statistics_and_predicts_in_inference_mode(tmp_path):
    net, X, Y = bn_problem()
    start = net.copy()
    fastbp.train(net, X, Y, mode="epoch", epochs=1, learning_rate=0.1)
    # the running statistics moved 10% of the way from (0, 1) to the first batch's own
    Z = X @ start.coefs[0] + start.intercepts[0]
    np.testing.assert_allclose(net.bn_stats[:6], 0.1 * Z.mean(0), rtol=1e-10)
    np.testing.assert_allclose(net.bn_stats[6:12], 0.9 + 0.1 * Z.var(0, ddof=1), rtol=1e-10)
    hist = fastbp.train(net, X, Y, mode="minibatch", batch_size=10, epochs=200, learning_rate=0.05)
    assert hist.loss[-1] < hist.loss[0]
    np.testing.assert_allclose(net.predict(X), naive_bn_forward(net, X, net.bn_stats), rtol=1e-10)
    back = fastbp.load(fastbp.save(net, tmp_path / "bn.npz"))
    assert back.batch_norm and np.array_equal(back.bn_stats, net.bn_stats)
    assert np.array_equal(back.predict(X), net.predict(X))
    with pytest.raises(ValueError, match="needs mode='minibatch' or 'epoch'"):
        fastbp.train(net, X, Y, mode="case")
    with pytest.raises(ValueError, match="batch_norm needs a hidden layer"):
        fastbp.Network([4, 3], batch_norm=True)


def test_batch_norm_checkpoint_resume_is_bit_for_bit(tmp_path):
    net, X, Y = bn_problem()
    full = net.copy()
    fastbp.train(full, X, Y, mode="minibatch", batch_size=10, epochs=6, learning_rate=0.05)
    part = net.copy()
    path = tmp_path / "bn.ckpt"
    with pytest.warns(fastbp.train.__globals__["InterruptedWarning"]):
        fastbp.train(part, X, Y, mode="minibatch", batch_size=10, epochs=6, learning_rate=0.05,
                     checkpoint=path, callback=lambda n, h: (_ for _ in ()).throw(KeyboardInterrupt)
                     if h.n_epochs == 3 else None)
    resumed = net.copy()
    fastbp.train(resumed, X, Y, mode="minibatch", batch_size=10, epochs=6, learning_rate=0.05,
                 checkpoint=path, resume=True)
    assert np.array_equal(resumed.params, full.params)
    assert np.array_equal(resumed.bn_stats, full.bn_stats)


def test_history_prints_as_one_short_line():
    """Issue 16, item 6: print(history) is a summary, not thousands of numbers."""
    X, y = fastbp.datasets.xor()
    hist = fastbp.train(fastbp.Network([2, 3, 1], random_state=0), X, y, epochs=3000)
    text = repr(hist)
    assert "\n" not in text and len(text) < 160 and text.startswith("History(n_epochs=3000")
    assert "stopped_by='epochs'" in text and "loss=" in text and "accuracy=" in text
    assert repr(fastbp.History()) == "History(n_epochs=0, stopped_by='')"
