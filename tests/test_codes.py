"""The kernels users run have the network's activations and loss compiled in (Codes); the
rest of the suite runs the generic kernels, which read the activations from the layout table
and the optimizer from its code (conftest sets FASTBP_GENERIC_KERNELS). Here the two agree,
for every activation and optimizer."""
import numpy as np
import pytest

import fastbp
from fastbp import _kernels as K
from fastbp.network import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS


def specialised(monkeypatch):
    monkeypatch.delenv("FASTBP_GENERIC_KERNELS", raising=False)


def data(n_in, n_out, output, loss, n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if output == "softmax":
        Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    elif output == "logistic":
        Y = (rng.random((n, n_out)) > 0.5).astype(float)
    else:
        Y = rng.random((n, n_out))
    return X, Y


def test_codes_follow_the_switch(monkeypatch):
    net = fastbp.Network([2, 3, 1], activation="tanh")
    assert (net.codes.hidden, net.codes.output) == (None, None)  # conftest: generic
    specialised(monkeypatch)
    assert (net.codes.hidden, net.codes.output, net.codes.loss) == \
        (K.TANH, K.LOGISTIC, K.SQUARED_ERROR)


@pytest.mark.parametrize("hidden, output", [(h, "logistic") for h in HIDDEN_ACTIVATIONS] +
                         [("relu", o) for o in OUTPUT_ACTIVATIONS if o != "logistic"])
def test_forward_pass_with_codes_compiled_in(monkeypatch, hidden, output):
    loss = "poisson" if output == "exp" else "squared_error"
    net = fastbp.Network([4, 5, 3], activation=hidden, output_activation=output, loss=loss,
                         random_state=0)
    X, Y = data(4, 3, output, loss)
    generic = net.predict(X), net.evaluate(X, Y)
    specialised(monkeypatch)
    np.testing.assert_allclose(net.predict(X), generic[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.evaluate(X, Y)[0], generic[1][0], rtol=1e-12)


@pytest.mark.parametrize("hidden, output, loss", [("tanh", "softmax", "log_loss"),
                                                  ("relu", "identity", "squared_error")])
@pytest.mark.parametrize("mode, n", [("case", 40), ("epoch", 12), ("minibatch", 300)])
def test_training_with_codes_compiled_in(monkeypatch, hidden, output, loss, mode, n):
    """Every kernel family: case updating, a short pass tuple by tuple, blocks of tuples."""
    X, Y = data(3, 3, output, loss, n=n)
    runs = []
    for generic in (True, False):
        if not generic:
            specialised(monkeypatch)
        net = fastbp.Network([3, 6, 3], activation=hidden, output_activation=output, loss=loss,
                             random_state=0)
        history = fastbp.train(net, X, Y, mode=mode, epochs=3, learning_rate=0.05,
                               batch_size=64, random_state=0)
        runs.append((net.params.copy(), np.array(history.loss)))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-10)
    assert not np.allclose(runs[0][0], fastbp.Network([3, 6, 3], activation=hidden,
                                                      output_activation=output, loss=loss,
                                                      random_state=0).params)  # it trained


def test_optimizer_follows_the_switch(monkeypatch):
    assert K.Optimizer.of("rprop") == K.RPROP  # conftest: generic, the int code
    specialised(monkeypatch)
    assert isinstance(K.Optimizer.of("rprop"), K.Optimizer)
    assert K.Optimizer.of("rprop").code == K.RPROP


@pytest.mark.parametrize("mode, optimizer", [("case", "adam"), ("minibatch", "sgd"),
                                             ("epoch", "adam"), ("epoch", "rprop"),
                                             ("epoch", "quickprop")])
def test_training_with_the_optimizer_compiled_in(monkeypatch, mode, optimizer):
    """The kernels users run compile in the optimizer's own update (an Optimizer argument,
    _jit.update_flat and update_outer); the generic ones choose it at run time: the same
    numbers, for each optimizer's step, per layer (case updating) and flat."""
    X, Y = data(3, 2, "logistic", "squared_error", n=40)
    runs = []
    for generic in (True, False):
        if not generic:
            specialised(monkeypatch)
        net = fastbp.Network([3, 6, 2], random_state=0)
        fastbp.train(net, X, Y, mode=mode, optimizer=optimizer, epochs=3, learning_rate=0.05,
                     momentum=0.5 if optimizer == "sgd" else 0.0, batch_size=8, random_state=0)
        runs.append(net.params.copy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-10, atol=1e-12)
    assert not np.allclose(runs[0], fastbp.Network([3, 6, 2], random_state=0).params)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_case_updating_compiled_for_the_shape(monkeypatch, dtype):
    """Case updating of a narrow network runs a pass compiled for its shape (shaped.py): the
    numbers of the generic pass, with sample weights (some 0); a network with a wider layer,
    an L2 term or momentum keeps the generic pass."""
    X, Y = data(3, 1, "logistic", "squared_error", n=30)
    weights = np.random.default_rng(1).random(30)
    weights[::7] = 0.0
    runs = []
    for generic in (True, False):
        if not generic:
            specialised(monkeypatch)
        net = fastbp.Network([3, 8, 8, 1], dtype=dtype, random_state=0)
        history = fastbp.train(net, X, Y, mode="case", epochs=4, learning_rate=0.3,
                               sample_weight=weights, random_state=0)
        runs.append((net.params.copy(), np.array(history.loss), history.accuracy))
    assert net._shaped() and not fastbp.Network([3, 9, 1])._shaped()
    shape = K.Shape(net.layout)._numba_type_
    assert any(shape in signature for signature in K.run_case.signatures)  # it ran
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=rtol)
    assert runs[1][2] == runs[0][2]
    assert not np.allclose(runs[0][0], fastbp.Network([3, 8, 8, 1], dtype=dtype,
                                                      random_state=0).params)  # it trained
    made = []  # an L2 term: the generic pass (the shaped one has none)
    arguments = fastbp.driver.Run._arguments
    monkeypatch.setattr(fastbp.driver.Run, "_arguments",
                        lambda run: made.append(arguments(run)) or made[-1])
    for alpha in (0.0, 1e-3):
        fastbp.train(net, X[:8], Y[:8], mode="case", epochs=1, alpha=alpha)
    small = [args[-2] for args in made]  # run_case's `small`: a Shape, or True
    assert isinstance(small[0], K.Shape) and small[1] is True


