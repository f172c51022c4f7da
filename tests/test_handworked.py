"""One case update worked by hand: Han & Kamber's Figure 9.5 network, Tables 9.1-9.4.

A 3-2-1 network of logistic units sees the tuple x = (1, 0, 1) with target 1 and learning
rate 0.9. Units 1-3 are the inputs, 4 and 5 the hidden units, 6 the output unit. The book
rounds to 3 decimals; we check fastbp against its numbers at that precision and against
tests/naive.py to 1e-12. The book's Err_j is -dE/dz_j.
"""

import naive
import numpy as np
import pytest

import fastbp

X = np.array([[1.0, 0.0, 1.0]])  # x1, x2, x3
Y = np.array([[1.0]])  # target of unit 6
LR = 0.9

# Table 9.1: initial weights and biases; coefs[0][i, j] is w_{i+1, j+4}
W_HIDDEN = np.array(
    [
        [0.2, -0.3],  # w14, w15
        [0.4, 0.1],  # w24, w25
        [-0.5, 0.2],  # w34, w35
    ]
)
B_HIDDEN = np.array([-0.4, 0.2])  # theta4, theta5
W_OUT = np.array([[-0.3], [-0.2]])  # w46, w56
B_OUT = np.array([0.1])  # theta6

# Table 9.2: net input and output of each unit
NET4 = 0.2 + 0.0 - 0.5 - 0.4  # = -0.7
NET5 = -0.3 + 0.0 + 0.2 + 0.2  # = 0.1
O4 = 1 / (1 + np.exp(0.7))  # = 0.332
O5 = 1 / (1 + np.exp(-0.1))  # = 0.525
NET6 = -0.3 * 0.332 - 0.2 * 0.525 + 0.1  # = -0.105 (with the book's rounded outputs)
O6 = 1 / (1 + np.exp(0.105))  # = 0.474

# Table 9.3: error of each unit, Err_j = O_j (1 - O_j)(T_j - O_j) at the output,
# Err_j = O_j (1 - O_j) sum_k Err_k w_jk at a hidden unit
ERR6 = 0.474 * (1 - 0.474) * (1 - 0.474)  # = 0.1311
ERR5 = 0.525 * (1 - 0.525) * 0.1311 * -0.2  # = -0.0065
ERR4 = 0.332 * (1 - 0.332) * 0.1311 * -0.3  # = -0.0087

# Table 9.4: w_ij += l Err_j O_i ; theta_j += l Err_j
BOOK_NEW = {
    "w46": -0.3 + 0.9 * 0.1311 * 0.332,  # = -0.261
    "w56": -0.2 + 0.9 * 0.1311 * 0.525,  # = -0.138
    "w14": 0.2 + 0.9 * -0.0087 * 1,  # = 0.192
    "w15": -0.3 + 0.9 * -0.0065 * 1,  # = -0.306
    "w24": 0.4 + 0.9 * -0.0087 * 0,  # = 0.4
    "w25": 0.1 + 0.9 * -0.0065 * 0,  # = 0.1
    "w34": -0.5 + 0.9 * -0.0087 * 1,  # = -0.508
    "w35": 0.2 + 0.9 * -0.0065 * 1,  # = 0.194
    "theta6": 0.1 + 0.9 * 0.1311,  # = 0.218
    "theta5": 0.2 + 0.9 * -0.0065,  # = 0.194
    "theta4": -0.4 + 0.9 * -0.0087,  # = -0.408
}
BOOK_PRINTED = {
    "w46": -0.261, "w56": -0.138, "w14": 0.192, "w15": -0.306, "w24": 0.4, "w25": 0.1,
    "w34": -0.508, "w35": 0.194, "theta6": 0.218, "theta5": 0.194, "theta4": -0.408,
}  # fmt: skip
BOOK_TOL = 5e-4 + 1e-9  # half a unit in the book's third decimal


def textbook_net(dtype=np.float64):
    net = fastbp.Network(
        [3, 2, 1], activation="logistic", output_activation="logistic", loss="squared_error", dtype=dtype
    )
    # coefs / intercepts are views: writing them must set params
    net.coefs[0][...] = W_HIDDEN
    net.intercepts[0][...] = B_HIDDEN
    net.coefs[1][...] = W_OUT
    net.intercepts[1][...] = B_OUT
    return net


def named(net):
    """The book's names for the network's weights and biases."""
    Ws, bs = naive.split(net.params, (3, 2, 1))
    return {
        "w14": Ws[0][0, 0], "w15": Ws[0][0, 1], "w24": Ws[0][1, 0], "w25": Ws[0][1, 1],
        "w34": Ws[0][2, 0], "w35": Ws[0][2, 1], "w46": Ws[1][0, 0], "w56": Ws[1][1, 0],
        "theta4": bs[0][0], "theta5": bs[0][1], "theta6": bs[1][0],
    }  # fmt: skip


