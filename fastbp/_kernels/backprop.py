"""Every @njit function of fastbp, and the codes and flags they freeze in: ONE module.

Numba stamps a cached kernel with a hash of the file that defines it, not of the files its
callees or constants come from. With helpers or codes in a second file, editing that file
would leave stale machine code in the disk cache, used without a warning. So everything
that is compiled lives here (tests/test_kernels_module.py keeps it so).

Kernels take plain arrays and integer codes, never Python objects; the Python layer
(`fastbp.network`, `fastbp.train`) translates names into these codes once and validates
all input before calling in.

The steps of backpropagation for one tuple (Han & Kamber, ch. 9) come first, then the
whole-epoch kernels the Python layer calls, one per epoch.

All arrays are flat. `act` holds the outputs O of every unit, layer after layer, input
first (`units[l]` is where layer l starts, `units[-1]` its length); `delta` has the same
layout and holds dE/dI, the gradient of the tuple's error with respect to each unit's net
input I (the textbook's Err_j is -delta_j). Weights live in `params` as described by the
layout table below.

Inner loops index 1-D views with the bare loop counter (`out[j]`, never `act[a_out + j]`):
Numba must allow for a negative `a_out + j` and wrap it, and that check alone stops LLVM
from vectorising the loop (10x slower on a 64-wide row).
"""
import numpy as np
from numba import njit, prange

# Columns of the layout table: one row per weight layer, int64.
FAN_IN, FAN_OUT, W_OFF, B_OFF, ACT = 0, 1, 2, 3, 4
LAYOUT_COLUMNS = 5

# Activation codes (hidden layers: identity, logistic, tanh, relu; output: identity, logistic, softmax, exp).
IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP = 0, 1, 2, 3, 4, 5
ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU, "softmax": SOFTMAX, "exp": EXP}

# Loss codes.
SQUARED_ERROR, LOG_LOSS, POISSON = 0, 1, 2
LOSSES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS, "poisson": POISSON}

# Optimizer codes.
SGD, ADAM = 0, 1
OPTIMIZERS = {"sgd": SGD, "adam": ADAM}

# Slots of the float64 `hyper` array that carries an optimizer's scalars into a kernel.
# STEP (Adam's t) and LR_T (Adam's bias-corrected rate) are written by the kernels.
LR, MOMENTUM, NESTEROV, ALPHA, BETA_1, BETA_2, EPSILON, STEP, LR_T = range(9)
N_HYPER = 9

# Rows of the optimizer state array (2, n_params): SGD velocity / Adam first moment, Adam second moment.
N_STATE = 2

# fastmath without nnan/ninf, so NaN and inf checks keep working; reassoc lets reductions vectorise.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Options of every kernel. error_model="numpy" drops Python's ZeroDivisionError checks from hot loops;
# nogil lets several fits run at once in Python threads.
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)


# -- one tuple ------------------------------------------------------------------------------
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
def apply_case_update(params, state, layout, units, act, delta, decay, opt, hyper):
    """Case updating: w_ij moves against O_i delta_j + decay w_ij, theta_j against delta_j."""
    dt = params.dtype.type
    begin_update(hyper, opt)
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        w_off, b_off = layout[l, W_OFF], layout[l, B_OFF]
        d_out = delta[units[l + 1]:units[l + 1] + fan_out]
        for i in range(fan_in):
            update_span(params, state, w_off + i * fan_out, d_out, act[units[l] + i], decay,
                        opt, hyper)
        update_span(params, state, b_off, d_out, dt(1), dt(0), opt, hyper)


@njit(**JIT)
def apply_mean_update(params, grad, state, layout, weight_sum, opt, hyper):
    """Epoch/minibatch updating: move against grad / S (+ alpha w / S on weights), where grad
    is the (weighted) sum of the tuples' gradients and S the sum of their weights."""
    dt = params.dtype.type
    scale = dt(1.0 / weight_sum)
    decay = dt(hyper[ALPHA] / weight_sum)
    begin_update(hyper, opt)
    for l in range(layout.shape[0]):
        w_off, b_off, fan_out = layout[l, W_OFF], layout[l, B_OFF], layout[l, FAN_OUT]
        update_span(params, state, w_off, grad[w_off:b_off], scale, decay, opt, hyper)
        update_span(params, state, b_off, grad[b_off:b_off + fan_out], scale, dt(0), opt, hyper)


