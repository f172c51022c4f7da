"""The steps of backpropagation for one training tuple (Han & Kamber, ch. 9).

All arrays are flat. `act` holds the outputs O of every unit, layer after layer, input
first (`units[l]` is where layer l starts, `units[-1]` its length); `delta` has the same
layout and holds dE/dI, the gradient of the tuple's error with respect to each unit's net
input I (the textbook's Err_j is -delta_j). Weights live in `params` as described by the
layout table (see `config`).
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
def activate(v, start, n, code):
    """O_j = f(I_j), in place on v[start:start+n]."""
    one = v.dtype.type(1)
    zero = v.dtype.type(0)
    stop = start + n
    if code == LOGISTIC:
        for j in range(start, stop):
            v[j] = one / (one + np.exp(-v[j]))
    elif code == TANH:
        for j in range(start, stop):
            v[j] = np.tanh(v[j])
    elif code == RELU:
        for j in range(start, stop):
            v[j] = max(v[j], zero)
    elif code == EXP:
        for j in range(start, stop):
            v[j] = np.exp(v[j])
    elif code == SOFTMAX:
        top = v[start]
        for j in range(start + 1, stop):
            top = max(top, v[j])
        total = zero
        for j in range(start, stop):
            v[j] = np.exp(v[j] - top)
            total += v[j]
        inv = one / total
        for j in range(start, stop):
            v[j] *= inv


@njit(**JIT)
def times_derivative(delta, act, start, n, code):
    """delta_j *= f'(I_j), written from the unit's output O_j as the textbook does."""
    one = act.dtype.type(1)
    zero = act.dtype.type(0)
    stop = start + n
    if code == LOGISTIC:
        for j in range(start, stop):
            delta[j] *= act[j] * (one - act[j])
    elif code == TANH:
        for j in range(start, stop):
            delta[j] *= one - act[j] * act[j]
    elif code == RELU:
        for j in range(start, stop):
            delta[j] = delta[j] if act[j] > zero else zero
    elif code == EXP:
        for j in range(start, stop):
            delta[j] *= act[j]


@njit(**JIT)
def forward(params, layout, units, act):
    """Forward pass: act[:n_in] holds the input; fill every layer's O_j = f(theta_j + sum_i O_i w_ij)."""
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        a_in, a_out = units[l], units[l + 1]
        for j in range(fan_out):
            act[a_out + j] = params[b_off + j]
        for i in range(fan_in):
            o_i = act[a_in + i]
            row = w_off + i * fan_out
            for j in range(fan_out):
                act[a_out + j] += o_i * params[row + j]
        activate(act, a_out, fan_out, layout[l, ACT])


@njit(**JIT)
def xlogy(x, y):
    return 0.0 if x == 0.0 else x * np.log(y)


@njit(**JIT)
def tuple_loss(act, start, Y, t, loss_code, code):
    """The tuple's error E, in float64 (outputs are few; the sum over an epoch stays accurate)."""
    n_out = Y.shape[1]
    loss = 0.0
    if loss_code == SQUARED_ERROR:
        for k in range(n_out):
            d = np.float64(Y[t, k]) - np.float64(act[start + k])
            loss += 0.5 * d * d
    elif loss_code == LOG_LOSS:
        eps = np.float64(np.finfo(act.dtype).eps)
        for k in range(n_out):
            o = min(max(np.float64(act[start + k]), eps), 1.0 - eps)
            y = np.float64(Y[t, k])
            loss -= xlogy(y, o)
            if code != SOFTMAX:
                loss -= xlogy(1.0 - y, 1.0 - o)
    elif loss_code == POISSON:
        for k in range(n_out):
            o = np.float64(act[start + k])
            y = np.float64(Y[t, k])
            loss += xlogy(y, y / o) - y + o
    return loss


@njit(**JIT)
def output_error(act, delta, start, Y, t, loss_code, code):
    """Output layer's delta = dE/dI.

    For the matched pairs (squared error + identity, log loss + logistic or softmax,
    Poisson + exp) this is O - T. Squared error through a logistic unit adds the factor
    O(1-O), so that -delta is the textbook's Err_j = O_j(1-O_j)(T_j-O_j); through softmax
    it takes the full Jacobian.
    """
    n_out = Y.shape[1]
    for k in range(n_out):
        delta[start + k] = act[start + k] - Y[t, k]
    if loss_code == SQUARED_ERROR:
        if code == SOFTMAX:
            s = act.dtype.type(0)
            for k in range(n_out):
                s += delta[start + k] * act[start + k]
            for k in range(n_out):
                delta[start + k] = act[start + k] * (delta[start + k] - s)
        else:
            times_derivative(delta, act, start, n_out, code)


@njit(**JIT)
def is_correct(act, start, Y, t, code):
    """1 if the tuple is classified right: argmax for softmax, every output's side of 0.5 for logistic."""
    n_out = Y.shape[1]
    if code == SOFTMAX:
        best_o, best_t = 0, 0
        for k in range(1, n_out):
            if act[start + k] > act[start + best_o]:
                best_o = k
            if Y[t, k] > Y[t, best_t]:
                best_t = k
        return 1 if best_o == best_t else 0
    if code == LOGISTIC:
        half = act.dtype.type(0.5)
        for k in range(n_out):
            if (act[start + k] >= half) != (Y[t, k] >= half):
                return 0
        return 1
    return 0


