"""The optimizers' steps over the flat params buffer and its state rows: SGD with momentum
or Nesterov momentum, Adam, RPROP (iRPROP-) and Quickprop, per layer (update_outer) or
over the whole buffer (update_flat, apply_mean_update).
"""
import numpy as np
from numba import njit

from ._jit import update_flat
from ._setup import INTERNAL, JIT, NO_REFCOUNT
from .codes import *  # noqa: F401,F403  (compiled in as constants)


@njit(inline="always", **JIT)
def begin_update(hyper, opt):
    """Count one more update; Adam's bias-corrected rate for it goes in hyper[LR_T]."""
    hyper[STEP] += 1.0
    if opt == ADAM:
        t = hyper[STEP]
        hyper[LR_T] = hyper[LR] * np.sqrt(1.0 - hyper[BETA_2] ** t) / (1.0 - hyper[BETA_1] ** t)


@njit(inline="always", **JIT)
def momentum_step(w, v, g, lr, mu, nesterov):
    """SGD with momentum: v = mu v - lr g; w += v, or w += mu v - lr g with Nesterov."""
    v = mu * v - lr * g
    return (w + mu * v - lr * g if nesterov else w + v), v


@njit(inline="always", **JIT)
def adam_step(w, m, s, g, b1, c1, b2, c2, lr_t, eps):
    """Adam: m = b1 m + (1-b1) g, s = b2 s + (1-b2) g^2, w -= lr_t m / (sqrt(s) + eps);
    c1 = 1-b1 and c2 = 1-b2 come in typed, so no literal promotes a float32 network."""
    m = b1 * m + c1 * g
    s = b2 * s + c2 * g * g
    return w - lr_t * m / (np.sqrt(s) + eps), m, s


@njit(inline="always", **JIT)
def row_input(a, a_off, i, n_rows, decay):
    """Row i's input and weight decay in an outer update: a[a_off + i] and decay, or for the
    bias row (i == n_rows) 1 and 0: a unit whose output is always 1, not penalised."""
    dt = a.dtype.type
    if i < n_rows:
        return a[a_off + i], dt(decay)
    return dt(1), dt(0)


@njit(inline="always", **JIT)
def sgd_outer_rows(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, hyper,
                   errors, with_bias):
    """Move the n_rows x n_cols block W of params at `start` against
    g_ij = a[a_off+i] d[d_off+j] + decay W_ij, by SGD with or without (Nesterov) momentum:
    one layer's case update (state: the optimizer's arrays in the params layout).
    `with_bias`: the biases follow W in params and move too, as the textbook has them: one
    more row, from a unit whose output is always 1, not penalised (one call per layer; a
    call of their own cost a quarter of a case update on the tiny workload). With `errors`,
    the row's error sum_j W_ij d[d_off+j], from the weights as they were, goes to
    d[a_off+i]: the backward pass and the update share one loop over each row (two loops
    cost 1.7x as much on a 64x64 layer).
    Summing the new W_ij^2 here too cost as much as the update (a reduction per row); a
    flat pass over the weights is cheaper."""
    dt = params.dtype.type
    lr, mu, nesterov = dt(hyper[LR]), dt(hyper[MOMENTUM]), hyper[NESTEROV] != 0.0
    for i in range(n_rows + ONE if with_bias else n_rows):
        a_i, row_decay = row_input(a, a_off, i, n_rows, decay)
        row = start + i * n_cols
        error = dt(0)
        if mu == dt(0) and errors:
            for j in range(n_cols):
                w = params[row + j]
                error += w * d[d_off + j]
                params[row + j] = w - lr * (a_i * d[d_off + j] + row_decay * w)
        elif mu == dt(0):  # the first layer: no errors to send back (10-20% of a case update)
            for j in range(n_cols):
                w = params[row + j]
                params[row + j] = w - lr * (a_i * d[d_off + j] + row_decay * w)
        else:
            for j in range(n_cols):
                k = row + j
                w = params[k]
                error += w * d[d_off + j]
                params[k], state[0, k] = momentum_step(w, state[0, k],
                                                       a_i * d[d_off + j] + row_decay * w,
                                                       lr, mu, nesterov)
        if errors and i < n_rows:
            d[a_off + i] = error


