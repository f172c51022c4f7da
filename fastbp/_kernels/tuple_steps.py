"""The steps of backpropagation for one training tuple (Han & Kamber, ch. 9).

All arrays are flat. `act` holds the outputs O of every unit, layer after layer, input
first (`units[l]` is where layer l starts, `units[-1]` its length); `delta` has the same
layout and holds dE/dI, the gradient of the tuple's error with respect to each unit's net
input I (the textbook's Err_j is -delta_j). Weights live in `params` as described by the
layout table (see `config`).

Inner loops index 1-D views with the bare loop counter (`out[j]`, never `act[a_out + j]`):
Numba must allow for a negative `a_out + j` and wrap it, and that check alone stops LLVM
from vectorising the loop (10x slower on a 64-wide row).
"""
import numpy as np
from numba import njit

from .config import (ACT, ADAM, ALPHA, B_OFF, BETA_1, BETA_2, EPSILON, EXP, FAN_IN, FAN_OUT,
                     JIT, LOG_LOSS, LOGISTIC, LR, LR_T, MOMENTUM, NESTEROV, POISSON, RELU,
                     SOFTMAX, SQUARED_ERROR, STEP, TANH, W_OFF)


@njit(**JIT)
def unit_offsets(layout):
    """Where each layer's units start in `act`/`delta`; the last entry is the total."""
    n_layers = layout.shape[0]
    units = np.empty(n_layers + 2, dtype=np.int64)
    units[0] = 0
    for l in range(n_layers):
        units[l + 1] = units[l] + layout[l, FAN_IN]
    units[n_layers + 1] = units[n_layers] + layout[n_layers - 1, FAN_OUT]
    return units


@njit(**JIT)
def activate(v, code):
    """O_j = f(I_j), in place on the layer's units v."""
    one = v.dtype.type(1)
    zero = v.dtype.type(0)
    if code == LOGISTIC:
        for j in range(v.shape[0]):
            v[j] = one / (one + np.exp(-v[j]))
    elif code == TANH:
        for j in range(v.shape[0]):
            v[j] = np.tanh(v[j])
    elif code == RELU:
        for j in range(v.shape[0]):
            v[j] = max(v[j], zero)
    elif code == EXP:
        for j in range(v.shape[0]):
            v[j] = np.exp(v[j])
    elif code == SOFTMAX:
        top = v.max()
        total = zero
        for j in range(v.shape[0]):
            v[j] = np.exp(v[j] - top)
            total += v[j]
        inv = one / total
        for j in range(v.shape[0]):
            v[j] *= inv


@njit(**JIT)
def times_derivative(delta, out, code):
    """delta_j *= f'(I_j), written from the unit's output O_j as the textbook does."""
    one = out.dtype.type(1)
    zero = out.dtype.type(0)
    if code == LOGISTIC:
        for j in range(delta.shape[0]):
            delta[j] *= out[j] * (one - out[j])
    elif code == TANH:
        for j in range(delta.shape[0]):
            delta[j] *= one - out[j] * out[j]
    elif code == RELU:
        for j in range(delta.shape[0]):
            delta[j] = delta[j] if out[j] > zero else zero
    elif code == EXP:
        for j in range(delta.shape[0]):
            delta[j] *= out[j]


@njit(**JIT)
def forward(params, layout, units, act):
    """Forward pass: act[:n_in] holds the input; fill every layer's O_j = f(theta_j + sum_i O_i w_ij)."""
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        inp = act[units[l]:units[l] + fan_in]
        out = act[units[l + 1]:units[l + 1] + fan_out]
        out[:] = params[b_off:b_off + fan_out]
        for i in range(fan_in):
            o_i = inp[i]
            w_row = params[w_off + i * fan_out:w_off + (i + 1) * fan_out]
            for j in range(fan_out):
                out[j] += o_i * w_row[j]
        activate(out, layout[l, ACT])


@njit(**JIT)
def xlogy(x, y):
    return 0.0 if x == 0.0 else x * np.log(y)


