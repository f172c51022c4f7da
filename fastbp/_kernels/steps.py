"""The steps of backpropagation for one tuple (Han & Kamber, ch. 9): the layout's offset
table, the counter-based generator behind shuffles and dropout, the forward pass, the
output error and loss, the errors propagated back with the update of each layer (case
updating runs them tuple by tuple) or their gradient (the tuple-by-tuple passes).
"""
import numpy as np
from numba import njit

from ._jit import activate_layer, correct_of, derivative_hidden, loss_of, update_outer
from ._setup import INTERNAL, JIT, NO_REFCOUNT, NOALIAS
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .fastmath import empty_array, epsilon, prefetch, times_derivative
from .optimizers import begin_update


# -- one tuple ------------------------------------------------------------------------------
@njit(inline="always", **JIT)
def padded(n):
    """n units rounded up to UNIT_ALIGN (codes.unit_offset), as uint64 (see "Indexing" in
    backprop.py: with UNIT_ALIGN, an int literal, the sum would be signed)."""
    align = np.uint64(UNIT_ALIGN)
    return (np.uint64(n) + align - ONE) // align * align


@njit(**JIT, **INTERNAL)
def geometry(layout):
    """The uint64 offset table of a layout (see G_IN ... G_A_OUT; each layer's units start
    at a multiple of UNIT_ALIGN, codes.unit_offset)."""
    n_layers = layout.shape[0]
    geo = empty_array((n_layers, 6), np.uint64)
    units = ZERO
    for l in range(n_layers):
        geo[l, G_IN] = layout[l, FAN_IN]
        geo[l, G_OUT] = layout[l, FAN_OUT]
        geo[l, G_W] = layout[l, W_OFF]
        geo[l, G_B] = layout[l, B_OFF]
        geo[l, G_A_IN] = units
        units += padded(layout[l, FAN_IN])
        geo[l, G_A_OUT] = units
    return geo


@njit(**JIT, **INTERNAL)
def n_units(geo):
    """Length of act/delta: every unit of every layer, input included (codes.units_length)."""
    last = geo.shape[0] - 1
    return geo[last, G_A_OUT] + padded(geo[last, G_OUT])


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@njit(inline="always", **JIT)
def splitmix(x):
    """splitmix64's output function of x + golden ratio: a bijective mix of 64 bits, so that
    consecutive inputs give independent-looking outputs (the counter-based generator behind
    dropout masks and tuple orders: any draw follows from its key, on any thread)."""
    x += _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@njit(**JIT, **INTERNAL)
def hashed_order(order, seed, epoch):
    """order = epoch's permutation of 0..n-1 under the run's seed: a Fisher-Yates shuffle of
    0..n-1 whose i-th draw is splitmix64 of (key, i), key = splitmix64(seed ^
    splitmix64(epoch)). A counter-based generator: an epoch's order follows from (seed, epoch)
    alone -- no state to carry, save or restore, the same on any thread count."""
    n = order.shape[0]
    for i in range(n):
        order[i] = i
    key = splitmix(np.uint64(seed) ^ splitmix(np.uint64(epoch)))
    for i in range(n - 1, 0, -1):
        r = splitmix(key + np.uint64(i))
        bound = np.uint64(i + 1)
        # j uniform in 0..i: the high 32 bits scaled to the bound (Lemire's multiply-shift;
        # its bias, under bound / 2**32, is far below anything a shuffle can show)
        if bound <= np.uint64(0xFFFFFFFF):
            j = np.int64(((r >> np.uint64(32)) * bound) >> np.uint64(32))
        else:
            j = np.int64(r % bound)
        order[i], order[j] = order[j], order[i]


@njit(inline="always", **JIT)
def keep_scale(layout, l, t, j):
    """Inverted dropout's factor for unit j of layer l on tuple t: 0 with the layer's rate,
    else 1 / (1 - rate). A splitmix64 hash of (seed, t, l, j), so any pass can recompute it."""
    x = splitmix(np.uint64(layout[l, DROP_SEED]) ^ (np.uint64(t) * _GOLDEN)
                 ^ (np.uint64(l) << np.uint64(40)) ^ np.uint64(j))
    rate = layout[l, DROP]
    if np.int64(x >> np.uint64(32)) < rate:
        return 0.0
    return DROP_ONE / (DROP_ONE - rate)


@njit(inline="always", **JIT)
def dropping(layout, l):
    """True when layer l's outputs are dropped out in this pass."""
    return layout.shape[1] > DROP and layout[l, DROP] > 0


