"""fastbp against tests/naive.py: layout, initial draw, forward pass, and every update mode.

Each training test runs fastbp for a few epochs and replays the same epochs, with the
same permutations, through the one-tuple-at-a-time reference. float64 must agree to
~1e-10 (only summation order differs); float32 to ~1e-4.
"""

import copy

import naive
import numpy as np
import pytest

import fastbp
from fastbp._kernels import backprop as K

N = 30
EPOCHS = 3
SEED = 7  # train(random_state=SEED)
F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-4, atol=1e-5)

CONFIGS = {
    # two hidden layers, logistic outputs, squared error (the textbook's network shape)
    "tanh-logistic-se": dict(sizes=(4, 5, 3, 2), activation="tanh", output_activation="logistic", loss="squared_error"),
    # one hidden layer, softmax outputs, cross-entropy (scikit-learn's classifier)
    "logistic-softmax-ll": dict(sizes=(4, 6, 3), activation="logistic", output_activation="softmax", loss="log_loss"),
}


def make(config, dtype=np.float64, seed=0):
    cfg = CONFIGS[config]
    net = fastbp.Network(
        list(cfg["sizes"]),
        activation=cfg["activation"],
        output_activation=cfg["output_activation"],
        loss=cfg["loss"],
        dtype=dtype,
        random_state=seed,
    )
    rng = np.random.RandomState(100 + seed)
    X = rng.normal(size=(N, cfg["sizes"][0]))
    Y = naive.targets_for(cfg["output_activation"], cfg["loss"], N, cfg["sizes"][-1], rng)
    return net, X, Y


def orders_for(shuffle, random_state, epochs=EPOCHS, n=N):
    """The tuple orders of train(): epoch e's permutation keyed by (the run's seed, e), or
    0..n-1 (the seed is drawn either way)."""
    seed = naive.run_seed(random_state)
    if not shuffle:
        return [np.arange(n)] * epochs
    return [naive.epoch_order(seed, e, n) for e in range(1, epochs + 1)]


def replay(start, spec, X, Y, orders, lrs, batch_size, alpha=0.0, optimizer=None):
    """Reference params after each epoch."""
    params, out = np.asarray(start, dtype=np.float64), []
    optimizer = optimizer if optimizer is not None else naive.SGD(len(params))
    for order, lr in zip(orders, lrs):
        params = naive.minibatch_epoch(params, spec, X, Y, order, lr, batch_size, alpha, optimizer)
        out.append(params)
    return out


# -- the network: layout, views, initial draw, forward pass -------------------------------


@pytest.mark.parametrize("sizes", [(3, 2, 1), (4, 5, 3, 2), (7, 1)])
def test_layout_and_views(sizes):
    net = fastbp.Network(list(sizes), random_state=0)
    assert net.sizes == sizes and net.n_layers == len(sizes) - 1
    assert net.n_params == naive.n_params(sizes) and net.params.shape == (net.n_params,)
    assert net.params.flags.c_contiguous and net.params.dtype == np.float64 and net.dtype == np.dtype(np.float64)
    layout = np.asarray(net.layout)
    assert layout.dtype == np.int64 and layout.shape == (len(sizes) - 1, 5)
    np.testing.assert_array_equal(layout[:, :4], naive.layout(sizes))
    Ws, bs = naive.split(net.params, sizes)
    for l in range(net.n_layers):
        assert net.coefs[l].shape == Ws[l].shape and net.intercepts[l].shape == bs[l].shape
        np.testing.assert_array_equal(net.coefs[l], Ws[l])
        np.testing.assert_array_equal(net.intercepts[l], bs[l])
        # views, never copies: writing either side shows on the other
        net.coefs[l][-1, -1] = 123.0 + l
        net.intercepts[l][0] = -321.0 - l
        fan_in, fan_out, w_off, b_off = naive.layout(sizes)[l]
        assert net.params[b_off - 1] == 123.0 + l and net.params[b_off] == -321.0 - l
        net.params[w_off] = 55.0
        assert net.coefs[l][0, 0] == 55.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("init, activation", [("uniform", "tanh"), ("glorot", "logistic"), ("glorot", "relu")])
