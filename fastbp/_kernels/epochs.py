"""Whole-epoch kernels: the Python layer calls one of these per epoch, never per tuple.

Every kernel returns (loss_sum, n_correct) over the tuples it passed forward: the sum of
the per-tuple errors E (float64) and how many were classified right.
"""
import numpy as np
from numba import njit, prange

from .config import JIT, N_STATE
from .tuple_steps import (accumulate, apply_case_update, apply_mean_update, backpropagate,
                          forward, forward_tuple, unit_offsets)

# Gradient rows are summed in blocks of this many parameters, one block per task.
_REDUCE_BLOCK = 4096


@njit(**JIT)
def case_epoch(params, layout, X, Y, order, loss_code, opt, hyper, state):
    """Case updating: for each tuple X[order[p]] in turn, forward, errors back, update params."""
    units = unit_offsets(layout)
    act = np.empty(units[-1], dtype=params.dtype)
    delta = np.empty(units[-1], dtype=params.dtype)
    loss_sum, n_correct = 0.0, 0
    for p in range(order.shape[0]):
        t = order[p]
        loss, correct = backpropagate(params, layout, units, act, delta, X[t], Y[t], loss_code)
        loss_sum += loss
        n_correct += correct
        apply_case_update(params, state, layout, units, act, delta, opt, hyper)
    return loss_sum, n_correct


@njit(**JIT)
def add_chunks(losses, corrects):
    """(loss_sum, n_correct) over the chunks, added in chunk order."""
    loss_sum, n_correct = 0.0, 0
    for c in range(losses.shape[0]):
        loss_sum += losses[c]
        n_correct += corrects[c]
    return loss_sum, n_correct


@njit(inline="always", **JIT)
def gradient_pass(params, layout, X, Y, order, start, stop, loss_code, rows, grad):
    """grad = sum of dE/dw over the tuples X[order[start:stop]] (not yet divided by their number).

    The tuples are cut into rows.shape[0] fixed chunks, each summed into its own row of
    `rows` in parallel; the rows are then added in a fixed order, so the result depends on
    the data and the chunk count only, never on the number of threads. Returns
    (loss_sum, n_correct).

    Inlined into each parallel kernel (Numba IR inlining, so its prange loops become the
    caller's own): a cached kernel must never call another cached parallel kernel, which
    crashes when both are loaded from the disk cache (numba issue 8578).
    """
    n_chunks = rows.shape[0]
    n_params = rows.shape[1]
    n = stop - start
    units = unit_offsets(layout)
    losses = np.zeros(n_chunks)
    corrects = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        act = np.empty(units[-1], dtype=params.dtype)
        delta = np.empty(units[-1], dtype=params.dtype)
        row = rows[c]
        row[:] = 0
        loss_c, correct_c = 0.0, 0
        for p in range(start + n * c // n_chunks, start + n * (c + 1) // n_chunks):
            t = order[p]
            loss, correct = backpropagate(params, layout, units, act, delta, X[t], Y[t], loss_code)
            loss_c += loss
            correct_c += correct
            accumulate(row, layout, units, act, delta)
        losses[c] = loss_c
        corrects[c] = correct_c
    n_blocks = (n_params + _REDUCE_BLOCK - 1) // _REDUCE_BLOCK
    for b in prange(n_blocks):
        lo = b * _REDUCE_BLOCK
        hi = min(lo + _REDUCE_BLOCK, n_params)
        grad[lo:hi] = rows[0, lo:hi]
        for c in range(1, n_chunks):
            grad[lo:hi] += rows[c, lo:hi]
    return add_chunks(losses, corrects)


@njit(parallel=True, **JIT)
def batch_gradient(params, layout, X, Y, order, start, stop, loss_code, rows, grad):
    """The summed gradient over X[order[start:stop]] into grad (see gradient_pass)."""
    return gradient_pass(params, layout, X, Y, order, start, stop, loss_code, rows, grad)


@njit(**JIT)
def mean_update(params, grad, state, layout, n_tuples, opt, hyper):
    """One epoch-updating step with a gradient summed over n_tuples tuples."""
    apply_mean_update(params, grad, state, layout, n_tuples, opt, hyper)


@njit(parallel=True, **JIT)
def minibatch_epoch(params, layout, X, Y, order, batch_size, loss_code, opt, hyper, state,
                    rows, grad):
    """Minibatch updating: for each run of batch_size tuples of `order`, its mean gradient, one update."""
    n = order.shape[0]
    loss_sum, n_correct = 0.0, 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        loss_b, correct_b = gradient_pass(params, layout, X, Y, order, start, stop, loss_code,
                                          rows, grad)
        loss_sum += loss_b
        n_correct += correct_b
        apply_mean_update(params, grad, state, layout, stop - start, opt, hyper)
    return loss_sum, n_correct


@njit(parallel=True, **JIT)
def evaluate(params, layout, X, Y, loss_code, n_chunks):
    """Forward pass only over all of X: (loss_sum, n_correct) at the current weights."""
    n = X.shape[0]
    units = unit_offsets(layout)
    losses = np.zeros(n_chunks)
    corrects = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        act = np.empty(units[-1], dtype=params.dtype)
        loss_c, correct_c = 0.0, 0
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            loss, correct = forward_tuple(params, layout, units, act, X[t], Y[t], loss_code)
            loss_c += loss
            correct_c += correct
        losses[c] = loss_c
        corrects[c] = correct_c
    return add_chunks(losses, corrects)


@njit(parallel=True, **JIT)
def predict(params, layout, X, result, n_chunks):
    """result[t] = output activations of the network for X[t]."""
    n = X.shape[0]
    units = unit_offsets(layout)
    out = units[layout.shape[0]]
    for c in prange(n_chunks):
        act = np.empty(units[-1], dtype=params.dtype)
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            act[:X.shape[1]] = X[t]
            forward(params, layout, units, act)
            result[t] = act[out:]


def new_state(n_params, dtype):
    """Zeroed optimizer state in the params layout: (N_STATE, n_params)."""
    return np.zeros((N_STATE, n_params), dtype=dtype)