@njit(**JIT, **INTERNAL)  # a call, not inlined: only dropout runs pay for its code
def drop_out(layout, l, t, act, start, n):
    """O' = O * keep_scale for the n outputs of layer l at act[start:] (tuple t)."""
    for j in range(n):
        act[start + j] *= act.dtype.type(keep_scale(layout, l, t, j))


@njit(**JIT, **INTERNAL)  # a call, not inlined: only dropout runs pay for its code
def undo_drop_out(layout, l, t, act, delta, start, n):
    """Before f'(I) is applied to layer l's errors: a dropped unit passes no error; a kept one
    gets O back (act held O') and its error times the factor dO'/dO."""
    for j in range(n):
        k = keep_scale(layout, l, t, j)
        if k == 0.0:
            delta[start + j] = 0
        else:
            act[start + j] /= act.dtype.type(k)
            delta[start + j] *= act.dtype.type(k)


@njit(inline="always", **JIT)
def column_sum(params, act, a_in, fan_in, w_off, stride, s):
    """s + sum_i O_i w_i over a column of W (stride: its row length), in four running sums:
    a strided column does not vectorise, and one sum would be a chain of dependent
    multiply-adds as long as fan_in (8-32-2 case updating spent a fifth of its time waiting
    on its two output units' chains)."""
    s1 = s2 = s3 = params.dtype.type(0)  # not s - s: an infinite s would make NaN
    i = np.uint64(0)
    while i + FOUR <= fan_in:
        k = w_off + i * stride
        s += act[a_in + i] * params[k]
        s1 += act[a_in + i + ONE] * params[k + stride]
        s2 += act[a_in + i + TWO] * params[k + TWO * stride]
        s3 += act[a_in + i + THREE] * params[k + THREE * stride]
        i += FOUR
    while i < fan_in:
        s += act[a_in + i] * params[w_off + i * stride]
        i += ONE
    return (s + s1) + (s2 + s3)


@njit(**JIT, **NO_REFCOUNT, **NOALIAS, **INTERNAL)
def forward(params, layout, geo, act, codes, primed, turned, t_off, stride):
    """forward_inline as a call (prediction, evaluation, the gradient passes: primed and
    turned ZERO; passes.case_pass). primed and turned are uint64s (0 or 1), not bools: a
    literal False would be a type of its own, and each caller's compile a signature of its
    own."""
    forward_inline(params, layout, geo, act, codes, primed != ZERO, turned, t_off, stride)


@njit(inline="always", **JIT)
def forward_inline(params, layout, geo, act, codes, primed, turned, t_off, stride):
    """Forward pass: act holds the input; fill every layer's O_j = f(theta_j + sum_i O_i w_ij).
    primed: the first layer's sums are in act already; turned: the output layer's weights
    are in act[t_off:], turned (see passes.turned_output).

    Layers of at most EIGHT units: a dot product per unit over its column of W, in four
    running sums (column_sum); through the rows instead, each sweep over a short row was a
    round trip through memory plus a scalar remainder (16-32-5 case updating: 305 -> 293 ns
    a tuple, 9-32-6 331 -> 307 here)."""
    last = geo.shape[0] - 1
    for l in range(geo.shape[0]):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if primed and l == 0:
            pass
        elif turned and l == last:
            turned_sums(params, act, fan_in, fan_out, b_off, a_in, a_out, t_off, stride)
        elif fan_out == 1:  # one unit: a dot product over the contiguous column of W
            unit_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out)
        elif fan_out <= EIGHT:  # a few units: a dot product each, over its column of W
            narrow_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out)
        else:
            for j in range(fan_out):
                act[a_out + j] = params[b_off + j]
            # Four input rows per sweep over the outputs: the running sums make a round trip
            # through memory once per four rows, not once per row (that latency bound it).
            i = np.uint64(0)
            while i + FOUR <= fan_in:
                o0, o1 = act[a_in + i], act[a_in + i + ONE]
                o2, o3 = act[a_in + i + TWO], act[a_in + i + THREE]
                r0 = w_off + i * fan_out
                r1, r2, r3 = r0 + fan_out, r0 + TWO * fan_out, r0 + THREE * fan_out
                for j in range(fan_out):
                    act[a_out + j] += (o0 * params[r0 + j] + o1 * params[r1 + j]) + \
                        (o2 * params[r2 + j] + o3 * params[r3 + j])
                i += FOUR
            while i < fan_in:  # the last fan_in % 4 rows
                o_i = act[a_in + i]
                row = w_off + i * fan_out
                for j in range(fan_out):
                    act[a_out + j] += o_i * params[row + j]
                i += ONE
        activate_layer(act, a_out, fan_out, codes, layout, l)