@njit(inline="always", **JIT)
def adam_outer_rows(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, hyper,
                    errors, with_bias):
    """sgd_outer_rows by Adam."""
    dt = params.dtype.type
    b1, b2, lr_t, eps = dt(hyper[BETA_1]), dt(hyper[BETA_2]), dt(hyper[LR_T]), dt(hyper[EPSILON])
    c1, c2 = dt(1.0 - hyper[BETA_1]), dt(1.0 - hyper[BETA_2])
    for i in range(n_rows + ONE if with_bias else n_rows):
        a_i, row_decay = row_input(a, a_off, i, n_rows, decay)
        row = start + i * n_cols
        error = dt(0)
        for j in range(n_cols):
            k = row + j
            w = params[k]
            error += w * d[d_off + j]
            params[k], state[0, k], state[1, k] = adam_step(
                w, state[0, k], state[1, k], a_i * d[d_off + j] + row_decay * w,
                b1, c1, b2, c2, lr_t, eps)
        if errors and i < n_rows:
            d[a_off + i] = error


@njit(**JIT, **INTERNAL)
def any_update_outer(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, opt,
                     hyper, errors, with_bias):
    """update_outer (see _jit) for an optimizer chosen at run time (an int code)."""
    if opt == ADAM:
        adam_outer_rows(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, hyper,
                        errors, with_bias)
    else:
        sgd_outer_rows(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, hyper,
                       errors, with_bias)


@njit(inline="always", **JIT)
def rprop_step(w, step, last, g, increase, decrease, delta_min, delta_max, min_step, zero):
    """iRPROP- (Igel & Huesken 2000, FANN's FANN_TRAIN_RPROP): the step grows by `increase`
    while the gradient keeps its sign and shrinks by `decrease` when it flips; then the
    gradient counts as 0 (no move now, no flip next time). w moves by the step against the
    gradient's sign. Returns (w, step, gradient to remember)."""
    step = max(step, min_step)  # as FANN: a step of 0 would stop training
    if last * g < zero:
        return w, max(step * decrease, delta_min), zero
    step = min(step * increase, delta_max)
    if g > zero:
        return w - step, step, g
    if g < zero:
        return w + step, step, g
    return w, step, g


@njit(inline="always", **JIT)
def quickprop_step(w, last_step, last_slope, g, total, epsilon, decay, mu, shrink, small, zero):
    """Quickprop (Fahlman 1988) as FANN's FANN_TRAIN_QUICKPROP writes it, in FANN's slopes
    (minus the summed gradient, `total` times the mean gradient g, plus decay w): a parabola
    through the last two slopes, steps at most mu times the last one, a linear term epsilon
    slope where the slope keeps its sign. Returns (w, step, slope)."""
    slope = -total * g + decay * w
    step = zero
    if last_step > small:
        if slope > zero:
            step += epsilon * slope
        if slope > shrink * last_slope:
            step += mu * last_step
        else:
            step += last_step * slope / (last_slope - slope)
    elif last_step < -small:
        if slope < zero:
            step += epsilon * slope
        if slope < shrink * last_slope:
            step += mu * last_step
        else:
            step += last_step * slope / (last_slope - slope)
    else:
        step += epsilon * slope
    return w + step, step, slope


# Each optimizer's step over params[start:start+n], against g_k = scale vec[v_off+k] + decay
# w_k: update_flat (see _jit) inlines the one an Optimizer names (FLAT_STEPS), any_update_flat
# all four, chosen at run time.

@njit(inline="always", **JIT)
def sgd_flat(params, state, start, n, vec, v_off, scale, decay, hyper):
    """SGD, with or without (Nesterov) momentum."""
    dt = params.dtype.type
    lr, mu, nesterov = dt(hyper[LR]), dt(hyper[MOMENTUM]), hyper[NESTEROV] != 0.0
    if hyper[MOMENTUM] == 0.0:
        for j in range(n):
            params[start + j] -= lr * (scale * vec[v_off + j] + decay * params[start + j])
    else:
        for j in range(n):
            k = start + j
            params[k], state[0, k] = momentum_step(params[k], state[0, k],
                                                   scale * vec[v_off + j] + decay * params[k],
                                                   lr, mu, nesterov)


