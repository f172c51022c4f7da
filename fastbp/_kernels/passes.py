"""Whole passes over the tuples: case updating's pass, the gradient passes of epoch and
minibatch updating (parallel over fixed chunks, summed in a fixed tree), evaluation and
prediction.
"""
import numpy as np
from numba import njit, prange

from ._jit import correct_of, error_of, loss_of, twin
from ._setup import EXACT_JIT, INTERNAL, JIT, NO_REFCOUNT, NOALIAS
from .blocks import block_forward, block_gradient, new_workspaces, split_workspace
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .fastmath import empty_array, smaller, zero_array
from .optimizers import apply_mean_update
from .shaped import forward_of, tuples_gradient_of
from .steps import (
    errors_and_gradient,
    errors_and_update,
    errors_and_update_dropout,
    errors_and_update_inline,
    forward,
    forward_inline,
    forward_tuple,
    geometry,
    n_units,
    padded,
    prefetch_tuple,
    sgd_first_layer,
    squared_weights,
    weight_of,
)


@njit(inline="always", **JIT)
def turned_output(geo, act, alpha, plain):
    """(turned, t_off, stride): whether a case pass works on the output layer's weights
    turned, one contiguous row per unit (rows of `stride`), in act from t_off on, past the
    units (room the caller leaves, codes.turned_room): with plain SGD without L2, on an
    output layer of two or more units over a hidden layer. The rows of a few units' W are too
    short to sweep in whole vectors, its columns strided (9-32-6: 271 -> 194 ns a tuple,
    16-32-5 270 -> 202, 14-32-3 245 -> 183). Back in params at the pass's end."""
    last = geo.shape[0] - 1
    stride, t_off = padded(geo[last, G_IN]), n_units(geo)
    turned = plain and alpha == 0.0 and last > 0 and geo[last, G_OUT] >= TWO and \
        act.shape[0] >= t_off + geo[last, G_OUT] * stride
    return turned, t_off, stride


@njit(inline="always", **JIT)
def turn_output(params, geo, act, t_off, stride, back):
    """The output layer's weights W (fan_in x fan_out) into act[t_off:] as its transpose, rows
    of `stride` (unit j's weights contiguous: turned_sums, turned_update), or back."""
    last = geo.shape[0] - 1
    w_off, fan_in, fan_out = geo[last, G_W], geo[last, G_IN], geo[last, G_OUT]
    for i in range(fan_in):
        for j in range(fan_out):
            if back:
                params[w_off + i * fan_out + j] = act[t_off + j * stride + i]
            else:
                act[t_off + j * stride + i] = params[w_off + i * fan_out + j]


@njit(inline="always", **JIT)
def forward_plain(params, layout, geo, act, codes):
    """forward without the turned output layer: forward_of's generic path (see shaped.py)."""
    forward(params, layout, geo, act, codes, ZERO, ZERO, ZERO, ZERO)


@njit(**JIT, **NO_REFCOUNT, **NOALIAS)
def case_pass(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper, state,
              general, dropout):
    """Case updating: for each tuple X[order[p]] in turn, forward, errors back, update params
    (networks past SMALL_NETWORK, or with dropout; case_pass_small has the steps inlined).

    A tuple of weight w moves params by the gradient of w*E + alpha/2 ||W||^2 divided by w
    (scikit-learn with batch_size=1): the data term is unchanged, the L2 term is divided by
    w, and a tuple of weight 0 changes nothing.
    """
    alpha = hyper[ALPHA]
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    n = order.shape[0]
    lr = params.dtype.type(hyper[LR])
    plain = dropout is None and (general is None or (opt == SGD and hyper[MOMENTUM] == 0.0))
    # As case_pass_small: plain SGD on a first layer of more than EIGHT units sums the next
    # tuple's net inputs in its update (sgd_first_layer), one sweep over the layer's weights
    # where the forward pass made a second (128-32-20: 4,096 weights, 32 KB in float64, the
    # size of the core's L1 cache).
    fuse = geo[0, G_OUT] > EIGHT and plain
    w_off, d_off = geo[0, G_W], geo[0, G_A_OUT]
    primed = False
    turned, t_off, stride = turned_output(geo, act, alpha, plain)
    if turned:
        turn_output(params, geo, act, t_off, stride, False)
    for p in range(n):
        t = order[p]
        prefetch_tuple(X, Y, order, p)
        weight = weight_of(weights, t)
        loss, correct = forward_tuple(params, layout, geo, act, X, Y, t, codes, dropout,
                                      ONE if primed else ZERO, ONE if turned else ZERO, t_off,
                                      stride)
        primed = False
        loss_sum += loss
        n_correct += correct
        if weight == 0.0:
            continue
        if alpha != 0.0:
            penalty_sum += 0.5 * alpha * squared_weights(params, layout) / weight
        error_of(act, delta, out, n_out, Y, t, codes, layout)
        decay = params.dtype.type(alpha / weight)
        if dropout is not None:
            errors_and_update_dropout(params, layout, geo, state, act, delta, decay, opt, hyper,
                                      t, codes)
        else:
            primed = fuse and p + 1 < n
            errors_and_update(params, layout, geo, state, act, delta, decay, opt, hyper, general,
                              codes, 1 if primed else 0, turned, t_off, stride)
            if primed:
                sgd_first_layer(params, w_off, geo[0, G_IN], geo[0, G_OUT], act, delta, d_off,
                                decay, lr, X, order[p + 1], d_off)
    if turned:
        turn_output(params, geo, act, t_off, stride, True)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT, **NO_REFCOUNT, **NOALIAS, **INTERNAL)
