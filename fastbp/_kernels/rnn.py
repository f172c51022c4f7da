"""Recurrent (Elman) networks: forward over a sequence, backpropagation through time (with
truncation and clipping), the case/batch passes, evaluation and prediction.
"""
import numpy as np
from numba import njit, prange

from ._jit import twin, update_flat
from ._setup import INTERNAL, JIT
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .fastmath import activate, empty_array, smaller, times_derivative, zero_array
from .optimizers import begin_update
from .passes import add_chunks
from .steps import is_correct, output_error, tuple_loss, weight_of

# -- recurrent (Elman) networks: backpropagation through time ------------------------------------


@njit(inline="always", **JIT)
def rnn_hidden(params, rl, X2, base, T, H):
    """h_t = f(W_x^T x_t + W_h^T h_{t-1} + b_h) for t = 1..T into H (H[0] = 0)."""
    n_in, nh = np.uint64(rl[R_IN]), np.uint64(rl[R_HID])
    wx, wh, bh = np.uint64(rl[R_WX]), np.uint64(rl[R_WH]), np.uint64(rl[R_BH])
    for j in range(nh):
        H[j] = 0
    for t in range(T):
        prev = np.uint64(t) * nh
        cur = prev + nh
        for j in range(nh):
            H[cur + j] = params[bh + j]
        for i in range(n_in):
            x_i = X2[base + np.uint64(t), i]
            row = wx + i * nh
            for j in range(nh):
                H[cur + j] += x_i * params[row + j]
        for i in range(nh):
            h_i = H[prev + i]
            row = wh + i * nh
            for j in range(nh):
                H[cur + j] += h_i * params[row + j]
        activate(H, cur, nh, rl[R_ACT_H])


@njit(inline="always", **JIT)
def rnn_output(params, rl, H, t, o):
    """o = g(W_y^T h_t + b_y), h_t = H's row t (1-based steps)."""
    nh, no = np.uint64(rl[R_HID]), np.uint64(rl[R_OUT])
    wy, by = np.uint64(rl[R_WY]), np.uint64(rl[R_BY])
    cur = np.uint64(t) * nh
    for k in range(no):
        o[k] = params[by + k]
    for i in range(nh):
        h_i = H[cur + i]
        row = wy + i * no
        for k in range(no):
            o[k] += h_i * params[row + k]
    activate(o, ZERO, no, rl[R_ACT_Y])


@njit(**JIT, **INTERNAL)
def rnn_sequence(params, rl, X2, Y2, s, T, per_step, bptt, loss_code, gscale, grad, H, DA, o, do,
                 dh, dh_next):
    """Forward pass and backpropagation through time for sequence s: adds gscale dE_s/dparams
    to grad (E_s: the loss at the last step, or the mean over steps of per-step losses) and
    returns (E_s, fraction of outputs classified right). With bptt > 0 an error flows back at
    most into the block of bptt steps it arose in, blocks counted back from the last step."""
    dt = params.dtype.type
    n_in, nh, no = np.uint64(rl[R_IN]), np.uint64(rl[R_HID]), np.uint64(rl[R_OUT])
    wx, wh, bh = np.uint64(rl[R_WX]), np.uint64(rl[R_WH]), np.uint64(rl[R_BH])
    wy, by = np.uint64(rl[R_WY]), np.uint64(rl[R_BY])
    act_h, act_y = rl[R_ACT_H], rl[R_ACT_Y]
    base = np.uint64(s) * np.uint64(T)
    rnn_hidden(params, rl, X2, base, T, H)
    steps = T if per_step else 1
    scale = dt(gscale / steps)
    loss, correct = 0.0, 0.0
    for j in range(nh):
        dh_next[j] = 0
    for t in range(T - 1, -1, -1):
        cur = np.uint64(t + 1) * nh
        prev = cur - nh
        for j in range(nh):
            dh[j] = dh_next[j]
        if per_step or t == T - 1:
            y_row = base + np.uint64(t) if per_step else np.uint64(s)
            rnn_output(params, rl, H, t + 1, o)
            loss += tuple_loss(o, ZERO, no, Y2, y_row, loss_code, act_y)
            correct += is_correct(o, ZERO, no, Y2, y_row, act_y)
            output_error(o, do, ZERO, no, Y2, y_row, loss_code, act_y)
            for k in range(no):
                do[k] *= scale
            for i in range(nh):
                h_i = H[cur + i]
                row = wy + i * no
                back = dt(0)
                for k in range(no):
                    back += params[row + k] * do[k]
                    grad[row + k] += h_i * do[k]
                dh[i] += back
            for k in range(no):
                grad[by + k] += do[k]
        elif not per_step and bptt > 0 and T - t > bptt:
            break  # nothing flows further back
        for j in range(nh):
            DA[cur + j] = dh[j]
        times_derivative(DA, H, cur, nh, act_h)
        for i in range(n_in):
            x_i = X2[base + np.uint64(t), i]
            row = wx + i * nh
            for j in range(nh):
                grad[row + j] += x_i * DA[cur + j]
        for i in range(nh):
            h_i = H[prev + i]
            row = wh + i * nh
            back = dt(0)
            for j in range(nh):
                back += params[row + j] * DA[cur + j]
                grad[row + j] += h_i * DA[cur + j]
            dh_next[i] = back
        for j in range(nh):
            grad[bh + j] += DA[cur + j]
        if bptt > 0 and (T - t) % bptt == 0:
            for j in range(nh):
                dh_next[j] = 0  # the block's first step: its error stays in the block
    return loss / steps, correct / steps