@njit(**JIT)
def squared_weights(params, layout):
    """sum of w^2 over every weight (not the biases): the L2 term is alpha/2 times it."""
    total = 0.0
    for l in range(layout.shape[0]):
        w = params[layout[l, W_OFF]:layout[l, B_OFF]]
        for k in range(w.shape[0]):
            total += np.float64(w[k]) * np.float64(w[k])
    return total


@njit(**JIT)
def weight_of(weights, t):
    """Tuple t's sample weight; an empty `weights` array means every tuple weighs 1."""
    return 1.0 if weights.shape[0] == 0 else np.float64(weights[t])


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
def backpropagate(params, layout, units, act, delta, x, target, weight, loss_code):
    """Forward pass, output error (times the tuple's weight), hidden errors: returns (E, correct)."""
    loss, correct = forward_tuple(params, layout, units, act, x, target, loss_code)
    n_layers = layout.shape[0]
    out = slice(units[n_layers], units[n_layers + 1])
    output_error(act[out], delta[out], target, loss_code, layout[n_layers - 1, ACT])
    if weight != 1.0:
        delta[out] *= params.dtype.type(weight)
    hidden_errors(params, layout, units, act, delta)
    return loss, correct


# -- whole epochs --------------------------------------------------------------------------
# Every training kernel returns (loss_sum, penalty_sum, n_correct) for the tuples it passed:
# summed over its updates u, each over B_u tuples of weight sum S_u at weights W_u,
#     loss_sum    = sum_u B_u/S_u * sum_(t in u) w_t E_t
#     penalty_sum = sum_u B_u/S_u * alpha/2 * ||W_u||^2      (0 when alpha = 0)
# so that (loss_sum + penalty_sum) / n is scikit-learn's loss_curve_ entry, and loss_sum / n
# the plain mean loss when no weights are given.

# Gradient rows are summed in blocks of this many parameters, one block per task.
_REDUCE_BLOCK = 4096


@njit(**JIT)
def case_epoch(params, layout, X, Y, weights, order, loss_code, opt, hyper, state):
    """Case updating: for each tuple X[order[p]] in turn, forward, errors back, update params.

    A tuple of weight w moves params by the gradient of w*E + alpha/2 ||W||^2 divided by w
    (scikit-learn with batch_size=1): the data term is unchanged, the L2 term is divided by
    w, and a tuple of weight 0 changes nothing.
    """
    units = unit_offsets(layout)
    act = np.empty(units[-1], dtype=params.dtype)
    delta = np.empty(units[-1], dtype=params.dtype)
    alpha = hyper[ALPHA]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for p in range(order.shape[0]):
        t = order[p]
        weight = weight_of(weights, t)
        loss, correct = backpropagate(params, layout, units, act, delta, X[t], Y[t], 1.0, loss_code)
        loss_sum += loss
        n_correct += correct
        if weight == 0.0:
            continue
        if alpha != 0.0:
            penalty_sum += 0.5 * alpha * squared_weights(params, layout) / weight
        apply_case_update(params, state, layout, units, act, delta,
                          params.dtype.type(alpha / weight), opt, hyper)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT)
def add_chunks(losses, weight_sums, corrects):
    """(loss_sum, weight_sum, n_correct) over the chunks, added in chunk order."""
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0
    for c in range(losses.shape[0]):
        loss_sum += losses[c]
        weight_sum += weight_sums[c]
        n_correct += corrects[c]
    return loss_sum, weight_sum, n_correct