def test_shaped_pass_source_reads_as_the_steps():
    """The generated source: one block of steps per layer, constants named, nothing else."""
    layers = ((2, 3, 0, 6), (3, 1, 9, 12))
    for source_of in (K.shaped_case_source, K.shaped_gradient_source):
        source = source_of(layers)
        assert source.count("sums_0(") == source.count("sums_1(") == 1  # each layer's own
        assert source.count("step_0(") == source.count("step_1(") == 1
        assert source.count("hidden_derivative(") == 1  # the hidden layer's only
        compile(source, "<shaped>", "exec")
    # the gradient pass: tuples two at a time, each step in a loop over their units' offsets
    source = K.shaped_gradient_source(layers)
    assert "both[k] + A_IN_1" in source and source.count("at + A_IN_1") == 2  # step, derivative
    source = K.shaped_forward_source(layers)  # predict's: the sums and activations alone
    assert source.count("sums_0(") == source.count("sums_1(") == 1
    assert "step_" not in source and "X[" not in source and "derivative" not in source
    compile(source, "<shaped>", "exec")


@pytest.mark.parametrize("sizes, activation, output", [
    ([3, 8, 8, 1], "logistic", "logistic"), ([2, 3, 2], "tanh", "softmax")])
def test_predict_compiled_for_the_shape(monkeypatch, sizes, activation, output):
    """predict of a narrow network runs a forward pass compiled for its shape (shaped.py):
    the outputs of the generic forward pass, on one thread and on several; a network with a
    wider layer keeps the generic one."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, sizes[0]))
    monkeypatch.setattr(fastbp._model, "PARALLEL_FORWARD_WORK", 1)  # 3,000 rows: threads
    made = {}
    for generic in (True, False):
        if not generic:
            specialised(monkeypatch)
        net = fastbp.Network(sizes, activation=activation, output_activation=output,
                             random_state=0)
        made[generic] = (net.predict(X[:5]), net.predict(X, n_jobs=2), net._predict_path())
    assert made[True][2] == (True, None) and isinstance(made[False][2][0], K.Shape)
    shape = K.Shape(net.layout)._numba_type_
    for kernel in (K.predict_serial, K.predict):  # each ran
        assert any(shape in signature for signature in kernel.signatures)
    for k in (0, 1):
        np.testing.assert_allclose(made[False][k], made[True][k], rtol=1e-13, atol=1e-15)
    assert fastbp.Network([3, 9, 1])._predict_path() == (True, None)


def test_a_generated_pass_inlines_only_the_kinds_it_uses(monkeypatch):
    """Each layer's sums and steps are picked for its width, each activation by its code."""
    specialised(monkeypatch)
    assert [K.layer_kind(n) for n in (1, 3, 4, 5, 8)] == [0, 1, 1, 2, 2]  # NARROW = 4
    assert K.SUMS == (K.unit_sums, K.narrow_sums, K.row_sums)
    assert K.PLAIN_UPDATES == (K.unit_update, K.narrow_update, K.row_update)
    assert K.GRADIENTS == (K.unit_gradient, K.narrow_gradient, K.row_gradient)
    assert K.UNITS[K.LOGISTIC] is K.logistic_units and K.UNITS[K.SOFTMAX] is K.softmax_units
    assert K.DERIVATIVES[K.TANH] is K.tanh_derivative and K.SOFTMAX not in K.DERIVATIVES
    layers = ((2, 3, 0, 6), (3, 1, 9, 12))
    codes = fastbp.Network([2, 3, 1], activation="tanh", output_activation="logistic").codes
    shaped = K.shaped_pass(K.shaped_case_source, layers, codes)
    scope = shaped.__globals__
    assert scope["sums_0"] is K.narrow_sums and scope["sums_1"] is K.unit_sums
    assert scope["step_0"] is K.narrow_update and scope["step_1"] is K.unit_update
    assert scope["hidden_units"] is K.tanh_units and scope["output_units"] is K.logistic_units