@njit(**JIT)
def tuple_loss(out, target, loss_code, code):
    """The tuple's error E, in float64 (outputs are few; the sum over an epoch stays accurate)."""
    loss = 0.0
    if loss_code == SQUARED_ERROR:
        for k in range(out.shape[0]):
            d = np.float64(target[k]) - np.float64(out[k])
            loss += 0.5 * d * d
    elif loss_code == LOG_LOSS:
        eps = np.float64(np.finfo(out.dtype).eps)
        for k in range(out.shape[0]):
            o = min(max(np.float64(out[k]), eps), 1.0 - eps)
            y = np.float64(target[k])
            loss -= xlogy(y, o)
            if code != SOFTMAX:
                loss -= xlogy(1.0 - y, 1.0 - o)
    elif loss_code == POISSON:
        for k in range(out.shape[0]):
            o = np.float64(out[k])
            y = np.float64(target[k])
            loss += xlogy(y, y / o) - y + o
    return loss


@njit(**JIT)
def output_error(out, delta, target, loss_code, code):
    """Output layer's delta = dE/dI.

    For the matched pairs (squared error + identity, log loss + logistic or softmax,
    Poisson + exp) this is O - T. Squared error through a logistic unit adds the factor
    O(1-O), so that -delta is the textbook's Err_j = O_j(1-O_j)(T_j-O_j); through softmax
    it takes the full Jacobian.
    """
    for k in range(out.shape[0]):
        delta[k] = out[k] - target[k]
    if loss_code == SQUARED_ERROR:
        if code == SOFTMAX:
            s = out.dtype.type(0)
            for k in range(out.shape[0]):
                s += delta[k] * out[k]
            for k in range(out.shape[0]):
                delta[k] = out[k] * (delta[k] - s)
        else:
            times_derivative(delta, out, code)


@njit(**JIT)
def is_correct(out, target, code):
    """1 if the tuple is classified right: argmax for softmax, every output's side of 0.5 for logistic."""
    if code == SOFTMAX:
        return 1 if np.argmax(out) == np.argmax(target) else 0
    if code == LOGISTIC:
        half = out.dtype.type(0.5)
        for k in range(out.shape[0]):
            if (out[k] >= half) != (target[k] >= half):
                return 0
        return 1
    return 0


@njit(**JIT)
def hidden_errors(params, layout, units, act, delta):
    """Propagate delta back: delta_i = f'(I_i) * sum_j w_ij delta_j, last hidden layer first."""
    for l in range(layout.shape[0] - 1, 0, -1):
        fan_in, fan_out, w_off = layout[l, FAN_IN], layout[l, FAN_OUT], layout[l, W_OFF]
        d_in = delta[units[l]:units[l] + fan_in]
        d_out = delta[units[l + 1]:units[l + 1] + fan_out]
        for i in range(fan_in):
            w_row = params[w_off + i * fan_out:w_off + (i + 1) * fan_out]
            s = act.dtype.type(0)
            for j in range(fan_out):
                s += w_row[j] * d_out[j]
            d_in[i] = s
        times_derivative(d_in, act[units[l]:units[l] + fan_in], layout[l - 1, ACT])


@njit(**JIT)
def accumulate(grad, layout, units, act, delta):
    """grad += dE/dw for this tuple: dE/dw_ij = O_i delta_j, dE/dtheta_j = delta_j."""
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        inp = act[units[l]:units[l] + fan_in]
        d_out = delta[units[l + 1]:units[l + 1] + fan_out]
        for i in range(fan_in):
            o_i = inp[i]
            g_row = grad[w_off + i * fan_out:w_off + (i + 1) * fan_out]
            for j in range(fan_out):
                g_row[j] += o_i * d_out[j]
        g_bias = grad[b_off:b_off + fan_out]
        for j in range(fan_out):
            g_bias[j] += d_out[j]


@njit(**JIT)
def begin_update(hyper, opt):
    """Count one more update; Adam's bias-corrected rate for it goes in hyper[LR_T]."""
    hyper[STEP] += 1.0
    if opt == ADAM:
        t = hyper[STEP]
        hyper[LR_T] = hyper[LR] * np.sqrt(1.0 - hyper[BETA_2] ** t) / (1.0 - hyper[BETA_1] ** t)