def case_pass_small(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                    state, general):
    """case_pass for networks of at most SMALL_NETWORK parameters, without dropout: the same
    steps with the forward and backward passes inlined into the loop over the tuples. On
    small networks a case update is a chain of short dependent steps, and the calls between
    them cost a fifth of it (XOR 2-2-1: 218 -> 167 ns per tuple here, 3-8-8-1 330 -> 275)."""
    alpha = hyper[ALPHA]
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    n = order.shape[0]
    lr = params.dtype.type(hyper[LR])
    plain = general is None or (opt == SGD and hyper[MOMENTUM] == 0.0)
    # Plain SGD on a first layer of more than EIGHT units (updated row by row): the layer's
    # update sums the next tuple's net inputs too (sgd_first_layer), and the next forward
    # pass starts from them (`primed`).
    fuse = geo[0, G_OUT] > EIGHT and plain
    w_off, d_off = geo[0, G_W], geo[0, G_A_OUT]
    primed = False
    turned, t_off, stride = turned_output(geo, act, alpha, plain)
    if turned:
        turn_output(params, geo, act, t_off, stride, False)
    for p in range(n):
        t = order[p]
        prefetch_tuple(X, Y, order, p)
        weight = weight_of(weights, t)
        for i in range(geo[0, G_IN]):
            act[i] = X[t, i]
        forward_inline(params, layout, geo, act, codes, primed, turned, t_off, stride)
        primed = False
        loss_sum += loss_of(act, out, n_out, Y, t, codes, layout)
        n_correct += correct_of(act, out, n_out, Y, t, codes, layout)
        if weight == 0.0:
            continue
        if alpha != 0.0:
            penalty_sum += 0.5 * alpha * squared_weights(params, layout) / weight
        error_of(act, delta, out, n_out, Y, t, codes, layout)
        decay = params.dtype.type(alpha / weight)
        primed = fuse and p + 1 < n
        errors_and_update_inline(params, layout, geo, state, act, delta, decay, opt, hyper,
                                 general, codes, 1 if primed else 0, turned, t_off, stride)
        if primed:
            sgd_first_layer(params, w_off, geo[0, G_IN], geo[0, G_OUT], act, delta, d_off, decay,
                            lr, X, order[p + 1], d_off)
    if turned:
        turn_output(params, geo, act, t_off, stride, True)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def tuples_gradient(params, layout, geo, act, delta, X, Y, weights, order, lo, hi, codes,
                    grad, dropout):
    """grad += sum of w_t dE/dw over X[order[lo:hi]], one tuple at a time. For narrow layers
    (see gradient_pass), where a matrix product's call costs more than its arithmetic: on XOR a
    pass of 4 tuples as matrix products took 13 us. Returns (sum w E, sum w, n_correct)."""
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    loss_c, weight_c, correct_c = 0.0, 0.0, 0
    for p in range(lo, hi):
        t = order[p]
        weight = weight_of(weights, t)
        loss, correct = forward_tuple(params, layout, geo, act, X, Y, t, codes, dropout, ZERO, ZERO,
                                      ZERO, ZERO)
        loss_c += weight * loss
        weight_c += weight
        correct_c += correct
        if weight == 0.0:
            continue
        error_of(act, delta, out, n_out, Y, t, codes, layout)
        if weight != 1.0:
            scale = params.dtype.type(weight)
            for k in range(n_out):
                delta[out + k] *= scale
        errors_and_gradient(params, layout, geo, act, delta, grad, t, codes)
    return loss_c, weight_c, correct_c


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def short_gradient(params, layout, geo, act, delta, X, Y, weights, order, lo, hi, codes, grad,
                   dropout, tuples):
    """grad = the tuples_gradient_of X[order[lo:hi]]: gradient_pass's path for a short pass."""
    for k in range(grad.shape[0]):
        grad[k] = 0
    return tuples_gradient_of(params, layout, geo, act, delta, X, Y, weights, order, lo, hi,
                              codes, grad, dropout, tuples)