# One layer's net inputs I_j = theta_j + sum_i O_i w_ij into act[a_out:], for offsets the caller
# knows (the shaped passes: constants), one function per kind of layer (a generated pass names
# its layers' own, shaped.SUMS, so only their code is inlined). forward's loops, but for layers
# of more than NARROW units one input row per sweep (forward takes four: the same sums, up to
# rounding); sharing forward's four-row loop through these made the generic pass slower. The
# shaped passes keep NARROW as the border between the two kinds (forward takes EIGHT): for
# layers of 5 to 8 units the two sum in another order, a difference in the last bits only.

@njit(inline="always", **JIT)
def unit_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """One unit: a dot product over its contiguous column (vectorised: reassoc)."""
    s = params[b_off]
    for i in range(fan_in):
        s += act[a_in + i] * params[w_off + i]
    act[a_out] = s


@njit(inline="always", **JIT)
def narrow_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """A few units (NARROW in the shaped passes, EIGHT in forward): a dot product each over
    its column of W."""
    for j in range(fan_out):
        act[a_out + j] = column_sum(params, act, a_in, fan_in, w_off + j, fan_out,
                                    params[b_off + j])


@njit(inline="always", **JIT)
def row_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """Wider layers: one input row of W at a time, added to every unit's sum."""
    for j in range(fan_out):
        act[a_out + j] = params[b_off + j]
    for i in range(fan_in):
        o_i = act[a_in + i]
        row = w_off + i * fan_out
        for j in range(fan_out):
            act[a_out + j] += o_i * params[row + j]


@njit(**JIT, **INTERNAL)
def forward_dropout(params, layout, geo, act, t, codes):
    """forward with dropout on the hidden layers (t: the tuple's row, which its hash needs).
    A copy of forward plus two lines: a test in forward itself cost case updating on `tiny`
    10%, and sharing the loop body through an inlined helper 70%."""
    last = geo.shape[0] - 1
    for l in range(geo.shape[0]):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if fan_out == 1:  # one unit: a dot product over the contiguous column of W
            unit_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out)
        elif fan_out <= EIGHT:  # a few units: a dot product each, over its column of W
            narrow_sums(params, act, fan_in, fan_out, w_off, b_off, a_in, a_out)
        else:
            for j in range(fan_out):
                act[a_out + j] = params[b_off + j]
            # Four input rows per sweep over the outputs: the running sums make a round trip
            # through memory once per four rows, not once per row (that latency bound it).
            i = np.uint64(0)
            while i + FOUR <= fan_in:
                o0, o1 = act[a_in + i], act[a_in + i + ONE]
                o2, o3 = act[a_in + i + TWO], act[a_in + i + THREE]
                r0 = w_off + i * fan_out
                r1, r2, r3 = r0 + fan_out, r0 + TWO * fan_out, r0 + THREE * fan_out
                for j in range(fan_out):
                    act[a_out + j] += (o0 * params[r0 + j] + o1 * params[r1 + j]) + \
                        (o2 * params[r2 + j] + o3 * params[r3 + j])
                i += FOUR
            while i < fan_in:  # the last fan_in % 4 rows
                o_i = act[a_in + i]
                row = w_off + i * fan_out
                for j in range(fan_out):
                    act[a_out + j] += o_i * params[row + j]
                i += ONE
        activate_layer(act, a_out, fan_out, codes, layout, l)
        if l < last and dropping(layout, l):
            drop_out(layout, l, t, act, a_out, fan_out)


@njit(inline="always", **JIT)
def xlogy(x, y):
    return 0.0 if x == 0.0 else x * np.log(y)


@njit(inline="always", **JIT)
def tuple_loss(act, out, n_out, Y, t, loss_code, code):
    """The tuple's error E against Y[t], in float64 (outputs are few; an epoch's sum stays accurate)."""
    loss = 0.0
    if loss_code == SQUARED_ERROR:
        for k in range(n_out):
            d = np.float64(Y[t, k]) - np.float64(act[out + k])
            loss += 0.5 * d * d
    elif loss_code == LOG_LOSS:
        eps = epsilon(act)
        for k in range(n_out):
            o = min(max(np.float64(act[out + k]), eps), 1.0 - eps)
            y = np.float64(Y[t, k])
            loss -= xlogy(y, o)
            if code != SOFTMAX:
                loss -= xlogy(1.0 - y, 1.0 - o)
    elif loss_code == POISSON:
        for k in range(n_out):
            o = np.float64(act[out + k])
            y = np.float64(Y[t, k])
            loss += xlogy(y, y / o) - y + o
    return loss