@njit(**JIT, **INTERNAL)
def rnn_workspace(params, rl, T):
    nh, no = rl[R_HID], rl[R_OUT]
    dt = params.dtype
    return (zero_array((T + 1) * nh, dt), zero_array((T + 1) * nh, dt),
            empty_array(no, dt), empty_array(no, dt), empty_array(nh, dt), empty_array(nh, dt))


@njit(**JIT)
def rnn_squared_weights(params, rl):
    """sum of w^2 over W_x, W_h and W_y (not the biases)."""
    total = 0.0
    for start, stop in ((rl[R_WX], rl[R_BH]), (rl[R_WY], rl[R_BY])):
        block = params.dtype.type(0)
        for k in range(np.uint64(start), np.uint64(stop)):
            block += params[k] * params[k]
        total += np.float64(block)
    return total


@njit(**JIT)
def clip_norm(grad, scale, max_norm):
    """Multiply grad by min(1, max_norm / ||scale grad||): gradient-norm clipping (max_norm 0: off)."""
    if max_norm <= 0.0:
        return
    total = 0.0
    for k in range(grad.shape[0]):
        total += np.float64(grad[k]) * np.float64(grad[k])
    norm = np.sqrt(total) * scale
    if norm > max_norm:
        factor = grad.dtype.type(max_norm / norm)
        for k in range(grad.shape[0]):
            grad[k] *= factor


@njit(**JIT, **INTERNAL)
def rnn_apply(params, grad, state, rl, scale, decay, opt, hyper):
    """Move params against scale grad (+ decay w on the weight blocks), one optimizer step."""
    dt = params.dtype.type
    begin_update(hyper, opt)
    wx, bh, wy, by = rl[R_WX], rl[R_BH], rl[R_WY], rl[R_BY]
    nh, no = rl[R_HID], rl[R_OUT]
    # the four blocks (weights with decay, biases without) through one call site: update_flat
    # is inlined into each
    starts = (np.uint64(wx), np.uint64(bh), np.uint64(wy), np.uint64(by))
    sizes = (np.uint64(bh - wx), np.uint64(nh), np.uint64(by - wy), np.uint64(no))
    for k in range(4):
        update_flat(params, state, starts[k], sizes[k], grad, starts[k], dt(scale),
                    dt(decay) if k % 2 == 0 else dt(0), opt, hyper)


@njit(**JIT, **INTERNAL)
def rnn_case_epoch(params, rl, X2, Y2, weights, order, T, per_step, bptt, max_norm, loss_code,
                   opt, hyper, state):
    """Case updating for sequences: per sequence in `order`, BPTT, one update (as case_epoch)."""
    H, DA, o, do, dh, dh_next = rnn_workspace(params, rl, T)
    grad = empty_array(params.shape[0], params.dtype)
    alpha = hyper[ALPHA]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0.0
    for p in range(order.shape[0]):
        s = order[p]
        weight = weight_of(weights, s)
        grad[:] = 0
        loss, correct = rnn_sequence(params, rl, X2, Y2, s, T, per_step, bptt, loss_code,
                                     1.0 if weight != 0.0 else 0.0, grad, H, DA, o, do, dh, dh_next)
        loss_sum += loss
        n_correct += correct
        if weight == 0.0:
            continue
        if alpha != 0.0:
            penalty_sum += 0.5 * alpha * rnn_squared_weights(params, rl) / weight
        clip_norm(grad, 1.0, max_norm)
        rnn_apply(params, grad, state, rl, 1.0, alpha / weight, opt, hyper)
    return loss_sum, penalty_sum, n_correct