def test_book_arithmetic_is_what_the_book_prints():
    """Our transcription of Tables 9.2-9.4 reproduces the printed numbers."""
    assert NET4 == pytest.approx(-0.7) and NET5 == pytest.approx(0.1)
    assert NET6 == pytest.approx(-0.105, abs=5e-4)
    assert (round(O4, 3), round(O5, 3), round(O6, 3)) == (0.332, 0.525, 0.474)
    assert (round(ERR6, 4), round(ERR5, 4), round(ERR4, 4)) == (0.1311, -0.0065, -0.0087)
    for name, value in BOOK_NEW.items():
        assert value == pytest.approx(BOOK_PRINTED[name], abs=BOOK_TOL), name


def test_naive_reproduces_the_book():
    """The reference implementation follows the book step by step."""
    Ws, bs = [W_HIDDEN, W_OUT], [B_HIDDEN, B_OUT]
    zs = naive.preactivations(Ws, bs, X[0], "logistic", "logistic")
    np.testing.assert_allclose(np.concatenate(zs), [-0.7, 0.1, -0.105], atol=5e-4)
    outs = naive.forward(Ws, bs, X[0], "logistic", "logistic")
    np.testing.assert_allclose(np.concatenate(outs[1:]), [0.332, 0.525, 0.474], atol=5e-4)
    dWs, dbs = naive.tuple_gradient(Ws, bs, X[0], Y[0], "logistic", "logistic", "squared_error")
    # Err_j = -dE/dz_j, which is the bias gradient negated
    np.testing.assert_allclose(-np.concatenate(dbs), [-0.0087, -0.0065, 0.1311], atol=1e-4)


def test_views_write_params():
    net = textbook_net()
    np.testing.assert_array_equal(net.params, naive.join([W_HIDDEN, W_OUT], [B_HIDDEN, B_OUT]))
    assert np.shares_memory(net.coefs[0], net.params) and np.shares_memory(net.intercepts[1], net.params)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_pass_and_gradient_match_the_book(dtype):
    net = textbook_net(dtype)
    # Table 9.2: the output unit's output O6
    np.testing.assert_allclose(net.predict(X), [[0.474]], atol=5e-4)
    loss, grad = net.loss_gradient(X, Y)
    # E = 1/2 (T - O6)^2 = 1/2 (1 - 0.474)^2 = 0.1383
    assert float(loss) == pytest.approx(0.5 * (1 - 0.4739) ** 2, abs=1e-4)
    # dE/dw_ij = -Err_j O_i: w46 -> -0.1311 * 0.332, w14 -> 0.0087 * 1, theta6 -> -0.1311
    Ws, bs = naive.split(grad, (3, 2, 1))
    assert Ws[1][0, 0] == pytest.approx(-0.1311 * 0.332, abs=1e-4)
    assert Ws[1][1, 0] == pytest.approx(-0.1311 * 0.525, abs=1e-4)
    assert Ws[0][0, 0] == pytest.approx(0.0087, abs=1e-4)
    assert Ws[0][1, 0] == 0.0  # x2 = 0 contributes no increment
    np.testing.assert_allclose(bs[0], [0.0087, 0.0065], atol=1e-4)
    assert bs[1][0] == pytest.approx(-0.1311, abs=1e-4)


@pytest.mark.parametrize(
    "mode, batch_size, dtype",
    [
        ("case", None, np.float64),
        ("case", None, np.float32),
        ("epoch", None, np.float64),  # one tuple: epoch updating is the same single update
        ("minibatch", 1, np.float64),
    ],
)
def test_one_case_update_matches_the_book(mode, batch_size, dtype):
    net = textbook_net(dtype)
    start = net.params.astype(np.float64)
    hist = fastbp.train(net, X, Y, mode=mode, batch_size=batch_size, learning_rate=LR, epochs=1,
                        shuffle=False, track="end")
    assert hist.n_epochs == 1 and hist.stopped_by == "epochs"
    # Table 9.4, at the book's precision
    got = named(net)
    for name, printed in BOOK_PRINTED.items():
        assert got[name] == pytest.approx(printed, abs=BOOK_TOL), name
    # and exactly what the reference computes
    spec = naive.Spec((3, 2, 1))
    expected = naive.case_epoch(start, spec, X, Y, [0], LR)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(net.params, expected, rtol=tol, atol=tol)
    # track="end": the loss recorded is that of the updated network
    assert hist.loss[0] == pytest.approx(naive.mean_loss(expected, spec, X, Y), rel=tol, abs=tol)
