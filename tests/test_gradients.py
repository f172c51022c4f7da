"""net.loss_gradient against central differences of net.loss_gradient's own loss.

Every hidden activation x every (output activation, loss) pair of the contract, with and
without the L2 term alpha. float64 is checked tightly; float32 analytic gradients are
checked loosely against float64 central differences at the same (float32) weights.
"""

import naive
import numpy as np
import pytest

import fastbp

SIZES = (3, 4, 3, 2)  # two hidden layers, so a hidden error is propagated from a hidden layer
N = 5
HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "softplus"]
OUTPUTS = [
    ("identity", "squared_error"),
    ("logistic", "squared_error"),
    ("logistic", "log_loss"),
    ("softmax", "log_loss"),
    ("softmax", "squared_error"),
    ("exp", "poisson"),
]
CASES = [(act, out, loss) for act in HIDDEN for out, loss in OUTPUTS]
ALPHAS = [0.0, 0.3]
KINK = 1e-3  # relu pre-activations must stay this far from 0 so differences never cross it


def problem(activation, output_activation, loss, dtype=np.float64):
    """A network and data, reseeded until no relu pre-activation sits near its kink."""
    for seed in range(100):
        net = fastbp.Network(
            SIZES,
            activation=activation,
            output_activation=output_activation,
            loss=loss,
            dtype=dtype,
            init_range=0.8,
            random_state=seed,
        )
        rng = np.random.RandomState(1000 + seed)
        X = rng.normal(size=(N, SIZES[0]))
        Y = naive.targets_for(output_activation, loss, N, SIZES[-1], rng)
        Ws, bs = naive.split(net.params, SIZES)
        hidden_z = np.concatenate(
            [np.concatenate(naive.preactivations(Ws, bs, x, activation, output_activation)[:-1]) for x in X]
        )
        if activation not in ("relu", "leaky_relu") or np.abs(hidden_z).min() > KINK:
            return net, X, Y
    raise AssertionError("no seed keeps relu away from its kink")


def central_differences(net, X, Y, alpha, h=1e-6):
    """d loss / d params[i] ~ (L(p + h e_i) - L(p - h e_i)) / 2h, through net.loss_gradient's loss."""
    start = net.params.copy()
    fd = np.empty(len(start))
    try:
        for i in range(len(start)):
            net.params[i] = start[i] + h
            up = float(net.loss_gradient(X, Y, alpha=alpha)[0])
            net.params[i] = start[i] - h
            down = float(net.loss_gradient(X, Y, alpha=alpha)[0])
            net.params[i] = start[i]
            fd[i] = (up - down) / (2 * h)
    finally:
        net.params[:] = start
    return fd


@pytest.mark.parametrize("activation, output_activation, loss", CASES)
def test_naive_gradient_matches_central_differences(activation, output_activation, loss):
    """The reference itself is right (pure numpy, no fastbp kernels)."""
    net, X, Y = problem(activation, output_activation, loss)
    spec = naive.Spec.of(net)
    p = net.params.astype(np.float64)
    for alpha in ALPHAS:
        h = 1e-6
        up = [naive.mean_loss(p + h * e, spec, X, Y, alpha) for e in np.eye(len(p))]
        down = [naive.mean_loss(p - h * e, spec, X, Y, alpha) for e in np.eye(len(p))]
        fd = (np.array(up) - np.array(down)) / (2 * h)
        grad = naive.mean_gradient(p, spec, X, Y, alpha)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8 * max(1.0, np.linalg.norm(fd)))


@pytest.mark.parametrize("activation, output_activation, loss", CASES)
def test_float64_gradient(activation, output_activation, loss):
    net, X, Y = problem(activation, output_activation, loss)
    spec = naive.Spec.of(net)
    for alpha in ALPHAS:
        value, grad = net.loss_gradient(X, Y, alpha=alpha)
        assert grad.shape == net.params.shape
        # the loss is the contract's: mean per-tuple loss + alpha/(2n) sum of squared weights
        assert float(value) == pytest.approx(naive.mean_loss(net.params, spec, X, Y, alpha), rel=1e-12, abs=1e-13)
        # the gradient is the gradient of that loss ...
        fd = central_differences(net, X, Y, alpha)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8 * max(1.0, np.linalg.norm(fd)))
        # ... and the reference's backward pass, to rounding
        np.testing.assert_allclose(grad, naive.mean_gradient(net.params, spec, X, Y, alpha), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("activation, output_activation, loss", CASES)
def test_float32_gradient(activation, output_activation, loss):
    net32, X, Y = problem(activation, output_activation, loss, dtype=np.float32)
    assert net32.params.dtype == np.float32
    # the same float32 weights, in a float64 network, give the exact differences
    net64 = fastbp.Network(
        SIZES, activation=activation, output_activation=output_activation, loss=loss, dtype=np.float64
    )
    net64.params[:] = net32.params.astype(np.float64)
    X32 = X.astype(np.float32)
    for alpha in ALPHAS:
        value, grad = net32.loss_gradient(X32, Y.astype(np.float32), alpha=alpha)
        fd = central_differences(net64, X32.astype(np.float64), Y, alpha)
        error = np.linalg.norm(np.asarray(grad, dtype=np.float64) - fd)
        assert error <= 1e-3 * np.linalg.norm(fd), (error, np.linalg.norm(fd))
        exact = naive.mean_loss(net64.params, naive.Spec.of(net64), X32.astype(np.float64), Y, alpha)
        assert float(value) == pytest.approx(exact, rel=1e-4, abs=1e-6)


def test_gradient_leaves_params_alone():
    net, X, Y = problem("tanh", "softmax", "log_loss")
    before = net.params.copy()
    net.loss_gradient(X, Y, alpha=0.5)
    np.testing.assert_array_equal(net.params, before)
