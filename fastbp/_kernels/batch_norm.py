"""Batch normalisation: the forward and backward passes of batch-normalised hidden layers,
the running statistics, evaluation and prediction.
"""
import numpy as np
from numba import njit

from ._jit import update_flat
from ._setup import INTERNAL, JIT
from .blocks import gather_rows, net_inputs
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .fastmath import activate, empty_array, smaller, times_derivative
from .optimizers import apply_mean_update
from .steps import geometry, is_correct, n_units, output_error, squared_weights, tuple_loss, weight_of

# -- batch normalisation --------------------------------------------------------------------------


@njit(**JIT, **INTERNAL)
def bn_matrix(buf, units_start, size, b):
    start = b * units_start
    return buf[start:start + b * size].reshape((b, size))


@njit(**JIT, **INTERNAL)
def bn_forward(params, layout, bn, stats, X, order, p0, b, A, ZH, inv, training, update, momentum,
               eps):
    """Forward pass of the b tuples X[order[p0:p0+b]] into A (ZH: the normalised inputs, inv:
    1/sqrt(var + eps) per unit). training: batch statistics (and, with update, the running
    ones move towards them); else the running statistics (inference)."""
    dt = params.dtype.type
    gather_rows(X, order, p0, bn_matrix(A, 0, layout[0, FAN_IN], b))
    units = 0
    for l in range(layout.shape[0]):
        fan_in, fan_out, code = layout[l, FAN_IN], layout[l, FAN_OUT], layout[l, ACT]
        out_start = units + fan_in
        Z = bn_matrix(A, out_start, fan_out, b)
        net_inputs(params, layout, l, A, b * units, b * out_start, b)  # into Z
        if bn[l, BN_ON]:
            zh = bn_matrix(ZH, out_start, fan_out, b)
            g0, b0, s0 = bn[l, BN_GAMMA], bn[l, BN_BETA], bn[l, BN_STAT]
            for j in range(fan_out):
                if training:
                    mean = 0.0
                    for r in range(b):
                        mean += Z[r, j]
                    mean /= b
                    var = 0.0
                    for r in range(b):
                        var += (Z[r, j] - mean) ** 2
                    var /= b
                    if update:
                        stats[s0 + j] = (1 - momentum) * stats[s0 + j] + momentum * mean
                        unbiased = var * b / (b - 1) if b > 1 else var
                        stats[s0 + fan_out + j] = (1 - momentum) * stats[s0 + fan_out + j] + \
                            momentum * unbiased
                else:
                    mean, var = stats[s0 + j], stats[s0 + fan_out + j]
                inv_j = 1.0 / np.sqrt(var + eps)
                inv[out_start + j] = inv_j
                gamma, beta = params[g0 + j], params[b0 + j]
                for r in range(b):
                    z = dt((Z[r, j] - mean) * inv_j)
                    zh[r, j] = z
                    Z[r, j] = gamma * z + beta
        start = b * out_start
        if code == SOFTMAX:
            for r in range(b):
                activate(A, np.uint64(start + r * fan_out), np.uint64(fan_out), code)
        else:
            activate(A, np.uint64(start), np.uint64(b * fan_out), code)
        units += fan_in
    return units


@njit(**JIT, **INTERNAL)
def bn_gradient(params, layout, bn, stats, X, Y, weights, order, p0, b, loss_code, A, ZH, D, inv,
                grad, update, momentum, eps):
    """grad += sum of w_t dE/dparams over a batch of b tuples, its statistics the batch's own
    (the normalisation's own derivative included). Returns (sum w E, sum w, n_correct)."""
    dt = params.dtype.type
    out_units = bn_forward(params, layout, bn, stats, X, order, p0, b, A, ZH, inv, True, update,
                           momentum, eps)
    last = layout.shape[0] - 1
    n_out, code = layout[last, FAN_OUT], layout[last, ACT]
    loss_b, weight_b, correct_b = 0.0, 0.0, 0
    for r in range(b):
        t = order[p0 + r]
        out = np.uint64(b * out_units + r * n_out)
        weight = weight_of(weights, t)
        loss_b += weight * tuple_loss(A, out, np.uint64(n_out), Y, t, loss_code, code)
        weight_b += weight
        correct_b += is_correct(A, out, np.uint64(n_out), Y, t, code)
        for k in range(n_out):
            D[b * out_units + r * n_out + k] = 0
        output_error(A, D, out, np.uint64(n_out), Y, t, loss_code, code)
        for k in range(n_out):
            D[b * out_units + r * n_out + k] *= dt(weight)
    for l in range(last, -1, -1):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        in_units = out_units - fan_in
        d = bn_matrix(D, out_units, fan_out, b)
        if bn[l, BN_ON]:  # from dE/dI' to dE/dI through the batch's normalisation
            zh = bn_matrix(ZH, out_units, fan_out, b)
            g0, b0 = bn[l, BN_GAMMA], bn[l, BN_BETA]
            for j in range(fan_out):
                sum_d, sum_dz = 0.0, 0.0
                for r in range(b):
                    sum_d += d[r, j]
                    sum_dz += d[r, j] * zh[r, j]
                grad[g0 + j] += sum_dz
                grad[b0 + j] += sum_d
                scale = params[g0 + j] * inv[out_units + j] / b
                for r in range(b):
                    d[r, j] = dt(scale * (b * d[r, j] - sum_d - zh[r, j] * sum_dz))
        W = params[layout[l, W_OFF]:layout[l, B_OFF]].reshape((fan_in, fan_out))
        g_w = grad[layout[l, W_OFF]:layout[l, B_OFF]].reshape((fan_in, fan_out))
        g_w += np.dot(bn_matrix(A, in_units, fan_in, b).T, d)
        g_b = grad[layout[l, B_OFF]:layout[l, B_OFF] + fan_out]
        for r in range(b):
            for j in range(fan_out):
                g_b[j] += d[r, j]
        if l > 0:
            np.dot(d, W.T, bn_matrix(D, in_units, fan_in, b))
            times_derivative(D, A, np.uint64(b * in_units), np.uint64(b * fan_in), layout[l - 1, ACT])
        out_units = in_units
    return loss_b, weight_b, correct_b