@njit(**JIT, **INTERNAL)
def chunk_gradient(params, layout, X, Y, weights, order, lo, hi, codes, row, work_row,
                   dropout):
    """row = sum of w_t dE/dw over X[order[lo:hi]], a block at a time as matrix products:
    returns (sum w_t E_t, sum w_t, n_correct)."""
    act, delta, scratch = split_workspace(work_row, layout)
    row[:] = 0
    loss_c, weight_c, correct_c = 0.0, 0.0, 0
    for p0 in range(lo, hi, BLOCK):
        loss_b, weight_b, correct_b = block_gradient(params, layout, X, Y, weights, order, p0,
                                                     smaller(BLOCK, hi - p0), codes, act, delta,
                                                     scratch, row, dropout)
        loss_c += loss_b
        weight_c += weight_b
        correct_c += correct_b
    return loss_c, weight_c, correct_c


@njit(**JIT, **INTERNAL)
def add_rows(rows, grad, n_params):
    """grad[:n_params] = the sum of the rows, added pairwise in a fixed tree: rows 0+1, 2+3,
    ..., then those sums pairwise, and so on (a row without a partner goes up as it is);
    rows are overwritten. fastbp.dask_arrays sums the blocks of a Dask array in this same
    tree, so a fit on a cluster gives these bits."""
    n = rows.shape[0]
    width = 1
    while width < n:
        for c in range(0, n - width, 2 * width):
            for k in range(n_params):
                rows[c, k] += rows[c + width, k]
        width *= 2
    for k in range(n_params):
        grad[k] = rows[0, k]


@njit(**JIT, **INTERNAL)
def add_chunks(losses, weight_sums, corrects):
    """(loss_sum, weight_sum, n_correct) over the chunks, added in chunk order."""
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0.0
    for c in range(losses.shape[0]):
        loss_sum += losses[c]
        weight_sum += weight_sums[c]
        n_correct += corrects[c]
    return loss_sum, weight_sum, n_correct


@njit(**EXACT_JIT, **INTERNAL)
def add_sums(sums):
    """(loss_sum, weight_sum, n_correct) over the chunks' rows of sums, added in chunk order
    (no reassociation: fastbp.dask_arrays adds its blocks' sums in this order, in Python)."""
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0.0
    for c in range(sums.shape[0]):
        loss_sum += sums[c, 0]
        weight_sum += sums[c, 1]
        n_correct += sums[c, 2]
    return loss_sum, weight_sum, np.int64(n_correct)