@njit(**JIT)
def hidden_errors(params, layout, units, act, delta):
    """Propagate delta back: delta_i = f'(I_i) * sum_j w_ij delta_j, last hidden layer first."""
    for l in range(layout.shape[0] - 1, 0, -1):
        fan_in, fan_out, w_off = layout[l, FAN_IN], layout[l, FAN_OUT], layout[l, W_OFF]
        a_in, a_out = units[l], units[l + 1]
        for i in range(fan_in):
            row = w_off + i * fan_out
            s = act.dtype.type(0)
            for j in range(fan_out):
                s += params[row + j] * delta[a_out + j]
            delta[a_in + i] = s
        times_derivative(delta, act, a_in, fan_in, layout[l - 1, ACT])


@njit(**JIT)
def accumulate(grad, layout, units, act, delta):
    """grad += dE/dw for this tuple: dE/dw_ij = O_i delta_j, dE/dtheta_j = delta_j."""
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        a_in, a_out = units[l], units[l + 1]
        for i in range(fan_in):
            o_i = act[a_in + i]
            row = w_off + i * fan_out
            for j in range(fan_out):
                grad[row + j] += o_i * delta[a_out + j]
        for j in range(fan_out):
            grad[b_off + j] += delta[a_out + j]


@njit(**JIT)
def begin_update(hyper, opt):
    """Count one more update; Adam's bias-corrected rate for it goes in hyper[LR_T]."""
    hyper[STEP] += 1.0
    if opt == ADAM:
        t = hyper[STEP]
        hyper[LR_T] = hyper[LR] * np.sqrt(1.0 - hyper[BETA_2] ** t) / (1.0 - hyper[BETA_1] ** t)


@njit(**JIT)
def update_span(params, state, start, n, vec, v_off, coef, decay, opt, hyper):
    """Move params[start:start+n] against g_k = coef * vec[v_off+k] + decay * params[start+k].

    SGD: w -= lr g; with momentum v = mu v - lr g, w += v (Nesterov: w += mu v - lr g).
    Adam: m = b1 m + (1-b1) g, s = b2 s + (1-b2) g^2, w -= lr_t m / (sqrt(s) + eps).
    """
    dt = params.dtype.type
    one = dt(1)
    vel = state[0]
    if opt == ADAM:
        sq = state[1]
        b1, b2 = dt(hyper[BETA_1]), dt(hyper[BETA_2])
        lr_t, eps = dt(hyper[LR_T]), dt(hyper[EPSILON])
        for k in range(n):
            p = start + k
            g = coef * vec[v_off + k] + decay * params[p]
            vel[p] = b1 * vel[p] + (one - b1) * g
            sq[p] = b2 * sq[p] + (one - b2) * g * g
            params[p] -= lr_t * vel[p] / (np.sqrt(sq[p]) + eps)
        return
    lr, mu = dt(hyper[LR]), dt(hyper[MOMENTUM])
    if hyper[MOMENTUM] == 0.0:
        for k in range(n):
            p = start + k
            params[p] -= lr * (coef * vec[v_off + k] + decay * params[p])
    elif hyper[NESTEROV] != 0.0:
        for k in range(n):
            p = start + k
            g = coef * vec[v_off + k] + decay * params[p]
            vel[p] = mu * vel[p] - lr * g
            params[p] += mu * vel[p] - lr * g
    else:
        for k in range(n):
            p = start + k
            g = coef * vec[v_off + k] + decay * params[p]
            vel[p] = mu * vel[p] - lr * g
            params[p] += vel[p]


@njit(**JIT)
def apply_case_update(params, state, layout, units, act, delta, opt, hyper):
    """Case updating: w_ij moves against O_i delta_j (+ alpha w_ij), theta_j against delta_j."""
    dt = params.dtype.type
    alpha = dt(hyper[ALPHA])
    begin_update(hyper, opt)
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        a_in, a_out = units[l], units[l + 1]
        for i in range(fan_in):
            update_span(params, state, w_off + i * fan_out, fan_out, delta, a_out,
                        act[a_in + i], alpha, opt, hyper)
        update_span(params, state, b_off, fan_out, delta, a_out, dt(1), dt(0), opt, hyper)


@njit(**JIT)
def apply_mean_update(params, grad, state, layout, n_tuples, opt, hyper):
    """Epoch/minibatch updating: move against the mean gradient grad / B (+ alpha w / B on weights)."""
    dt = params.dtype.type
    scale = dt(1.0 / n_tuples)
    decay = dt(hyper[ALPHA] / n_tuples)
    begin_update(hyper, opt)
    for l in range(layout.shape[0]):
        w_off, b_off, fan_out = layout[l, W_OFF], layout[l, B_OFF], layout[l, FAN_OUT]
        update_span(params, state, w_off, b_off - w_off, grad, w_off, scale, decay, opt, hyper)
        update_span(params, state, b_off, fan_out, grad, b_off, scale, dt(0), opt, hyper)