def test_initial_draw(init, activation, dtype):
    sizes = (5, 4, 3)
    net = fastbp.Network(list(sizes), activation=activation, init=init, dtype=dtype, random_state=11)
    expected = naive.init_params(sizes, init=init, init_range=0.5, activation=activation, random_state=11)
    assert net.params.dtype == dtype
    np.testing.assert_array_equal(net.params, expected.astype(dtype))
    # the network keeps its generator, past the initial draw
    rng = np.random.RandomState(11)
    rng.uniform(size=naive.n_params(sizes))
    assert net.random_state_.randint(1 << 30) == rng.randint(1 << 30)


def test_init_range_and_random_state_object():
    rng = np.random.RandomState(5)
    net = fastbp.Network([3, 4, 2], init_range=0.1, random_state=rng)
    np.testing.assert_array_equal(net.params, naive.init_params((3, 4, 2), init_range=0.1, random_state=5))
    assert np.abs(net.params).max() <= 0.1
    assert fastbp.Network([3, 4, 2], activation="sigmoid").activation == "logistic"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_predict_and_evaluate(config, dtype):
    net, X, Y = make(config, dtype)
    spec = naive.Spec.of(net)
    tol = F64 if dtype == np.float64 else F32
    O = net.predict(X)
    assert O.shape == (N, spec.sizes[-1]) and O.dtype == dtype
    np.testing.assert_allclose(O, naive.predict(net.params, spec, X), **tol)
    loss, acc = net.evaluate(X, Y)
    assert float(loss) == pytest.approx(naive.mean_loss(net.params, spec, X, Y), rel=tol["rtol"], abs=tol["atol"])
    assert acc == pytest.approx(naive.accuracy(net.params, spec, X, Y))