def test_drop_in_on_a_shaped_network_matches_scikit_learn(monkeypatch):
    """Minibatches of 8 through a 4-5-3 network go tuple by tuple through the gradient pass
    compiled for the shape: scikit-learn's weights and loss curve still."""
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier
    specialised(monkeypatch)
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=(5,), activation="logistic", solver="sgd", batch_size=8,
                  learning_rate_init=0.05, max_iter=4, tol=0.0, random_state=0)
    ref = SkMLPClassifier(**params)
    est = fastbp.MLPClassifier(**params)
    with pytest.warns(Warning):  # both: not converged in 4 iterations
        ref.fit(X, y)
    with pytest.warns(Warning):
        est.fit(X, y)
    shape = K.Shape(est._net.layout)._numba_type_
    assert any(shape in signature for signature in K.run_minibatch.signatures)  # it ran
    for ours, theirs in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("mode, n", [("case", 12), ("epoch", 12), ("epoch", 13),
                                     ("minibatch", 13)])
def test_shaped_passes_with_softmax_and_weights(monkeypatch, mode, n):
    """A 2-3-2 softmax network (layers of 2 and 3 units: the column-by-column steps), log
    loss, sample weights with a 0: the shaped case pass and gradient pass give the generic
    passes' numbers (the gradient pass goes two tuples at a time: 13 leaves one alone, and
    batches of 4 of 13 one more; a weight 0 first and second of a pair); with momentum case
    updating keeps the generic pass."""
    X, Y = data(2, 2, "softmax", "log_loss", n=n)
    weights = np.linspace(0.0, 2.0, n)
    weights[5] = 0.0
    runs = []
    for generic in (True, False):
        if not generic:
            specialised(monkeypatch)
        net = fastbp.Network([2, 3, 2], activation="tanh", output_activation="softmax",
                             loss="log_loss", random_state=0)
        history = fastbp.train(net, X, Y, mode=mode, epochs=5, learning_rate=0.2,
                               sample_weight=weights, random_state=0,
                               batch_size=4 if mode == "minibatch" else None)
        runs.append((net.params.copy(), np.array(history.loss)))
    kernel = dict(case=K.run_case, epoch=K.run_full_batch, minibatch=K.run_minibatch)[mode]
    shape = K.Shape(net.layout)._numba_type_
    assert any(shape in signature for signature in kernel.signatures)  # it ran
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-12)
    if mode == "case":  # momentum: the generic pass (the shaped one is plain SGD's)
        made = []
        arguments = fastbp.driver.Run._arguments
        monkeypatch.setattr(fastbp.driver.Run, "_arguments",
                            lambda run: made.append(arguments(run)) or made[-1])
        for momentum in (0.0, 0.5):
            fastbp.train(net, X, Y, mode="case", epochs=1, momentum=momentum)
        small = [args[-2] for args in made]  # run_case's `small`: a Shape, or True
        assert isinstance(small[0], K.Shape) and small[1] is True


def test_case_updating_on_turned_output_weights_with_activations_compiled_in(monkeypatch):
    """A network too wide for the shaped passes, plain SGD without L2: case updating works
    on the output layer's weights turned (passes.case_pass_small), and the compiled-in
    activations run over each layer's padding (six outputs in a room of eight, next to the
    turned rows): the generic kernels' numbers, with tuples of weight 0."""
    X, Y = data(9, 6, "logistic", "squared_error", n=30)
    weights = np.ones(30)
    weights[[0, 7, 29]] = 0.0
    runs = []
    for generic in (True, False):
        if not generic:
            specialised(monkeypatch)
        net = fastbp.Network([9, 12, 6], activation="tanh", random_state=0)
        history = fastbp.train(net, X, Y, mode="case", epochs=4, learning_rate=0.2,
                               sample_weight=weights, random_state=0)
        runs.append((net.params.copy(), np.array(history.loss)))
    assert K.turned_room(net.sizes) > 0 and not net._shaped()
    assert K.Codes.of("tanh", "logistic", "squared_error").hidden is not None  # compiled in
    start = fastbp.Network([9, 12, 6], activation="tanh", random_state=0).params
    assert np.abs(runs[1][0] - start).max() > 1e-3  # trained
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-12)