@njit(inline="always", **JIT)
def output_difference(act, delta, out, n_out, Y, t):
    """delta = O - T on the output layer: its error for the matched pairs (output_error)."""
    for k in range(n_out):
        delta[out + k] = act[out + k] - Y[t, k]


@njit(inline="always", **JIT)
def output_error(act, delta, out, n_out, Y, t, loss_code, code):
    """Output layer's delta = dE/dI.

    For the matched pairs (squared error + identity, log loss + logistic or softmax,
    Poisson + exp) this is O - T. Squared error through a logistic unit adds the factor
    O(1-O), so that -delta is the textbook's Err_j = O_j(1-O_j)(T_j-O_j); through softmax
    it takes the full Jacobian.
    """
    output_difference(act, delta, out, n_out, Y, t)
    if loss_code == SQUARED_ERROR:
        if code == SOFTMAX:
            s = act.dtype.type(0)
            for k in range(n_out):
                s += delta[out + k] * act[out + k]
            for k in range(n_out):
                delta[out + k] = act[out + k] * (delta[out + k] - s)
        else:
            times_derivative(delta, act, out, n_out, code)


@njit(inline="always", **JIT)
def is_correct(act, out, n_out, Y, t, code):
    """1 if the tuple is classified right: argmax for softmax, every output's side of 0.5 for logistic."""
    if code == SOFTMAX:
        best_o = best_t = np.uint64(0)  # first index of the largest output / target
        for k in range(n_out):
            if act[out + k] > act[out + best_o]:
                best_o = k
            if Y[t, k] > Y[t, best_t]:
                best_t = k
        return 1 if best_o == best_t else 0
    if code == LOGISTIC:
        half = act.dtype.type(0.5)
        for k in range(n_out):
            if (act[out + k] >= half) != (Y[t, k] >= half):
                return 0
        return 1
    return 0


@njit(inline="always", **JIT)
def sgd_outer(params, start, n_rows, n_cols, a, a_off, d, d_off, decay, lr, errors):
    """update_outer for plain SGD (no momentum), inlined into its caller: a call with
    update_outer's arguments cost a tenth of a case update on XOR. W -= lr (a_i d_j + decay
    W), as W keep - (lr a_i) d_j with keep = 1 - lr decay (two operations a weight, not
    three); the biases (the row after W: input 1, no decay) -= lr d_j; with `errors`, as
    update_outer. Four rows per sweep over the columns, as forward's sums: each d_j is loaded
    once for four rows, and the loop's set-up is paid once for four."""
    dt = params.dtype.type
    keep = dt(1) - lr * decay
    i = np.uint64(0)
    while i + FOUR <= n_rows:
        a0, a1 = lr * a[a_off + i], lr * a[a_off + i + ONE]
        a2, a3 = lr * a[a_off + i + TWO], lr * a[a_off + i + THREE]
        r0 = start + i * n_cols
        r1, r2, r3 = r0 + n_cols, r0 + TWO * n_cols, r0 + THREE * n_cols
        e0 = e1 = e2 = e3 = dt(0)
        for j in range(n_cols):
            d_j = d[d_off + j]
            w0, w1, w2, w3 = params[r0 + j], params[r1 + j], params[r2 + j], params[r3 + j]
            if errors:
                e0 += w0 * d_j
                e1 += w1 * d_j
                e2 += w2 * d_j
                e3 += w3 * d_j
            params[r0 + j] = w0 * keep - a0 * d_j
            params[r1 + j] = w1 * keep - a1 * d_j
            params[r2 + j] = w2 * keep - a2 * d_j
            params[r3 + j] = w3 * keep - a3 * d_j
        if errors:
            d[a_off + i], d[a_off + i + ONE] = e0, e1
            d[a_off + i + TWO], d[a_off + i + THREE] = e2, e3
        i += FOUR
    while i <= n_rows:  # the last n_rows % 4 rows, then the bias row
        bias = i == n_rows
        a_i = lr if bias else lr * a[a_off + i]
        row_keep = dt(1) if bias else keep
        row = start + i * n_cols
        if errors and not bias:
            error = dt(0)
            for j in range(n_cols):
                w = params[row + j]
                error += w * d[d_off + j]
                params[row + j] = w * row_keep - a_i * d[d_off + j]
            d[a_off + i] = error
        else:
            for j in range(n_cols):
                params[row + j] = params[row + j] * row_keep - a_i * d[d_off + j]
        i += ONE


