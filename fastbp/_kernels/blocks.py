"""The gradient of a block of tuples as matrix products (epoch and minibatch updating on
wide layers), and the per-chunk workspaces of the parallel passes.
"""
import numpy as np
from numba import njit

from ._jit import activate_block, correct_of, derivative_hidden, error_of, loss_of
from ._setup import INTERNAL, JIT
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .steps import drop_out, dropping, undo_drop_out, weight_of

# -- blocks of tuples -----------------------------------------------------------------------


@njit(**JIT, **INTERNAL)
def unit_matrix(buf, units_start, size, b):
    """The b x size matrix of buf holding, for b tuples, the units that start at units_start in act."""
    start = BLOCK * units_start
    return buf[start:start + b * size].reshape((b, size))


@njit(inline="always", **JIT)
def gather_rows(X, order, p0, inputs):
    """inputs[r] = X[order[p0 + r]] for every row r of inputs: a block's tuples."""
    for r in range(inputs.shape[0]):
        t = order[p0 + r]
        for i in range(inputs.shape[1]):
            inputs[r, i] = X[t, i]


@njit(inline="always", **JIT)
def net_inputs(params, layout, l, inputs, out):
    """out = inputs W + theta: layer l's net inputs I_j = sum_i w_ij O_i + theta_j for a block
    of tuples (inputs: the previous layer's outputs, a row per tuple)."""
    fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
    W = params[layout[l, W_OFF]:layout[l, B_OFF]].reshape((fan_in, fan_out))
    bias = params[layout[l, B_OFF]:layout[l, B_OFF] + fan_out]
    np.dot(inputs, W, out)
    for r in range(out.shape[0]):
        for j in range(fan_out):
            out[r, j] += bias[j]


@njit(**JIT, **INTERNAL)
def block_forward(params, layout, X, order, p0, b, act, dropout, codes):
    """Forward pass of the b tuples X[order[p0:p0+b]] into the block buffer act."""
    gather_rows(X, order, p0, unit_matrix(act, 0, layout[0, FAN_IN], b))
    units = 0
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        net_inputs(params, layout, l, unit_matrix(act, units, fan_in, b),
                   unit_matrix(act, units + fan_in, fan_out, b))
        start = BLOCK * (units + fan_in)
        activate_block(act, np.uint64(start), np.uint64(b), np.uint64(fan_out), codes, layout,
                       l)
        if dropout is not None and l < layout.shape[0] - 1 and dropping(layout, l):
            for r in range(b):
                drop_out(layout, l, order[p0 + r], act, np.uint64(start + r * fan_out),
                         np.uint64(fan_out))
        units += fan_in


@njit(**JIT, **INTERNAL)
def block_gradient(params, layout, X, Y, weights, order, p0, b, codes, act, delta, scratch,
                   grad, dropout):
    """grad += sum of w_t dE/dw over the b tuples X[order[p0:p0+b]], as matrix products.

    Returns (sum w_t E_t, sum w_t, n_correct) over the block.
    """
    block_forward(params, layout, X, order, p0, b, act, dropout, codes)
    last = layout.shape[0] - 1
    n_out = layout[last, FAN_OUT]
    out_units = 0
    for l in range(last + 1):
        out_units += layout[l, FAN_IN]
    loss_b, weight_b, correct_b = 0.0, 0.0, 0
    for r in range(b):  # output errors, one tuple at a time
        t = order[p0 + r]
        out = np.uint64(BLOCK * out_units + r * n_out)
        weight = weight_of(weights, t)
        loss_b += weight * loss_of(act, out, np.uint64(n_out), Y, t, codes, layout)
        weight_b += weight
        correct_b += correct_of(act, out, np.uint64(n_out), Y, t, codes, layout)
        error_of(act, delta, out, np.uint64(n_out), Y, t, codes, layout)
        if weight != 1.0:
            for k in range(n_out):
                delta[BLOCK * out_units + r * n_out + k] *= params.dtype.type(weight)
    for l in range(last, -1, -1):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        in_units = out_units - fan_in
        W = params[layout[l, W_OFF]:layout[l, B_OFF]].reshape((fan_in, fan_out))
        d_out = unit_matrix(delta, out_units, fan_out, b)
        inputs = unit_matrix(act, in_units, fan_in, b)
        # dE/dW = O_in^T delta_out, summed over the block; dE/dtheta = delta_out summed
        g_w = scratch[:fan_in * fan_out].reshape((fan_in, fan_out))
        np.dot(inputs.T, d_out, g_w)
        g = grad[layout[l, W_OFF]:layout[l, B_OFF]]
        g_flat = scratch[:fan_in * fan_out]
        for k in range(g.shape[0]):
            g[k] += g_flat[k]
        g_bias = grad[layout[l, B_OFF]:layout[l, B_OFF] + fan_out]
        for r in range(b):
            for j in range(fan_out):
                g_bias[j] += d_out[r, j]
        if l > 0:  # hidden errors: delta_in = (delta_out W^T) * f'(I_in)
            np.dot(d_out, W.T, unit_matrix(delta, in_units, fan_in, b))
            if dropout is not None and dropping(layout, l - 1):
                for r in range(b):
                    undo_drop_out(layout, l - 1, order[p0 + r], act, delta,
                                  np.uint64(BLOCK * in_units + r * fan_in), np.uint64(fan_in))
            derivative_hidden(delta, act, np.uint64(BLOCK * in_units), np.uint64(b * fan_in),
                              codes, layout, l - 1)
        out_units = in_units
    return loss_b, weight_b, correct_b


@njit(**JIT, **INTERNAL)
def new_workspaces(params, layout, n_chunks):
    """One row per chunk, each holding a block's act and delta buffers and room for the
    largest weight matrix; allocated once per kernel call, not per batch."""
    units = layout[0, FAN_IN]
    largest = 0
    for l in range(layout.shape[0]):
        units += layout[l, FAN_OUT]
        largest = max(largest, layout[l, FAN_IN] * layout[l, FAN_OUT])
    return np.zeros((n_chunks, 2 * BLOCK * units + largest), dtype=params.dtype)


@njit(**JIT, **INTERNAL)
def split_workspace(row, layout):
    """(act, delta, scratch) views of one chunk's workspace row."""
    units = layout[0, FAN_IN]
    for l in range(layout.shape[0]):
        units += layout[l, FAN_OUT]
    size = BLOCK * units
    return row[:size], row[size:2 * size], row[2 * size:]


# -- whole passes --------------------------------------------------------------------------
# A pass runs over the tuples of one epoch in a given order and returns (loss_sum,
# penalty_sum, n_correct) for the tuples it passed: summed over its updates u, each over B_u
# tuples of weight sum S_u at weights W_u,
#     loss_sum    = sum_u B_u/S_u * sum_(t in u) w_t E_t
#     penalty_sum = sum_u B_u/S_u * alpha/2 * ||W_u||^2      (0 when alpha = 0)
# so that (loss_sum + penalty_sum) / n is scikit-learn's loss_curve_ entry, and loss_sum / n
# the plain mean loss when no weights are given. Passes allocate nothing: their scratch
# arrays come from the run (fastbp.train.Run), made once per train() or fit() call.