@njit(inline="always", **JIT)
def gradient_pass(params, layout, geo, X, Y, weights, order, start, stop, codes, rows, grad,
                  work, sums, tuples, act1, delta1, dropout):
    """grad = sum of w_t dE/dw over the tuples X[order[start:stop]] (not yet divided by S).

    The tuples are cut into rows.shape[0] fixed chunks, each summed into its own row of
    `rows` in parallel (`work`: one workspace row per chunk, `sums` one row of (loss,
    weight, correct) per chunk); the rows are then added in a fixed order, so the result
    depends on the data and the chunk count only, never on the number of threads. Returns
    (sum of w_t E_t, S = sum of w_t, n_correct). A single chunk, or little to add, runs
    without a parallel region: launching one costs microseconds, which a minibatch step
    cannot spare. `tuples` is True or a Shape (else None) for a pass of at most SMALL_PASS tuples (one
    chunk) through layers at most SMALL_LAYER wide, where a matrix product's call costs more
    than its arithmetic: it goes a tuple at a time, straight into grad on act1 and delta1,
    unit buffers the caller made once (no array view, whose reference count costs tens of
    nanoseconds, per pass). Python decides it (fastbp.network.by_tuples), from the network and
    the pass length alone, so results never depend on the thread count, and the kernel
    compiles only the path it takes (a Shape: the pass compiled for the network's shape,
    see shaped.py).

    Inlined into each parallel kernel (Numba IR inlining, so its prange loops become the
    caller's own; in a serial kernel they are plain loops): a cached kernel must never call
    another cached parallel kernel, which crashes when both are loaded from the disk cache
    (numba issue 8578).
    """
    if tuples is not None:  # one chunk: into grad itself, on the kernel's own act1 and delta1
        return short_gradient(params, layout, geo, act1, delta1, X, Y, weights, order, start,
                              stop, codes, grad, dropout, tuples)
    n_chunks, n_params = rows.shape[0], rows.shape[1]
    n = stop - start
    if n_chunks == 1:
        sums[0, 0], sums[0, 1], sums[0, 2] = chunk_gradient(
            params, layout, X, Y, weights, order, start, stop, codes, rows[0], work[0],
            dropout)
    else:
        for c in prange(n_chunks):
            sums[c, 0], sums[c, 1], sums[c, 2] = chunk_gradient(
                params, layout, X, Y, weights, order, start + n * c // n_chunks,
                start + n * (c + 1) // n_chunks, codes, rows[c], work[c], dropout)
    # One thread adds the rows: at most MAX_CHUNKS x n_params additions, a millisecond on
    # `wide` against an epoch of 0.6 s, where a second parallel loop was compiled into every
    # parallel gradient kernel.
    add_rows(rows, grad, n_params)
    return add_sums(sums[:n_chunks])


@njit(**JIT)
def batch_gradient_serial(params, layout, X, Y, weights, order, start, stop, codes, rows, grad,
                          dropout, tuples):
    """The summed gradient over X[order[start:stop]] into grad (see gradient_pass); dropout:
    True for a training layout with dropout, else None; tuples: see gradient_pass. One
    thread (a Dask worker's task: one block, one row); `batch_gradient` is its parallel
    twin."""
    n_chunks = rows.shape[0]
    work = new_workspaces(params, layout, n_chunks)
    act1, delta1, _ = split_workspace(work[0], layout)
    return gradient_pass(params, layout, geometry(layout), X, Y, weights, order, start, stop,
                         codes, rows, grad, work, zero_array((n_chunks, 3), np.float64),
                         tuples, act1, delta1, dropout)


batch_gradient = twin(batch_gradient_serial, "batch_gradient", parallel=True, **JIT)


@njit(inline="always", **JIT)
def follow_batch(params, layout, geo, grad, state, opt, hyper, size, loss_b, weight_b):
    """One batch's mean update from grad (the batch's weighted sum), and the batch's
    (loss, penalty) as an epoch's sums count them: per tuple, as if each weighed 1. A batch
    of zero weight has no gradient to follow: (0, 0), no update."""
    if weight_b == 0.0:
        return 0.0, 0.0
    alpha = hyper[ALPHA]
    penalty = 0.0
    if alpha != 0.0:
        penalty = size / weight_b * 0.5 * alpha * squared_weights(params, layout)
    apply_mean_update(params, grad, state, geo, weight_b, opt, hyper)
    return size / weight_b * loss_b, penalty


@njit(inline="always", **JIT)
def minibatch_pass(params, layout, geo, X, Y, weights, order, batch_size, codes, opt, hyper,
                   state, rows, grad, work, sums, tuples, act1, delta1, dropout):
    """Minibatch updating: for each run of batch_size tuples of `order`, its mean gradient, one
    update. rows holds one row per chunk of a batch of batch_size tuples."""
    n = order.shape[0]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        stop = smaller(start + batch_size, n)
        loss_b, weight_b, correct_b = gradient_pass(params, layout, geo, X, Y, weights, order,
                                                    start, stop, codes, rows, grad, work, sums,
                                                    tuples, act1, delta1, dropout)
        n_correct += correct_b
        loss_b, penalty_b = follow_batch(params, layout, geo, grad, state, opt, hyper,
                                         stop - start, loss_b, weight_b)
        loss_sum += loss_b
        penalty_sum += penalty_b
    return loss_sum, penalty_sum, n_correct


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def short_minibatch_pass(params, layout, geo, act, delta, X, Y, weights, order, batch_size,
                         codes, opt, hyper, state, grad, dropout, tuples):
    """minibatch_pass where every batch is short enough to go a tuple at a time (`tuples` set,
    see gradient_pass): a call of its own, without reference counts (see short_gradient)."""
    n = order.shape[0]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        stop = smaller(start + batch_size, n)
        loss_b, weight_b, correct_b = short_gradient(params, layout, geo, act, delta, X, Y,
                                                     weights, order, start, stop, codes, grad,
                                                     dropout, tuples)
        n_correct += correct_b
        loss_b, penalty_b = follow_batch(params, layout, geo, grad, state, opt, hyper,
                                         stop - start, loss_b, weight_b)
        loss_sum += loss_b
        penalty_sum += penalty_b
    return loss_sum, penalty_sum, n_correct


@njit(inline="always", **JIT)
def evaluate_pass(params, layout, geo, X, Y, weights, codes, acts, sums):
    """Forward passes only over all of X, in acts.shape[0] fixed chunks (acts: one unit buffer
    per chunk): (sum w E, sum w, n_correct) at the current weights. Inlined, as
    gradient_pass, into serial and parallel kernels alike."""
    n = X.shape[0]
    n_chunks = acts.shape[0]
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    for c in prange(n_chunks):
        act = acts[c]
        loss_c, weight_c, correct_c = 0.0, 0.0, 0
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            weight = weight_of(weights, t)
            for i in range(geo[0, G_IN]):
                act[i] = X[t, i]
            forward(params, layout, geo, act, codes, ZERO, ZERO, ZERO, ZERO)
            loss_c += weight * loss_of(act, out, n_out, Y, t, codes, layout)
            weight_c += weight
            correct_c += correct_of(act, out, n_out, Y, t, codes, layout)
        sums[c, 0] = loss_c
        sums[c, 1] = weight_c
        sums[c, 2] = correct_c
    return add_sums(sums[:n_chunks])


@njit(**JIT)
def evaluate_serial(params, layout, X, Y, weights, codes, n_chunks):
    """Forward pass only over all of X: (sum w E, sum w, n_correct) at the current weights;
    one thread (`evaluate` is its parallel twin)."""
    geo = geometry(layout)
    return evaluate_pass(params, layout, geo, X, Y, weights, codes,
                         zero_array((n_chunks, n_units(geo)), params.dtype),
                         empty_array((n_chunks, 3), np.float64))


evaluate = twin(evaluate_serial, "evaluate", parallel=True, **JIT)


@njit(**JIT)
def predict_serial(params, layout, X, result, n_chunks, codes, tuples, blocks):
    """result[t] = output activations of the network for X[t]; one thread (`predict` is its
    parallel twin). tuples, blocks: one is set, the other None (Network._predict_path): a
    tuple at a time (tuples True: forward, as case updating runs it; a Shape: the forward
    pass compiled for the network's shape, shaped.py) or BLOCK tuples at a time as matrix
    products (block_forward, as minibatch and epoch updating run it), so that predicting
    after training compiles little more than the training did."""
    n = X.shape[0]
    geo = geometry(layout)
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    units = n_units(geo)
    packed_out = 0  # where block_forward's layout (unpadded, unlike geo's) puts the outputs
    for l in range(layout.shape[0]):
        packed_out += layout[l, FAN_IN]
    for c in prange(n_chunks):
        lo, hi = n * c // n_chunks, n * (c + 1) // n_chunks
        if tuples is not None:
            act = zero_array(units, params.dtype)  # (its padding too: see geometry)
            for t in range(lo, hi):
                for i in range(geo[0, G_IN]):
                    act[i] = X[t, i]
                forward_of(params, layout, geo, act, codes, tuples)
                for k in range(n_out):
                    result[t, k] = act[out + k]
        if blocks is not None:  # (pruned, not compiled, on the tuples path)
            order = empty_array(hi - lo, np.int64)     # the chunk's tuples (np.arange compiled
            for k in range(hi - lo):                   # three functions of its own: 0.16 s)
                order[k] = lo + k                      # X[order[p0 - lo + r]] = X[p0 + r]
            acts = empty_array(BLOCK * units, params.dtype)
            for p0 in range(lo, hi, BLOCK):
                b = smaller(BLOCK, hi - p0)
                block_forward(params, layout, X, order, p0 - lo, b, acts, None, codes)
                for r in range(b):
                    for k in range(n_out):
                        result[p0 + r, k] = acts[BLOCK * packed_out + r * n_out + k]


predict = twin(predict_serial, "predict", parallel=True, **JIT)