@njit(inline="always", **JIT)
def sgd_first_layer(params, start, n_rows, n_cols, act, d, d_off, decay, lr, X, t_next, s_off):
    """sgd_outer on the first layer (inputs act[0:n_rows], no errors to send back) that also
    sums the next tuple's net inputs of the layer, X[t_next] times the new weights, into
    act[s_off:], in forward's order (biases, then rows four at a time, then the rest): the
    next tuple's forward pass need not read the layer's weights again (case_pass_small,
    case_pass).
    The same new weights as sgd_outer."""
    dt = params.dtype.type
    keep = dt(1) - lr * decay
    bias = start + n_rows * n_cols
    for j in range(n_cols):
        b = params[bias + j] - lr * d[d_off + j]
        params[bias + j] = b
        act[s_off + j] = b
    i = np.uint64(0)
    while i + FOUR <= n_rows:
        a0, a1 = lr * act[i], lr * act[i + ONE]
        a2, a3 = lr * act[i + TWO], lr * act[i + THREE]
        x0, x1 = X[t_next, i], X[t_next, i + ONE]
        x2, x3 = X[t_next, i + TWO], X[t_next, i + THREE]
        r0 = start + i * n_cols
        r1, r2, r3 = r0 + n_cols, r0 + TWO * n_cols, r0 + THREE * n_cols
        for j in range(n_cols):
            d_j = d[d_off + j]
            w0 = params[r0 + j] * keep - a0 * d_j
            w1 = params[r1 + j] * keep - a1 * d_j
            w2 = params[r2 + j] * keep - a2 * d_j
            w3 = params[r3 + j] * keep - a3 * d_j
            params[r0 + j] = w0
            params[r1 + j] = w1
            params[r2 + j] = w2
            params[r3 + j] = w3
            act[s_off + j] += (x0 * w0 + x1 * w1) + (x2 * w2 + x3 * w3)
        i += FOUR
    while i < n_rows:  # the last n_rows % 4 rows
        a_i = lr * act[i]
        x_i = X[t_next, i]
        row = start + i * n_cols
        for j in range(n_cols):
            w = params[row + j] * keep - a_i * d[d_off + j]
            params[row + j] = w
            act[s_off + j] += x_i * w
        i += ONE


@njit(inline="always", **JIT)
def turned_sums(params, act, fan_in, fan_out, b_off, a_in, a_out, t_off, stride):
    """A layer's net inputs from its weights turned (see passes.turn_output, in act past the units):
    each unit's a dot product over contiguous memory, in whole vectors."""
    for j in range(fan_out):
        row = t_off + j * stride
        s = params.dtype.type(0)
        for i in range(fan_in):
            s += act[a_in + i] * act[row + i]
        act[a_out + j] = params[b_off + j] + s


@njit(inline="always", **JIT)
def turned_update(params, act, delta, fan_in, fan_out, b_off, a_in, a_out, t_off, stride, keep,
                  lr):
    """sgd_outer on a layer's weights turned (see passes.turn_output): per unit j, one sweep over
    its contiguous row adds w_ij delta_j to the errors of the inputs (in sgd_outer's order,
    j = 0 first) and moves w_ij to w_ij keep - (lr O_i) delta_j, in whole vectors; then the
    biases."""
    for j in range(fan_out):
        d_j = delta[a_out + j]
        row = t_off + j * stride
        if j == 0:
            for i in range(fan_in):
                w = act[row + i]
                delta[a_in + i] = w * d_j
                act[row + i] = w * keep - (lr * act[a_in + i]) * d_j
        else:
            for i in range(fan_in):
                w = act[row + i]
                delta[a_in + i] += w * d_j
                act[row + i] = w * keep - (lr * act[a_in + i]) * d_j
    for j in range(fan_out):
        params[b_off + j] -= lr * delta[a_out + j]


# Plain SGD's step on layer l in case updating (see errors_and_update_inline), one function per
# kind of layer, as for the sums (shaped.PLAIN_UPDATES; plain_layer_update picks at run time).
# Each weight moves as sgd_outer moves it, to w keep - (lr O_i) delta_j with keep = 1 - lr decay,
# w keep computed before delta_j is known: w - lr (O_i delta_j + decay w) had one operation
# more after delta_j, on the path case updating's next tuple waits on.