@njit(**JIT, **INTERNAL)
def bn_workspace(params, layout, b):
    geo = geometry(layout)
    units = n_units(geo)
    dt = params.dtype
    return (empty_array(b * units, dt), empty_array(b * units, dt),
            empty_array(b * units, dt), empty_array(units, np.float64))


@njit(**JIT, **INTERNAL)
def bn_batches(params, layout, bn, stats, X, Y, weights, order, batch_size, loss_code, opt, hyper,
               state, grad, momentum, eps, bn_off):
    """Minibatch (one batch: epoch) updating of a network with batch normalisation; gamma and
    beta (params[bn_off:]) move like biases (no L2)."""
    n = order.shape[0]
    A, ZH, D, inv = bn_workspace(params, layout, smaller(batch_size, n))
    geo = geometry(layout)
    alpha = hyper[ALPHA]
    dt = params.dtype.type
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        stop = smaller(start + batch_size, n)
        b = stop - start
        grad[:] = 0
        loss_b, weight_b, correct_b = bn_gradient(params, layout, bn, stats, X, Y, weights, order,
                                                  start, b, loss_code, A, ZH, D, inv, grad, True,
                                                  momentum, eps)
        n_correct += correct_b
        if weight_b == 0.0:
            continue
        loss_sum += b / weight_b * loss_b
        if alpha != 0.0:
            penalty_sum += b / weight_b * 0.5 * alpha * squared_weights(params, layout)
        apply_mean_update(params, grad, state, geo, weight_b, opt, hyper)  # weights and biases
        update_flat(params, state, np.uint64(bn_off), np.uint64(params.shape[0] - bn_off), grad,
                    np.uint64(bn_off), dt(1.0 / weight_b), dt(0), opt, hyper)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT)
def bn_loss_gradient(params, layout, bn, stats, X, Y, weights, loss_code, grad, eps):
    """sum w E and its gradient over all of X as ONE batch (batch statistics, the running ones
    left alone): what epoch updating follows. Returns (sum w E, sum w, n_correct)."""
    n = X.shape[0]
    A, ZH, D, inv = bn_workspace(params, layout, n)
    grad[:] = 0
    return bn_gradient(params, layout, bn, stats, X, Y, weights, np.arange(n), 0, n, loss_code,
                       A, ZH, D, inv, grad, False, 0.0, eps)


@njit(**JIT)
def bn_evaluate(params, layout, bn, stats, X, Y, weights, loss_code, eps, result):
    """Inference mode (running statistics), BLOCK tuples at a time: outputs into result (if it
    has rows) and (sum w E, sum w, n_correct) when Y has rows."""
    n = X.shape[0]
    A, ZH, D, inv = bn_workspace(params, layout, smaller(BLOCK, n))
    order = np.arange(n)
    last = layout.shape[0] - 1
    n_out, code = layout[last, FAN_OUT], layout[last, ACT]
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0
    for p0 in range(0, n, BLOCK):
        b = smaller(BLOCK, n - p0)
        out_units = bn_forward(params, layout, bn, stats, X, order, p0, b, A, ZH, inv, False,
                               False, 0.0, eps)
        for r in range(b):
            t = p0 + r
            out = np.uint64(b * out_units + r * n_out)
            if result.shape[0] > 0:
                for k in range(n_out):
                    result[t, k] = A[out + k]
            if Y.shape[0] > 0:
                weight = weight_of(weights, t)
                loss_sum += weight * tuple_loss(A, out, np.uint64(n_out), Y, t, loss_code, code)
                weight_sum += weight
                n_correct += is_correct(A, out, np.uint64(n_out), Y, t, code)
    return loss_sum, weight_sum, n_correct