@njit(parallel=True, **JIT)
def rnn_gradient(params, rl, X2, Y2, weights, order, start, stop, T, per_step, bptt, loss_code,
                 rows, grad):
    """grad = sum over sequences order[start:stop] of w_s dE_s/dparams, in rows.shape[0]
    fixed chunks added in a fixed order (the same bits on any number of threads). Returns
    (sum w E, sum w, sum of fractions classified right)."""
    n_chunks = rows.shape[0]
    losses = zero_array(n_chunks, np.float64)
    weight_sums = zero_array(n_chunks, np.float64)
    corrects = zero_array(n_chunks, np.float64)
    n = stop - start
    for c in prange(n_chunks):
        lo = start + n * c // n_chunks
        hi = start + n * (c + 1) // n_chunks
        row = rows[c]
        row[:] = 0
        H, DA, o, do, dh, dh_next = rnn_workspace(params, rl, T)
        for p in range(lo, hi):
            s = order[p]
            weight = weight_of(weights, s)
            loss, correct = rnn_sequence(params, rl, X2, Y2, s, T, per_step, bptt, loss_code,
                                         weight, row, H, DA, o, do, dh, dh_next)
            losses[c] += weight * loss
            weight_sums[c] += weight
            corrects[c] += correct
    for k in prange(grad.shape[0]):
        total = grad.dtype.type(0)
        for c in range(n_chunks):
            total += rows[c, k]
        grad[k] = total
    return add_chunks(losses, weight_sums, corrects)


@njit(**JIT, **INTERNAL)
def rnn_batches(params, rl, X2, Y2, weights, order, batch_size, T, per_step, bptt, max_norm,
                loss_code, opt, hyper, state, rows, grad):
    """Minibatch (and, with one batch, epoch) updating for sequences: per run of batch_size
    sequences of `order`, the mean gradient, clipped, one update."""
    n = order.shape[0]
    alpha = hyper[ALPHA]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0.0
    for start in range(0, n, batch_size):
        stop = smaller(start + batch_size, n)
        loss_b, weight_b, correct_b = rnn_gradient(params, rl, X2, Y2, weights, order, start, stop,
                                                   T, per_step, bptt, loss_code, rows, grad)
        n_correct += correct_b
        if weight_b == 0.0:
            continue
        loss_sum += (stop - start) / weight_b * loss_b
        if alpha != 0.0:
            penalty_sum += (stop - start) / weight_b * 0.5 * alpha * rnn_squared_weights(params, rl)
        clip_norm(grad, 1.0 / weight_b, max_norm)
        rnn_apply(params, grad, state, rl, 1.0 / weight_b, alpha / weight_b, opt, hyper)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT)
def rnn_evaluate_serial(params, rl, X2, Y2, weights, T, per_step, loss_code, n_chunks):
    """Forward passes only: (sum w E, sum w, sum of fractions right) at the current weights,
    in n_chunks fixed chunks (on threads in the twin rnn_evaluate)."""
    n = X2.shape[0] // T
    no = np.uint64(rl[R_OUT])
    losses = zero_array(n_chunks, np.float64)
    weight_sums = zero_array(n_chunks, np.float64)
    corrects = zero_array(n_chunks, np.float64)
    for c in prange(n_chunks):
        H, DA, o, do, dh, dh_next = rnn_workspace(params, rl, T)
        for s in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            weight = weight_of(weights, s)
            base = np.uint64(s) * np.uint64(T)
            rnn_hidden(params, rl, X2, base, T, H)
            loss, correct = 0.0, 0.0
            first = 0 if per_step else T - 1
            for t in range(first, T):
                y_row = base + np.uint64(t) if per_step else np.uint64(s)
                rnn_output(params, rl, H, t + 1, o)
                loss += tuple_loss(o, ZERO, no, Y2, y_row, loss_code, rl[R_ACT_Y])
                correct += is_correct(o, ZERO, no, Y2, y_row, rl[R_ACT_Y])
            losses[c] += weight * loss / (T - first)
            weight_sums[c] += weight
            corrects[c] += correct / (T - first)
    return add_chunks(losses, weight_sums, corrects)


@njit(**JIT)
def rnn_predict_serial(params, rl, X2, T, per_step, result, n_chunks):
    """Outputs for every sequence: at the last step (result n_seq x n_out) or at every step
    (result n_seq*T x n_out)."""
    n = X2.shape[0] // T
    no = np.uint64(rl[R_OUT])
    for c in prange(n_chunks):
        H, DA, o, do, dh, dh_next = rnn_workspace(params, rl, T)
        for s in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            base = np.uint64(s) * np.uint64(T)
            rnn_hidden(params, rl, X2, base, T, H)
            first = 0 if per_step else T - 1
            for t in range(first, T):
                rnn_output(params, rl, H, t + 1, o)
                r = base + np.uint64(t) if per_step else np.uint64(s)
                for k in range(no):
                    result[r, k] = o[k]


# The same passes on threads, for large inputs (Network.predict's rule: see parallel_forward);
# the chunks, and so the numbers, are the same.
rnn_evaluate = twin(rnn_evaluate_serial, "rnn_evaluate", parallel=True, **JIT)
rnn_predict = twin(rnn_predict_serial, "rnn_predict", parallel=True, **JIT)