@njit(inline="always", **JIT)
def unit_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr):
    """One unit, one row: errors and update in one loop over it."""
    keep = params.dtype.type(1) - lr * decay
    d = delta[a_out]
    for i in range(fan_in):
        w = params[w_off + i]
        if l > 0:
            delta[a_in + i] = w * d
        params[w_off + i] = w * keep - (lr * act[a_in + i]) * d
    params[b_off] -= lr * d


@njit(inline="always", **JIT)
def narrow_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr):
    """A few units: errors and update in one loop over each column of W."""
    keep = params.dtype.type(1) - lr * decay
    for j in range(fan_out):
        d = delta[a_out + j]
        for i in range(fan_in):
            k = w_off + i * fan_out + j
            w = params[k]
            if l > 0:
                delta[a_in + i] = w * d if j == 0 else delta[a_in + i] + w * d
            params[k] = w * keep - (lr * act[a_in + i]) * d
        params[b_off + j] -= lr * d


@njit(inline="always", **JIT)
def pair_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr):
    """Two units: W's rows are pairs; one sweep over them, each row's error and update
    together, the two deltas held in registers."""
    keep = params.dtype.type(1) - lr * decay
    d0, d1 = delta[a_out], delta[a_out + ONE]
    for i in range(fan_in):
        a_i = lr * act[a_in + i]
        k = w_off + i * TWO
        w0, w1 = params[k], params[k + ONE]
        if l > 0:
            delta[a_in + i] = w0 * d0 + w1 * d1
        params[k] = w0 * keep - a_i * d0
        params[k + ONE] = w1 * keep - a_i * d1
    params[b_off] -= lr * d0
    params[b_off + ONE] -= lr * d1


@njit(inline="always", **JIT)
def quad_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr):
    """Four units: pair_update's sweep over rows of four."""
    keep = params.dtype.type(1) - lr * decay
    d0, d1, d2, d3 = delta[a_out], delta[a_out + ONE], delta[a_out + TWO], delta[a_out + THREE]
    for i in range(fan_in):
        a_i = lr * act[a_in + i]
        k = w_off + i * fan_out
        w0, w1, w2, w3 = params[k], params[k + ONE], params[k + TWO], params[k + THREE]
        if l > 0:
            delta[a_in + i] = (w0 * d0 + w1 * d1) + (w2 * d2 + w3 * d3)
        params[k] = w0 * keep - a_i * d0
        params[k + ONE] = w1 * keep - a_i * d1
        params[k + TWO] = w2 * keep - a_i * d2
        params[k + THREE] = w3 * keep - a_i * d3
    params[b_off] -= lr * d0
    params[b_off + ONE] -= lr * d1
    params[b_off + TWO] -= lr * d2
    params[b_off + THREE] -= lr * d3


@njit(inline="always", **JIT)
def row_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr):
    """Wider layers: row by row (sgd_outer)."""
    sgd_outer(params, w_off, fan_in, fan_out, act, a_in, delta, a_out, decay, lr, l > 0)


@njit(inline="always", **JIT)
def plain_layer_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay,
                       lr):
    """Plain SGD's step on layer l, the kind of layer chosen at run time."""
    if fan_out == 1:
        unit_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr)
    elif fan_out == TWO:
        pair_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr)
    elif fan_out == FOUR:
        quad_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr)
    elif fan_out <= NARROW:
        narrow_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay,
                      lr)
    else:
        row_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay, lr)


@njit(inline="always", **JIT)
def errors_and_update_inline(params, layout, geo, state, act, delta, decay, opt, hyper, general,
                             codes, lowest, turned, t_off, stride):
    """Case updating, from the output layer (its weights turned in act[t_off:] if `turned`,
    see passes.turned_output) down to layer `lowest` (0, or 1 when case_pass_small or
    case_pass updates the first layer itself, sgd_first_layer): the errors of each layer's
    inputs, delta_i = f'(I_i) sum_j w_ij delta_j with w_ij as it was, then its weights move
    against O_i delta_j + decay w_ij and its biases against delta_j; one pass over a row does
    both.
    Inlined into case_pass_small; errors_and_update is its called twin.

    general: None for plain SGD (no momentum), when the other optimizers' code is pruned at
    compile time (Numba prunes `x is None` on an argument that is None), else True."""
    begin_update(hyper, opt)
    plain = opt == SGD and hyper[MOMENTUM] == 0.0
    lr = params.dtype.type(hyper[LR])
    last = geo.shape[0] - 1
    for l in range(last, lowest - 1, -1):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if turned and l == last:  # (plain SGD, no decay)
            turned_update(params, act, delta, fan_in, fan_out, b_off, a_in, a_out, t_off, stride,
                          params.dtype.type(1), lr)
        elif general is None or plain:
            plain_layer_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out,
                               decay, lr)
        elif fan_out == 1:  # one row of fan_in weights, so the inner loop is the long one
            if l > 0:
                for i in range(fan_in):
                    delta[a_in + i] = params[w_off + i] * delta[a_out]
            update_outer(params, state, w_off, ONE, fan_in, delta, a_out, act, a_in, decay, opt,
                         hyper, False, False)
            update_outer(params, state, b_off, ZERO, ONE, act, a_in, delta, a_out, decay, opt,
                         hyper, False, True)  # its bias: no weight rows, the bias row alone
        else:
            update_outer(params, state, w_off, fan_in, fan_out, act, a_in, delta, a_out, decay,
                         opt, hyper, l > 0, True)
        if l > 0:
            derivative_hidden(delta, act, a_in, fan_in, codes, layout, l - 1)