@njit(inline="always", **JIT)
def adam_flat(params, state, start, n, vec, v_off, scale, decay, hyper):
    """Adam."""
    dt = params.dtype.type
    b1, b2, lr_t, eps = dt(hyper[BETA_1]), dt(hyper[BETA_2]), dt(hyper[LR_T]), dt(hyper[EPSILON])
    c1, c2 = dt(1.0 - hyper[BETA_1]), dt(1.0 - hyper[BETA_2])
    for j in range(n):
        k = start + j
        params[k], state[0, k], state[1, k] = adam_step(
            params[k], state[0, k], state[1, k], scale * vec[v_off + j] + decay * params[k],
            b1, c1, b2, c2, lr_t, eps)


@njit(inline="always", **JIT)
def rprop_flat(params, state, start, n, vec, v_off, scale, decay, hyper):
    """RPROP (iRPROP-)."""
    dt = params.dtype.type
    inc, dec = dt(hyper[RPROP_INCREASE]), dt(hyper[RPROP_DECREASE])
    dmin, dmax = dt(hyper[RPROP_DELTA_MIN]), dt(hyper[RPROP_DELTA_MAX])
    for j in range(n):
        k = start + j
        params[k], state[0, k], state[1, k] = rprop_step(
            params[k], state[0, k], state[1, k], scale * vec[v_off + j] + decay * params[k],
            inc, dec, dmin, dmax, dt(RPROP_MIN_STEP), dt(0))


@njit(inline="always", **JIT)
def quickprop_flat(params, state, start, n, vec, v_off, scale, decay, hyper):
    """Quickprop."""
    dt = params.dtype.type
    lr = dt(hyper[LR])
    total = dt(1.0) / scale  # the batch's weight sum: FANN's slopes are sums
    qmu = dt(hyper[QUICKPROP_MU])
    epsilon, qdecay, shrink = lr * scale, dt(hyper[QUICKPROP_DECAY]), qmu / (dt(1) + qmu)
    for j in range(n):
        k = start + j
        params[k], state[0, k], state[1, k] = quickprop_step(
            params[k], state[0, k], state[1, k], scale * vec[v_off + j] + decay * params[k],
            total, epsilon, qdecay, qmu, shrink, dt(0.001), dt(0))


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def any_update_flat(params, state, start, n, vec, v_off, scale, decay, opt, hyper):
    """update_flat for an optimizer chosen at run time (an int code)."""
    if opt == RPROP:
        rprop_flat(params, state, start, n, vec, v_off, scale, decay, hyper)
    elif opt == QUICKPROP:
        quickprop_flat(params, state, start, n, vec, v_off, scale, decay, hyper)
    elif opt == ADAM:
        adam_flat(params, state, start, n, vec, v_off, scale, decay, hyper)
    else:
        sgd_flat(params, state, start, n, vec, v_off, scale, decay, hyper)


FLAT_STEPS = {SGD: sgd_flat, ADAM: adam_flat, RPROP: rprop_flat, QUICKPROP: quickprop_flat}
OUTER_STEPS = {SGD: sgd_outer_rows, ADAM: adam_outer_rows}  # case updating: no RPROP, Quickprop


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def apply_mean_update(params, grad, state, geo, weight_sum, opt, hyper):
    """Epoch/minibatch updating: move against grad / S (+ alpha w / S on weights), where grad
    is the (weighted) sum of the tuples' gradients and S the sum of their weights."""
    dt = params.dtype.type
    scale = dt(1.0 / weight_sum)
    decay = dt(hyper[ALPHA] / weight_sum)
    begin_update(hyper, opt)
    # each layer's weights (with decay), then its biases (without), through one call site:
    # update_flat is inlined into each
    for k in range(2 * geo.shape[0]):
        l = k // 2
        start = geo[l, G_W] if k % 2 == 0 else geo[l, G_B]
        n = geo[l, G_B] - geo[l, G_W] if k % 2 == 0 else geo[l, G_OUT]
        update_flat(params, state, start, n, grad, start, scale, decay if k % 2 == 0 else dt(0),
                    opt, hyper)