def test_forward_passes_on_several_threads_give_the_one_thread_numbers(monkeypatch, spy_kernels):
    """predict(), evaluate() and case updating's validation and track="end" passes run on
    several threads when tuples x weights reach PARALLEL_FORWARD_WORK, else on one: the same
    chunks, the same numbers either way for predict and evaluate; case updating's weights
    agree to rounding (see below)."""
    net = fastbp.Network([5, 9, 3], output_activation="softmax", loss="log_loss", random_state=0)
    rng = np.random.RandomState(3)
    X = rng.normal(size=(1000, 5))
    Y = np.eye(3)[rng.randint(0, 3, 1000)]
    assert X.shape[0] * net.n_params < fastbp._model.PARALLEL_FORWARD_WORK
    calls = spy_kernels("predict", "evaluate", "run_case_parallel")

    def fit(net):
        history = fastbp.train(net, X[:600], Y[:600], mode="case", epochs=2, track="end",
                               validation=(X[600:], Y[600:]), random_state=0)
        return net.params, history.loss, history.val_loss
    results = []
    for several in (False, True):
        if several:
            monkeypatch.setattr(fastbp._model, "PARALLEL_FORWARD_WORK", 1)
        results.append((net.predict(X, n_jobs=2), net.evaluate(X, Y), fit(net.copy())))
        if several:  # a fit may take several slices, each a call
            assert calls[:3] == ["predict", "evaluate", "run_case_parallel"]
            assert set(calls[3:]) <= {"run_case_parallel"}
        else:
            assert calls == []
    (O1, e1, (p1, l1, v1)), (O2, e2, (p2, l2, v2)) = results
    np.testing.assert_array_equal(O2, O1)
    assert e2 == e1
    # Case updating itself runs in both kernels, but each compiles its pass in its own
    # context (fastmath lets LLVM contract and reorder a little differently there), so the
    # weights agree to rounding, not bit for bit. Which kernel runs depends on the sizes of
    # the data and the validation set and on track, never on the thread count.
    np.testing.assert_allclose(p2, p1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(l2, l1, rtol=1e-12)
    np.testing.assert_allclose(v2, v1, rtol=1e-12)
    np.testing.assert_allclose(O1, naive.predict(net.params, naive.Spec.of(net), X), **F64)


def test_evaluate_regression_has_no_accuracy():
    net = fastbp.Network([3, 4, 2], output_activation="identity", random_state=0)
    X = np.random.RandomState(0).normal(size=(10, 3))
    Y = np.random.RandomState(1).normal(size=(10, 2))
    loss, acc = net.evaluate(X, Y)
    assert acc is None
    assert float(loss) == pytest.approx(naive.mean_loss(net.params, naive.Spec.of(net), X, Y), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("output_activation, n_outputs", [("logistic", 1), ("softmax", 3)])
def test_log_loss_clips_saturated_outputs(output_activation, n_outputs, dtype):
    """O is clipped to [eps, 1 - eps], eps = np.finfo(dtype).eps: a sure, wrong output costs -log(eps)."""
    net = fastbp.Network([2, n_outputs], output_activation=output_activation, loss="log_loss", dtype=dtype)
    net.params[:] = 0.0
    net.intercepts[0][0] = 80.0  # output 0 saturates at exactly 1, its rivals far below eps
    X = np.zeros((1, 2))
    Y = np.zeros((1, n_outputs))
    Y[0, -1] = 1.0  # the truth is the last output (for one logistic output: 0 is the truth)
    if n_outputs == 1:
        Y[0, 0] = 0.0
    assert net.predict(X)[0, 0] == 1.0
    loss, _ = net.evaluate(X, Y)
    eps = float(np.finfo(dtype).eps)
    assert np.isfinite(loss)
    assert float(loss) == pytest.approx(-np.log(eps), rel=1e-6)


def test_one_dimensional_targets_for_one_output():
    net = fastbp.Network([3, 4, 1], random_state=0)
    X = np.random.RandomState(0).normal(size=(10, 3))
    y = (X[:, 0] > 0).astype(float)
    assert net.evaluate(X, y) == net.evaluate(X, y[:, None])
    a, b = net.copy(), net.copy()
    fastbp.train(a, X, y, epochs=2, random_state=0)
    fastbp.train(b, X, y[:, None], epochs=2, random_state=0)
    np.testing.assert_array_equal(a.params, b.params)


def test_copy_is_independent():
    net, X, Y = make("tanh-logistic-se")
    twin = net.copy()
    np.testing.assert_array_equal(twin.params, net.params)
    assert not np.shares_memory(twin.params, net.params)
    assert np.shares_memory(twin.coefs[0], twin.params)
    fastbp.train(twin, X, Y, epochs=1, random_state=0)
    assert not np.array_equal(twin.params, net.params)


# -- case updating --------------------------------------------------------------------------

SGD_VARIANTS = [
    # shuffle, momentum, nesterov, alpha
    (False, 0.0, False, 0.0),
    (True, 0.0, False, 0.0),
    (True, 0.9, False, 0.0),
    (True, 0.9, True, 0.0),
    (False, 0.0, False, 0.05),
    (True, 0.5, True, 0.05),
]


@pytest.mark.parametrize("shuffle, momentum, nesterov, alpha", SGD_VARIANTS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_case_mode(config, shuffle, momentum, nesterov, alpha):
    net, X, Y = make(config)
    spec, start = naive.Spec.of(net), net.params.copy()
    hist = fastbp.train(
        net, X, Y, mode="case", learning_rate=0.3, epochs=EPOCHS, shuffle=shuffle, random_state=SEED,
        momentum=momentum, nesterov=nesterov, alpha=alpha, track="end",
    )  # fmt: skip
    expected = replay(
        start, spec, X, Y, orders_for(shuffle, SEED), [0.3] * EPOCHS, 1, alpha,
        naive.SGD(len(start), momentum, nesterov),
    )  # fmt: skip
    np.testing.assert_allclose(net.params, expected[-1], **F64)
    assert hist.n_epochs == EPOCHS and hist.stopped_by == "epochs"
    if alpha == 0.0:
        # track="end": the loss and accuracy of the network after each epoch
        np.testing.assert_allclose(hist.loss, [naive.mean_loss(p, spec, X, Y) for p in expected], **F64)
        np.testing.assert_allclose(hist.accuracy, [naive.accuracy(p, spec, X, Y) for p in expected])


@pytest.mark.parametrize("momentum, alpha", [(0.0, 0.0), (0.9, 0.0), (0.0, 0.05)])
def test_case_mode_past_the_small_network_pass(momentum, alpha):
    """Networks of more than K.SMALL_NETWORK weights take case_pass, not the inlined
    case_pass_small the configurations above (all small) take: the same arithmetic (plain
    SGD without L2: on the output layer's weights turned). Fan-ins that are not multiples
    of four: plain SGD's update takes four rows per sweep, then the rest one at a time (with
    and without the errors sent back, with and without decay)."""
    net = fastbp.Network([5, 42, 39, 2], activation="tanh", random_state=0)
    assert net.n_params > K.SMALL_NETWORK
    rng = np.random.RandomState(7)
    X = rng.normal(size=(N, 5))
    Y = naive.targets_for("logistic", "squared_error", N, 2, rng)
    spec, start = naive.Spec.of(net), net.params.copy()
    fastbp.train(net, X, Y, mode="case", learning_rate=0.1, epochs=EPOCHS, random_state=SEED,
                 momentum=momentum, alpha=alpha)
    expected = replay(start, spec, X, Y, orders_for(True, SEED), [0.1] * EPOCHS, 1, alpha,
                      naive.SGD(len(start), momentum))
    np.testing.assert_allclose(net.params, expected[-1], **F64)


@pytest.mark.parametrize("sizes", [(3, 9, 4, 2), (2, 4, 9, 1), (5, 2, 700, 1), (5, 42, 39, 4)])
def test_case_mode_two_and_four_unit_layers(sizes):
    """Plain SGD updates a layer of two or four units in one sweep over W's rows (pair_update,
    quad_update): as the first layer (no errors to send back) and a later one, in
    case_pass_small and in case_pass (the last two networks, past K.SMALL_NETWORK)."""
    net = fastbp.Network(list(sizes), activation="tanh", random_state=0)
    assert (net.n_params > K.SMALL_NETWORK) == (sizes[0] == 5)
    rng = np.random.RandomState(7)
    X = rng.normal(size=(N, sizes[0]))
    Y = naive.targets_for("logistic", "squared_error", N, sizes[-1], rng)
    spec, start = naive.Spec.of(net), net.params.copy()
    fastbp.train(net, X, Y, mode="case", learning_rate=0.1, epochs=EPOCHS, random_state=SEED,
                 alpha=0.01)
    expected = replay(start, spec, X, Y, orders_for(True, SEED), [0.1] * EPOCHS, 1, 0.01)
    np.testing.assert_allclose(net.params, expected[-1], **F64)


@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("sizes", [(9, 12, 6), (6, 20, 5), (9, 32, 3), (3, 16, 8, 7), (4, 7, 19),
                                   (12, 40, 30, 7), (60, 20)])
def test_case_mode_next_tuple_summed_with_the_first_layers_update(sizes, alpha):
    """Plain SGD's case updating with a first layer of more than eight units sums the next
    tuple's net inputs of that layer as its new weights come out (sgd_first_layer), and
    without L2 it works on the output layer's weights turned, a contiguous row per unit
    (turned_sums, turned_update): the reference's numbers, with tuples of weight 0 (no
    update: the tuple after one is summed afresh) in a row and last, fan-ins that are not
    multiples of four, output layers of 3 to 19 units and layers whose room in the unit
    buffers is padded (codes.UNIT_ALIGN); the last two networks, past K.SMALL_NETWORK,
    take case_pass (its first layer summed ahead too; the first one's output layer turned,
    the last one's only layer both first and output layer, not turned)."""
    net = fastbp.Network(list(sizes), activation="tanh", random_state=0)
    assert (K.turned_room(net.sizes) > 0) == (len(sizes) > 2)
    assert (net.n_params > K.SMALL_NETWORK) == (sizes[0] > 9)
    rng = np.random.RandomState(7)
    X = rng.normal(size=(N, sizes[0]))
    Y = naive.targets_for("logistic", "squared_error", N, sizes[-1], rng)
    weights = np.ones(N)
    weights[[3, 4, 10, N - 1]] = 0.0
    spec, start = naive.Spec.of(net), net.params.copy()
    fastbp.train(net, X, Y, mode="case", learning_rate=0.1, epochs=EPOCHS, shuffle=False,
                 alpha=alpha, sample_weight=weights)
    # a tuple of weight 0 changes nothing; one of weight 1 takes the reference's step
    kept = [np.flatnonzero(weights)] * EPOCHS
    expected = replay(start, spec, X, Y, kept, [0.1] * EPOCHS, 1, alpha)
    np.testing.assert_allclose(net.params, expected[-1], **F64)


def test_case_mode_float32():
    net, X, Y = make("tanh-logistic-se", dtype=np.float32)
    spec, start = naive.Spec.of(net), net.params.astype(np.float64)
    fastbp.train(net, X, Y, mode="case", learning_rate=0.3, epochs=EPOCHS, random_state=SEED, momentum=0.9)
    assert net.params.dtype == np.float32
    # the reference sees the data as the float32 network does
    X32 = X.astype(np.float32).astype(np.float64)
    expected = replay(start, spec, X32, Y, orders_for(True, SEED), [0.3] * EPOCHS, 1, 0.0, naive.SGD(len(start), 0.9))
    np.testing.assert_allclose(net.params, expected[-1], **F32)


def test_case_mode_shuffles_from_the_network_generator():
    """train(random_state=None) continues drawing from net.random_state_."""
    net, X, Y = make("logistic-softmax-ll")
    spec, start = naive.Spec.of(net), net.params.copy()
    rng = copy.deepcopy(net.random_state_)
    fastbp.train(net, X, Y, mode="case", learning_rate=0.3, epochs=EPOCHS, shuffle=True, random_state=None)
    expected = replay(start, spec, X, Y, orders_for(True, rng), [0.3] * EPOCHS, 1)
    np.testing.assert_allclose(net.params, expected[-1], **F64)


@pytest.mark.parametrize("mode, batch_size", [("case", 1), ("minibatch", 7), ("epoch", N)])
def test_track_pass(mode, batch_size):
    """track="pass" (the default): each tuple's loss at the weights it met, averaged over the pass.

    In epoch mode every tuple meets the weights of the start of the epoch.
    """
    net, X, Y = make("tanh-logistic-se")
    spec, params = naive.Spec.of(net), net.params.copy()
    hist = fastbp.train(  # track="pass" is the default
        net, X, Y, mode=mode, batch_size=batch_size if mode == "minibatch" else None, learning_rate=0.3,
        epochs=2, shuffle=False,
    )  # fmt: skip
    expected = []
    for _ in range(2):
        loss, params = naive.pass_loss(params, spec, X, Y, np.arange(N), 0.3, batch_size)
        expected.append(loss)
    np.testing.assert_allclose(net.params, params, **F64)
    np.testing.assert_allclose(hist.loss, expected, **F64)


# -- epoch updating -------------------------------------------------------------------------


@pytest.mark.parametrize("momentum, nesterov, alpha", [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.1)])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_epoch_mode(config, momentum, nesterov, alpha):
    net, X, Y = make(config)
    spec, start = naive.Spec.of(net), net.params.copy()
    hist = fastbp.train(
        net, X, Y, mode="epoch", learning_rate=0.5, epochs=EPOCHS, random_state=SEED,
        momentum=momentum, nesterov=nesterov, alpha=alpha, track="end",
    )  # fmt: skip
    # each epoch: w <- w - lr * (mean gradient + alpha w / n)
    params, sgd, expected = start, naive.SGD(len(start), momentum, nesterov), []
    for _ in range(EPOCHS):
        grad = naive.mean_gradient(params, spec, X, Y, alpha)
        params = sgd.step(params, grad, 0.5)
        expected.append(params)
    np.testing.assert_allclose(net.params, expected[-1], **F64)
    if alpha == 0.0:
        np.testing.assert_allclose(hist.loss, [naive.mean_loss(p, spec, X, Y) for p in expected], **F64)


def test_epoch_mode_float32():
    net, X, Y = make("logistic-softmax-ll", dtype=np.float32)
    spec, params = naive.Spec.of(net), net.params.astype(np.float64)
    fastbp.train(net, X, Y, mode="epoch", learning_rate=0.5, epochs=EPOCHS)
    X32 = X.astype(np.float32).astype(np.float64)
    for _ in range(EPOCHS):
        params = naive.epoch_update(params, spec, X32, Y, 0.5)
    np.testing.assert_allclose(net.params, params, **F32)


@pytest.mark.parametrize("schedule", ["1/t", "invscaling"])
def test_epoch_mode_schedules(schedule):
    net, X, Y = make("tanh-logistic-se")
    spec, params = naive.Spec.of(net), net.params.copy()
    hist = fastbp.train(net, X, Y, mode="epoch", learning_rate=0.8, epochs=EPOCHS, schedule=schedule, power_t=0.25)
    lrs = [0.8 / t if schedule == "1/t" else 0.8 / t**0.25 for t in range(1, EPOCHS + 1)]
    for lr in lrs:
        params = naive.epoch_update(params, spec, X, Y, lr)
    np.testing.assert_allclose(net.params, params, **F64)
    np.testing.assert_allclose(hist.learning_rate, lrs, rtol=1e-12)


# -- minibatch updating ---------------------------------------------------------------------


@pytest.mark.parametrize("shuffle, momentum, nesterov, alpha", SGD_VARIANTS[1:])
def test_minibatch_mode(shuffle, momentum, nesterov, alpha):
    """batch_size 7 over 30 tuples: batches of 7, 7, 7, 7 and a short one of 2."""
    net, X, Y = make("logistic-softmax-ll")
    spec, start = naive.Spec.of(net), net.params.copy()
    fastbp.train(
        net, X, Y, mode="minibatch", batch_size=7, learning_rate=0.3, epochs=EPOCHS, shuffle=shuffle,
        random_state=SEED, momentum=momentum, nesterov=nesterov, alpha=alpha,
    )  # fmt: skip
    expected = replay(
        start, spec, X, Y, orders_for(shuffle, SEED), [0.3] * EPOCHS, 7, alpha,
        naive.SGD(len(start), momentum, nesterov),
    )  # fmt: skip
    np.testing.assert_allclose(net.params, expected[-1], **F64)


def test_minibatch_last_batch_is_short_not_dropped():
    """Moving only the last 2 tuples of the permutation must change the result."""
    net, X, Y = make("tanh-logistic-se")
    spec, start = naive.Spec.of(net), net.params.copy()
    fastbp.train(net, X, Y, mode="minibatch", batch_size=7, learning_rate=0.3, epochs=1, shuffle=False)
    dropped = replay(start, spec, X[:28], Y[:28], [np.arange(28)], [0.3], 7)[-1]
    kept = replay(start, spec, X, Y, [np.arange(N)], [0.3], 7)[-1]
    np.testing.assert_allclose(net.params, kept, **F64)
    assert np.abs(net.params - dropped).max() > 1e-6


@pytest.mark.parametrize("mode, batch_size", [("minibatch", 7), ("case", None), ("epoch", None)])
def test_adam(mode, batch_size):
    net, X, Y = make("tanh-logistic-se")
    spec, start = naive.Spec.of(net), net.params.copy()
    fastbp.train(
        net, X, Y, mode=mode, batch_size=batch_size, learning_rate=0.01, epochs=EPOCHS, shuffle=True,
        random_state=SEED, optimizer="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-7, alpha=0.01,
    )  # fmt: skip
    bs = {"minibatch": 7, "case": 1, "epoch": N}[mode]
    orders = orders_for(True, SEED) if mode != "epoch" else [np.arange(N)] * EPOCHS
    adam = naive.Adam(len(start), beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    expected = replay(start, spec, X, Y, orders, [0.01] * EPOCHS, bs, 0.01, adam)
    np.testing.assert_allclose(net.params, expected[-1], **F64)


def test_minibatch_float32_adam():
    net, X, Y = make("logistic-softmax-ll", dtype=np.float32)
    spec, start = naive.Spec.of(net), net.params.astype(np.float64)
    fastbp.train(
        net, X, Y, mode="minibatch", batch_size=7, learning_rate=0.01, epochs=EPOCHS, random_state=SEED,
        optimizer="adam",
    )  # fmt: skip
    X32 = X.astype(np.float32).astype(np.float64)
    expected = replay(start, spec, X32, Y, orders_for(True, SEED), [0.01] * EPOCHS, 7, 0.0, naive.Adam(len(start)))
    np.testing.assert_allclose(net.params, expected[-1], **F32)