@njit(**JIT, **NO_REFCOUNT, **NOALIAS, **INTERNAL)
def errors_and_update(params, layout, geo, state, act, delta, decay, opt, hyper, general, codes,
                      lowest, turned, t_off, stride):
    """errors_and_update_inline as a call: networks past SMALL_NETWORK keep their backward
    pass out of line (case_pass; all inlined into case_pass_small, a digits-sized network's
    case updating compiled twice as long: the demo's 23 -> 28 s)."""
    errors_and_update_inline(params, layout, geo, state, act, delta, decay, opt, hyper, general,
                             codes, lowest, turned, t_off, stride)


@njit(**JIT, **INTERNAL)
def errors_and_update_dropout(params, layout, geo, state, act, delta, decay, opt, hyper, t,
                              codes):
    """Case updating, from the output layer down: the errors of each layer's inputs,
    delta_i = f'(I_i) sum_j w_ij delta_j with w_ij as it was, then its weights move against
    O_i delta_j + decay w_ij and its biases against delta_j; one pass over a row does both."""
    begin_update(hyper, opt)
    for l in range(geo.shape[0] - 1, -1, -1):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if fan_out == 1:  # one row of fan_in weights, so the inner loop is the long one
            if l > 0:
                for i in range(fan_in):
                    delta[a_in + i] = params[w_off + i] * delta[a_out]
            update_outer(params, state, w_off, ONE, fan_in, delta, a_out, act, a_in, decay, opt,
                         hyper, False, False)
            update_outer(params, state, b_off, ZERO, ONE, act, a_in, delta, a_out, decay, opt,
                         hyper, False, True)  # its bias: no weight rows, the bias row alone
        else:
            update_outer(params, state, w_off, fan_in, fan_out, act, a_in, delta, a_out, decay,
                         opt, hyper, l > 0, True)
        if l > 0:
            if dropping(layout, l - 1):  # (a copy of errors_and_update plus this test)
                undo_drop_out(layout, l - 1, t, act, delta, a_in, fan_in)
            derivative_hidden(delta, act, a_in, fan_in, codes, layout, l - 1)


@njit(**JIT, **INTERNAL)
def add_outer(grad, params, start, n_rows, n_cols, a, a_off, d, d_off, errors):
    """grad[W] += a[a_off+i] d[d_off+j] over the n_rows x n_cols block W at `start`, and its
    bias row (input 1) right after it; with `errors`, d[a_off+i] = sum_j W_ij d[d_off+j]
    (the backward pass and the gradient share one loop over each row, as in update_outer)."""
    dt = params.dtype.type
    for i in range(n_rows + ONE):
        a_i = a[a_off + i] if i < n_rows else dt(1)
        row = start + i * n_cols
        error = dt(0)
        for j in range(n_cols):
            error += params[row + j] * d[d_off + j]
            grad[row + j] += a_i * d[d_off + j]
        if errors and i < n_rows:
            d[a_off + i] = error


# Layer l's share of a tuple's backward pass (see errors_and_gradient): grad += O_i delta_j and
# delta_j for the biases, and (l > 0) the errors of its inputs before f'(I); one function per
# kind of layer, as for the sums (shaped.GRADIENTS; layer_gradient picks at run time).

@njit(inline="always", **JIT)
def unit_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """One unit: one row of fan_in weights, so the inner loop is the long one."""
    d = delta[a_out]
    for i in range(fan_in):
        grad[w_off + i] += act[a_in + i] * d
    if l > 0:
        for i in range(fan_in):
            delta[a_in + i] = params[w_off + i] * d
    grad[b_off] += d