@njit(**JIT)
def update_span(params, state, start, vec, coef, decay, opt, hyper):
    """Move w = params[start:start+len(vec)] against g_k = coef * vec[k] + decay * w_k.

    SGD: w -= lr g; with momentum v = mu v - lr g, w += v (Nesterov: w += mu v - lr g).
    Adam: m = b1 m + (1-b1) g, s = b2 s + (1-b2) g^2, w -= lr_t m / (sqrt(s) + eps).
    """
    dt = params.dtype.type
    one = dt(1)
    n = vec.shape[0]
    w = params[start:start + n]
    if opt == ADAM:
        m = state[0, start:start + n]
        s = state[1, start:start + n]
        b1, b2 = dt(hyper[BETA_1]), dt(hyper[BETA_2])
        lr_t, eps = dt(hyper[LR_T]), dt(hyper[EPSILON])
        for k in range(n):
            g = coef * vec[k] + decay * w[k]
            m[k] = b1 * m[k] + (one - b1) * g
            s[k] = b2 * s[k] + (one - b2) * g * g
            w[k] -= lr_t * m[k] / (np.sqrt(s[k]) + eps)
        return
    lr, mu = dt(hyper[LR]), dt(hyper[MOMENTUM])
    if hyper[MOMENTUM] == 0.0:
        for k in range(n):
            w[k] -= lr * (coef * vec[k] + decay * w[k])
        return
    v = state[0, start:start + n]
    if hyper[NESTEROV] != 0.0:
        for k in range(n):
            g = coef * vec[k] + decay * w[k]
            v[k] = mu * v[k] - lr * g
            w[k] += mu * v[k] - lr * g
    else:
        for k in range(n):
            g = coef * vec[k] + decay * w[k]
            v[k] = mu * v[k] - lr * g
            w[k] += v[k]


@njit(**JIT)
def apply_case_update(params, state, layout, units, act, delta, opt, hyper):
    """Case updating: w_ij moves against O_i delta_j (+ alpha w_ij), theta_j against delta_j."""
    dt = params.dtype.type
    alpha = dt(hyper[ALPHA])
    begin_update(hyper, opt)
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        d_out = delta[units[l + 1]:units[l + 1] + fan_out]
        for i in range(fan_in):
            update_span(params, state, w_off + i * fan_out, d_out, act[units[l] + i], alpha,
                        opt, hyper)
        update_span(params, state, b_off, d_out, dt(1), dt(0), opt, hyper)


@njit(**JIT)
def apply_mean_update(params, grad, state, layout, n_tuples, opt, hyper):
    """Epoch/minibatch updating: move against the mean gradient grad / B (+ alpha w / B on weights)."""
    dt = params.dtype.type
    scale = dt(1.0 / n_tuples)
    decay = dt(hyper[ALPHA] / n_tuples)
    begin_update(hyper, opt)
    for l in range(layout.shape[0]):
        w_off, b_off, fan_out = layout[l, W_OFF], layout[l, B_OFF], layout[l, FAN_OUT]
        update_span(params, state, w_off, grad[w_off:b_off], scale, decay, opt, hyper)
        update_span(params, state, b_off, grad[b_off:b_off + fan_out], scale, dt(0), opt, hyper)


@njit(**JIT)
def forward_tuple(params, layout, units, act, x, target, loss_code):
    """Forward pass for input x: returns (E, 1 if classified right) against `target`."""
    n_layers = layout.shape[0]
    act[:x.shape[0]] = x
    forward(params, layout, units, act)
    out = act[units[n_layers]:units[n_layers + 1]]
    code = layout[n_layers - 1, ACT]
    return tuple_loss(out, target, loss_code, code), is_correct(out, target, code)


@njit(**JIT)
def backpropagate(params, layout, units, act, delta, x, target, loss_code):
    """Forward pass, output error, hidden errors for one tuple: returns (E, correct)."""
    loss, correct = forward_tuple(params, layout, units, act, x, target, loss_code)
    n_layers = layout.shape[0]
    out = slice(units[n_layers], units[n_layers + 1])
    output_error(act[out], delta[out], target, loss_code, layout[n_layers - 1, ACT])
    hidden_errors(params, layout, units, act, delta)
    return loss, correct