@njit(inline="always", **JIT)
def gradient_pass(params, layout, X, Y, weights, order, start, stop, loss_code, rows, grad):
    """grad = sum of w_t dE/dw over the tuples X[order[start:stop]] (not yet divided by S).

    The tuples are cut into rows.shape[0] fixed chunks, each summed into its own row of
    `rows` in parallel; the rows are then added in a fixed order, so the result depends on
    the data and the chunk count only, never on the number of threads. Returns
    (sum of w_t E_t, S = sum of w_t, n_correct).

    Inlined into each parallel kernel (Numba IR inlining, so its prange loops become the
    caller's own): a cached kernel must never call another cached parallel kernel, which
    crashes when both are loaded from the disk cache (numba issue 8578).
    """
    n_chunks = rows.shape[0]
    n_params = rows.shape[1]
    n = stop - start
    units = unit_offsets(layout)
    losses = np.zeros(n_chunks)
    weight_sums = np.zeros(n_chunks)
    corrects = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        act = np.empty(units[-1], dtype=params.dtype)
        delta = np.empty(units[-1], dtype=params.dtype)
        row = rows[c]
        row[:] = 0
        loss_c, weight_c, correct_c = 0.0, 0.0, 0
        for p in range(start + n * c // n_chunks, start + n * (c + 1) // n_chunks):
            t = order[p]
            weight = weight_of(weights, t)
            loss, correct = backpropagate(params, layout, units, act, delta, X[t], Y[t], weight,
                                          loss_code)
            loss_c += weight * loss
            weight_c += weight
            correct_c += correct
            accumulate(row, layout, units, act, delta)
        losses[c] = loss_c
        weight_sums[c] = weight_c
        corrects[c] = correct_c
    n_blocks = (n_params + _REDUCE_BLOCK - 1) // _REDUCE_BLOCK
    for b in prange(n_blocks):
        lo = b * _REDUCE_BLOCK
        hi = min(lo + _REDUCE_BLOCK, n_params)
        grad[lo:hi] = rows[0, lo:hi]
        for c in range(1, n_chunks):
            grad[lo:hi] += rows[c, lo:hi]
    return add_chunks(losses, weight_sums, corrects)


@njit(parallel=True, **JIT)
def batch_gradient(params, layout, X, Y, weights, order, start, stop, loss_code, rows, grad):
    """The summed gradient over X[order[start:stop]] into grad (see gradient_pass)."""
    return gradient_pass(params, layout, X, Y, weights, order, start, stop, loss_code, rows, grad)


@njit(parallel=True, **JIT)
def epoch_step(params, layout, X, Y, weights, order, weight_sum, loss_code, opt, hyper, state,
               rows, grad):
    """Epoch updating, one epoch: the update with the gradient the previous pass left in grad
    (its weight sum is weight_sum), then the pass at the new weights, which gives this
    epoch's loss and the next gradient. Returns that pass's (sum w E, S, n_correct)."""
    apply_mean_update(params, grad, state, layout, weight_sum, opt, hyper)
    return gradient_pass(params, layout, X, Y, weights, order, 0, order.shape[0], loss_code,
                         rows, grad)


@njit(parallel=True, **JIT)
def minibatch_epoch(params, layout, X, Y, weights, order, batch_size, loss_code, opt, hyper,
                    state, rows, grad):
    """Minibatch updating: for each run of batch_size tuples of `order`, its mean gradient, one update."""
    n = order.shape[0]
    alpha = hyper[ALPHA]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        loss_b, weight_b, correct_b = gradient_pass(params, layout, X, Y, weights, order, start,
                                                    stop, loss_code, rows, grad)
        n_correct += correct_b
        if weight_b == 0.0:  # a batch of zero weight has no gradient to follow
            continue
        loss_sum += (stop - start) / weight_b * loss_b
        if alpha != 0.0:
            penalty_sum += (stop - start) / weight_b * 0.5 * alpha * squared_weights(params, layout)
        apply_mean_update(params, grad, state, layout, weight_b, opt, hyper)
    return loss_sum, penalty_sum, n_correct


@njit(parallel=True, **JIT)
def evaluate(params, layout, X, Y, weights, loss_code, n_chunks):
    """Forward pass only over all of X: (sum w E, sum w, n_correct) at the current weights."""
    n = X.shape[0]
    units = unit_offsets(layout)
    losses = np.zeros(n_chunks)
    weight_sums = np.zeros(n_chunks)
    corrects = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        act = np.empty(units[-1], dtype=params.dtype)
        loss_c, weight_c, correct_c = 0.0, 0.0, 0
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            weight = weight_of(weights, t)
            loss, correct = forward_tuple(params, layout, units, act, X[t], Y[t], loss_code)
            loss_c += weight * loss
            weight_c += weight
            correct_c += correct
        losses[c] = loss_c
        weight_sums[c] = weight_c
        corrects[c] = correct_c
    return add_chunks(losses, weight_sums, corrects)


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