@njit(inline="always", **JIT)
def narrow_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """A few units: a loop over each column of W."""
    for j in range(fan_out):
        d = delta[a_out + j]
        for i in range(fan_in):
            k = w_off + i * fan_out + j
            grad[k] += act[a_in + i] * d
            if l > 0:
                error = params[k] * d
                delta[a_in + i] = error if j == 0 else delta[a_in + i] + error
        grad[b_off + j] += d


@njit(inline="always", **JIT)
def row_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """Wider layers: row by row (add_outer)."""
    add_outer(grad, params, w_off, fan_in, fan_out, act, a_in, delta, a_out, l > 0)


@njit(inline="always", **JIT)
def layer_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out):
    """Layer l's gradient step, the kind of layer chosen at run time."""
    if fan_out == 1:
        unit_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out)
    elif fan_out <= NARROW:
        narrow_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out)
    else:
        row_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out)


@njit(**JIT, **INTERNAL)
def errors_and_gradient(params, layout, geo, act, delta, grad, t, codes):
    """The backward pass of one tuple whose output errors are in delta, from the output layer
    down: grad += O_i delta_j for every weight (delta_j for every bias), and each layer's input
    errors delta_i = f'(I_i) sum_j w_ij delta_j. What errors_and_update does, with the
    increments summed into grad instead of applied (epoch and minibatch updating)."""
    for l in range(geo.shape[0] - 1, -1, -1):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        layer_gradient(params, grad, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out)
        if l > 0:
            if dropping(layout, l - 1):
                undo_drop_out(layout, l - 1, t, act, delta, a_in, fan_in)
            derivative_hidden(delta, act, a_in, fan_in, codes, layout, l - 1)


@njit(**JIT)
def squared_weights(params, layout):
    """sum of w^2 over every weight (not the biases): the L2 term is alpha/2 times it.
    Summed in the network's dtype within a layer, as scikit-learn's dot(w, w), and in
    float64 over the layers; unsigned offsets, so the sum vectorises."""
    total = 0.0
    for l in range(layout.shape[0]):
        w_off, n = np.uint64(layout[l, W_OFF]), np.uint64(layout[l, B_OFF] - layout[l, W_OFF])
        layer = params.dtype.type(0)
        for k in range(n):
            layer += params[w_off + k] * params[w_off + k]
        total += np.float64(layer)
    return total


# Tuples are visited in a shuffled order, so each one's rows of X and Y are a cache miss
# (tiny's X alone is 1.2 MB) at the start of its forward pass, on case updating's critical
# path: the rows of the tuple AHEAD places on are asked for in advance. tiny_case_floor's
# hand-written 3-8-8-1 pass: 180 -> 165 ns a tuple, as fast as in the data's own order.
AHEAD = 8


@njit(inline="always", **JIT)
def prefetch_tuple(X, Y, order, p):
    """Prefetch (fastmath.prefetch) the rows of X and Y of tuple order[p + AHEAD], if any:
    each row's first and last element (the whole row when it spans at most two cache lines;
    a longer row's lines between are the hardware prefetcher's). No loop over the lines: a
    few instructions, whatever the row."""
    q = p + AHEAD
    if q < order.shape[0]:
        t = order[q]
        prefetch(X, t, 0)
        prefetch(X, t, X.shape[1] - 1)
        prefetch(Y, t, 0)
        prefetch(Y, t, Y.shape[1] - 1)


@njit(inline="always", **JIT)
def weight_of(weights, t):
    """Tuple t's sample weight; an empty `weights` array means every tuple weighs 1."""
    return 1.0 if weights.shape[0] == 0 else np.float64(weights[t])


@njit(inline="always", **JIT)
def forward_tuple(params, layout, geo, act, X, Y, t, codes, dropout, primed, turned, t_off,
                  stride):
    """Forward pass for X[t]: returns (E, 1 if classified right) against Y[t]. dropout: None
    (no dropout: its code is pruned at compile time, see errors_and_update_inline) or True;
    primed, turned, t_off, stride: as forward's (without dropout)."""
    for i in range(geo[0, G_IN]):
        act[i] = X[t, i]
    if dropout is not None:
        forward_dropout(params, layout, geo, act, t, codes)
    else:
        forward(params, layout, geo, act, codes, primed, turned, t_off, stride)
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    return (loss_of(act, out, n_out, Y, t, codes, layout), correct_of(act, out, n_out, Y, t, codes, layout))
