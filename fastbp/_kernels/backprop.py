"""Every @njit function of fastbp (the codes and table columns they compile in are in
codes.py, which Python reads without importing Numba).

Numba stamps a cached kernel with a hash of the file that defines it, not of the files its
callees or constants come from; fastbp's cache locator (_cache.py) stamps it with a hash of
every file of this package instead, so an edit to any of them recompiles every kernel.

Kernels take plain arrays and integer codes, never Python objects; the Python layer
(`fastbp.network`, `fastbp.train`) translates names into these codes once and validates
all input before calling in.

The steps of backpropagation for one tuple (Han & Kamber, ch. 9) come first (case
updating runs them tuple by tuple), then the same steps for blocks of tuples as matrix
products (the gradient passes of epoch and minibatch updating), then the whole-epoch
kernels the Python layer calls, one per epoch.

All arrays are flat. `act` holds the outputs O of every unit, layer after layer, input
first; `delta` has the same layout and holds dE/dI, the gradient of the tuple's error with
respect to each unit's net input I (the textbook's Err_j is -delta_j). Weights live in
`params` as the layout table below says: layer l's W (fan_in x fan_out, row-major) at
w_off, then its biases at b_off.

Indexing: every kernel turns the layout into `geo`, a table of uint64 offsets, and indexes
the flat arrays with unsigned sums like act[a_out + j]. With a signed index Numba must
allow for a negative value and wrap it, and that check alone stops LLVM from vectorising
a loop (7x slower on a 64-wide row); slicing views instead costs a reference-counted array
object per slice, which dominated small networks. Unsigned offsets cost neither. Never mix
them with signed integers or integer literals (Numba makes uint64 + int64 a float64).
"""
import os
import sys

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _cache
from ._jit import (activate_block, activate_layer, correct_of, derivative_hidden, error_of, loss_of,
                   preload_tbb, sk_correct_of, twin)
from .codes import *  # noqa: F401,F403  (compiled in as constants)

_cache.install()  # fastbp's cache folder and stamp, before the first @njit
preload_tbb()  # before any parallel kernel can start Numba's threading layer


# fastmath without nnan/ninf, so NaN and inf checks keep working -- on values as loaded from
# memory: under reassoc, isfinite(a + b) can fold to True (seen); reassoc lets reductions vectorise.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Options of every kernel. error_model="numpy" drops Python's ZeroDivisionError checks from hot loops;
# nogil lets several fits run at once in Python threads.
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
# fast_exp's and fast_tanh's options: no reassoc or arcp, which would undo their argument
# reduction and the order of their polynomials.
EXACT_JIT = dict(cache=True, fastmath={"nsz", "contract"}, error_model="numpy", nogil=True)
# The small helpers run per tuple and per layer (activations, errors, loss) carry
# inline="always": Numba then compiles them into their callers, where a call with array
# arguments cost tens of cycles (case updating on `tiny`: 0.39 -> 0.30 us per tuple). The
# big loops (forward, update_outer) stay calls: inlining them made case updating slower.


# -- exp and tanh without libm ----------------------------------------------------------------------
@intrinsic
def pow2(typingctx, n):
    """2**n for a float n holding a whole number in the normal exponent range, in n's own
    precision, written straight into the exponent bits."""
    if n == types.float32:
        int_t, bias, shift, float_t = ir.IntType(32), 127, 23, ir.FloatType()
    elif n == types.float64:
        int_t, bias, shift, float_t = ir.IntType(64), 1023, 52, ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        exponent = builder.add(builder.fptosi(args[0], int_t), int_t(bias))
        return builder.bitcast(builder.shl(exponent, int_t(shift)), float_t)
    return n(n), codegen


@njit(**EXACT_JIT)
def fast_exp(x):
    """exp(x) in x's precision, to about 1 eps (Cephes' exp: x = n ln2 + r, exp(r) by a
    Pade approximant, times 2**n made from the exponent bits); results below the smallest
    normal number are 0. libm's exp is one call per element, which no loop around it can
    vectorise; this is 8x (float32) to 13x (float64) faster in a loop, and the logistic
    units' exp was a third of an epoch on `mid`."""
    dt = type(x)
    single = dt(1e-300) == dt(0)  # float32: fixed when compiled
    lo = dt(-87.33654475) if single else dt(-708.39641853226408)  # log of the smallest normal
    hi = dt(88.72283905) if single else dt(709.78271289338397)    # log of the largest number
    xc = min(max(x, lo), hi)
    n = np.floor(xc * dt(1.4426950408889634) + dt(0.5))  # round(x / ln2)
    r = (xc - n * dt(0.693145751953125)) - n * dt(1.4286068203094173e-06)  # ln2 in two parts
    rr = r * r
    p = r * ((dt(1.2617719307481059e-04) * rr + dt(3.0299440770744196e-02)) * rr + dt(1.0))
    q = ((dt(3.0019850513866446e-06) * rr + dt(2.5244834034968410e-03)) * rr
         + dt(2.2726554820815503e-01)) * rr + dt(2.0)
    y = (dt(1) + dt(2) * p / (q - p)) * pow2(n - dt(1)) * dt(2)  # 2**(n-1) * 2: n may be 128
    if x < lo:
        y = dt(0)
    if x > hi:
        y = dt(np.inf)
    return y if x == x else x  # NaN stays NaN


@njit(**EXACT_JIT)
def fast_logistic(x):
    """1 / (1 + exp(-x)) in x's precision, to about 2 eps: fast_exp's steps for exp(-x) =
    2**n (q + p) / (q - p), folded into ONE division, (q - p) / ((q - p) + 2**n (q + p)).
    A logistic unit's latency is on every case update's critical path (a tuple's forward pass
    is one per layer, in series): 25 -> 19 ns here in float64 (two divisions -> one)."""
    dt = type(x)
    single = dt(1e-300) == dt(0)  # float32: fixed when compiled
    lo = dt(-87.33654475) if single else dt(-708.39641853226408)  # as in fast_exp
    hi = dt(88.72283905) if single else dt(709.78271289338397)
    m = -x
    xc = min(max(m, lo), hi)
    n = np.floor(xc * dt(1.4426950408889634) + dt(0.5))  # round(-x / ln2)
    r = (xc - n * dt(0.693145751953125)) - n * dt(1.4286068203094173e-06)
    rr = r * r
    p = r * ((dt(1.2617719307481059e-04) * rr + dt(3.0299440770744196e-02)) * rr + dt(1.0))
    q = ((dt(3.0019850513866446e-06) * rr + dt(2.5244834034968410e-03)) * rr
         + dt(2.2726554820815503e-01)) * rr + dt(2.0)
    below = q - p
    y = below / (below + (q + p) * (pow2(n - dt(1)) * dt(2)))  # 2**(n-1) * 2: n may be 128
    if m < lo:
        y = dt(1)
    if m > hi:
        y = dt(0)
    return y if x == x else x  # NaN stays NaN


@njit(**EXACT_JIT)
def fast_tanh(x):
    """tanh(x) in x's precision, to about 1 eps, vectorisable (libm's tanh took 13 ns an
    element in a loop, this one 0.4 (float32) to 0.7 ns): Cephes' polynomial (float32) or
    rational function (float64) for |x| < 0.625, where 1 - 2/(exp(2|x|) + 1) would cancel,
    and that formula with fast_exp beyond."""
    dt = type(x)
    single = dt(1e-300) == dt(0)  # float32: fixed when compiled
    a = abs(x)
    z = x * x
    if single:
        small = ((((dt(-5.70498872745e-3) * z + dt(2.06390887954e-2)) * z
                   - dt(5.37397155531e-2)) * z + dt(1.33314422036e-1)) * z
                 - dt(3.33332819422e-1)) * z * x + x
    else:
        p = (dt(-9.64399179425052238628e-1) * z - dt(9.92877231001918586564e1)) * z \
            - dt(1.61468768441708447952e3)
        q = ((z + dt(1.12811678491632931402e2)) * z + dt(2.23548839060100448583e3)) * z \
            + dt(4.84406305325125486048e3)
        small = x + x * z * p / q
    large = dt(1) - dt(2) / (fast_exp(a + a) + dt(1))
    y = small if a < dt(0.625) else (large if x >= dt(0) else -large)
    return y if x == x else x  # NaN stays NaN


# -- the clock ------------------------------------------------------------------------------------
@intrinsic
def monotonic_ns(typingctx):
    """clock_gettime(CLOCK_MONOTONIC) in nanoseconds, read from compiled code (about 30 ns
    here, a vDSO call): the run kernels time their epochs and their slice budget with it."""
    def codegen(context, builder, signature, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        if CLOCK_MONOTONIC is None:  # no clock_gettime: slices end by their epoch count alone
            return i64(0)
        timespec = ir.LiteralStructType([i64, i64])
        clock_gettime = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i32, timespec.as_pointer()]), "clock_gettime")
        now = cgutils.alloca_once(builder, timespec)
        builder.call(clock_gettime, [i32(CLOCK_MONOTONIC), now])
        seconds = builder.load(builder.gep(now, [i32(0), i32(0)]))
        nanoseconds = builder.load(builder.gep(now, [i32(0), i32(1)]))
        return builder.add(builder.mul(seconds, i64(1_000_000_000)), nanoseconds)
    return types.int64(), codegen


# clock_gettime's clockid_t for the monotonic clock: macOS 6, Linux (and other POSIX) 1;
# Windows has no clock_gettime.
CLOCK_MONOTONIC = 6 if sys.platform == "darwin" else 1 if os.name == "posix" else None


# -- one tuple ------------------------------------------------------------------------------
@njit(**JIT)
def geometry(layout):
    """The uint64 offset table of a layout (see G_IN ... G_A_OUT)."""
    n_layers = layout.shape[0]
    geo = np.empty((n_layers, 6), dtype=np.uint64)
    units = 0
    for l in range(n_layers):
        geo[l, G_IN] = layout[l, FAN_IN]
        geo[l, G_OUT] = layout[l, FAN_OUT]
        geo[l, G_W] = layout[l, W_OFF]
        geo[l, G_B] = layout[l, B_OFF]
        geo[l, G_A_IN] = units
        units += layout[l, FAN_IN]
        geo[l, G_A_OUT] = units
    return geo


@njit(**JIT)
def n_units(geo):
    """Length of act/delta: every unit of every layer, input included."""
    last = geo.shape[0] - 1
    return geo[last, G_A_OUT] + geo[last, G_OUT]


@njit(inline="always", **JIT)
def activate(v, start, n, code):
    """O_j = f(I_j), in place on the n units v[start:start+n]."""
    one = v.dtype.type(1)
    zero = v.dtype.type(0)
    if code == LOGISTIC:
        for j in range(n):
            v[start + j] = fast_logistic(v[start + j])
    elif code == TANH:
        for j in range(n):
            v[start + j] = fast_tanh(v[start + j])
    elif code == RELU:
        for j in range(n):
            v[start + j] = max(v[start + j], zero)
    elif code == EXP:
        for j in range(n):
            v[start + j] = fast_exp(v[start + j])
    elif code == LEAKY_RELU:
        slope = v.dtype.type(LEAKY_SLOPE)
        for j in range(n):
            a = v[start + j]
            v[start + j] = a if a > zero else slope * a
    elif code == ELU:
        for j in range(n):
            a = v[start + j]
            v[start + j] = a if a > zero else fast_exp(a) - one
    elif code == SOFTPLUS:
        linear = v.dtype.type(SOFTPLUS_LINEAR)
        for j in range(n):
            a = v[start + j]
            v[start + j] = a if a > linear else np.log1p(fast_exp(a))
    elif code == SOFTMAX:
        top = v[start]
        for j in range(n):
            top = max(top, v[start + j])
        total = zero
        for j in range(n):
            v[start + j] = fast_exp(v[start + j] - top)
            total += v[start + j]
        inv = one / total
        for j in range(n):
            v[start + j] *= inv


@njit(inline="always", **JIT)
def times_derivative(delta, act, start, n, code):
    """delta_j *= f'(I_j), written from the unit's output O_j as the textbook does."""
    one = act.dtype.type(1)
    zero = act.dtype.type(0)
    if code == LOGISTIC:
        for j in range(n):
            delta[start + j] *= act[start + j] * (one - act[start + j])
    elif code == TANH:
        for j in range(n):
            delta[start + j] *= one - act[start + j] * act[start + j]
    elif code == RELU:
        for j in range(n):
            delta[start + j] = delta[start + j] if act[start + j] > zero else zero
    elif code == EXP:
        for j in range(n):
            delta[start + j] *= act[start + j]
    elif code == LEAKY_RELU:
        slope = act.dtype.type(LEAKY_SLOPE)
        for j in range(n):
            if not act[start + j] > zero:
                delta[start + j] *= slope
    elif code == ELU:  # f'(a) = 1 for a > 0, else exp(a) = O + 1
        for j in range(n):
            if not act[start + j] > zero:
                delta[start + j] *= act[start + j] + one
    elif code == SOFTPLUS:  # f'(a) = logistic(a) = 1 - exp(-O)
        for j in range(n):
            delta[start + j] *= one - fast_exp(-act[start + j])


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


@njit(**JIT)
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


@njit(**JIT)  # a call, not inlined: only dropout runs pay for its code
def drop_out(layout, l, t, act, start, n):
    """O' = O * keep_scale for the n outputs of layer l at act[start:] (tuple t)."""
    for j in range(n):
        act[start + j] *= act.dtype.type(keep_scale(layout, l, t, j))


@njit(**JIT)  # a call, not inlined: only dropout runs pay for its code
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


@njit(**JIT)
def forward(params, layout, geo, act, codes):
    """forward_inline as a call (see errors_and_update)."""
    forward_inline(params, layout, geo, act, codes)


@njit(inline="always", **JIT)
def forward_inline(params, layout, geo, act, codes):
    """Forward pass: act holds the input; fill every layer's O_j = f(theta_j + sum_i O_i w_ij)."""
    for l in range(geo.shape[0]):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if fan_out == 1:  # one unit: a dot product over the contiguous column of W
            s = params[b_off]
            for i in range(fan_in):
                s += act[a_in + i] * params[w_off + i]
            act[a_out] = s
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


@njit(**JIT)
def forward_dropout(params, layout, geo, act, t, codes):
    """forward with dropout on the hidden layers (t: the tuple's row, which its hash needs).
    A copy of forward plus two lines: a test in forward itself cost case updating on `tiny`
    10%, and sharing the loop body through an inlined helper 70%."""
    last = geo.shape[0] - 1
    for l in range(geo.shape[0]):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if fan_out == 1:  # one unit: a dot product over the contiguous column of W
            s = params[b_off]
            for i in range(fan_in):
                s += act[a_in + i] * params[w_off + i]
            act[a_out] = s
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
        eps = np.float64(np.finfo(act.dtype).eps)
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
def output_error(act, delta, out, n_out, Y, t, loss_code, code):
    """Output layer's delta = dE/dI.

    For the matched pairs (squared error + identity, log loss + logistic or softmax,
    Poisson + exp) this is O - T. Squared error through a logistic unit adds the factor
    O(1-O), so that -delta is the textbook's Err_j = O_j(1-O_j)(T_j-O_j); through softmax
    it takes the full Jacobian.
    """
    for k in range(n_out):
        delta[out + k] = act[out + k] - Y[t, k]
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


@njit(**JIT)
def update_outer(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, opt, hyper,
                 errors, with_bias):
    """Move the n_rows x n_cols block W of params at `start` against
    g_ij = a[a_off+i] d[d_off+j] + decay W_ij: one layer's case update (state: the
    optimizer's arrays in the params layout). `with_bias`: the biases follow W in params
    and move too, as the textbook has them: one more row, from a unit whose output is
    always 1, not penalised (one call per layer; a call of their own cost a quarter of a
    case update on the tiny workload). With `errors`, the row's error
    sum_j W_ij d[d_off+j], from the weights as they were, goes to d[a_off+i]: the backward
    pass and the update share one loop over each row (two loops cost 1.7x as much on a
    64x64 layer).
    Summing the new W_ij^2 here too cost as much as the update (a reduction per row); a
    flat pass over the weights is cheaper."""
    dt = params.dtype.type
    lr, mu, nesterov = dt(hyper[LR]), dt(hyper[MOMENTUM]), hyper[NESTEROV] != 0.0
    b1, b2, lr_t, eps = dt(hyper[BETA_1]), dt(hyper[BETA_2]), dt(hyper[LR_T]), dt(hyper[EPSILON])
    c1, c2 = dt(1.0 - hyper[BETA_1]), dt(1.0 - hyper[BETA_2])
    for i in range(n_rows + ONE if with_bias else n_rows):
        if i < n_rows:
            a_i, row_decay = a[a_off + i], decay
        else:  # the bias row
            a_i, row_decay = dt(1), dt(0)
        row = start + i * n_cols
        error = dt(0)
        if opt == ADAM:
            for j in range(n_cols):
                k = row + j
                w = params[k]
                error += w * d[d_off + j]
                params[k], state[0, k], state[1, k] = adam_step(
                    w, state[0, k], state[1, k], a_i * d[d_off + j] + row_decay * w,
                    b1, c1, b2, c2, lr_t, eps)
        elif mu == dt(0) and errors:
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


@njit(**JIT)
def update_flat(params, state, start, n, vec, v_off, scale, decay, opt, hyper):
    """Move params[start:start+n] against g_k = scale vec[v_off+k] + decay w_k."""
    dt = params.dtype.type
    lr, mu, nesterov = dt(hyper[LR]), dt(hyper[MOMENTUM]), hyper[NESTEROV] != 0.0
    if opt == RPROP:
        inc, dec = dt(hyper[RPROP_INCREASE]), dt(hyper[RPROP_DECREASE])
        dmin, dmax = dt(hyper[RPROP_DELTA_MIN]), dt(hyper[RPROP_DELTA_MAX])
        for j in range(n):
            k = start + j
            params[k], state[0, k], state[1, k] = rprop_step(
                params[k], state[0, k], state[1, k], scale * vec[v_off + j] + decay * params[k],
                inc, dec, dmin, dmax, dt(RPROP_MIN_STEP), dt(0))
        return
    if opt == QUICKPROP:
        total = dt(1.0) / scale  # the batch's weight sum: FANN's slopes are sums
        qmu = dt(hyper[QUICKPROP_MU])
        epsilon, qdecay, shrink = lr * scale, dt(hyper[QUICKPROP_DECAY]), qmu / (dt(1) + qmu)
        for j in range(n):
            k = start + j
            params[k], state[0, k], state[1, k] = quickprop_step(
                params[k], state[0, k], state[1, k], scale * vec[v_off + j] + decay * params[k],
                total, epsilon, qdecay, qmu, shrink, dt(0.001), dt(0))
        return
    if opt == ADAM:
        b1, b2, lr_t, eps = dt(hyper[BETA_1]), dt(hyper[BETA_2]), dt(hyper[LR_T]), dt(hyper[EPSILON])
        c1, c2 = dt(1.0 - hyper[BETA_1]), dt(1.0 - hyper[BETA_2])
        for j in range(n):
            k = start + j
            params[k], state[0, k], state[1, k] = adam_step(
                params[k], state[0, k], state[1, k], scale * vec[v_off + j] + decay * params[k],
                b1, c1, b2, c2, lr_t, eps)
    elif hyper[MOMENTUM] == 0.0:
        for j in range(n):
            params[start + j] -= lr * (scale * vec[v_off + j] + decay * params[start + j])
    else:
        for j in range(n):
            k = start + j
            params[k], state[0, k] = momentum_step(params[k], state[0, k],
                                                   scale * vec[v_off + j] + decay * params[k],
                                                   lr, mu, nesterov)


@njit(inline="always", **JIT)
def sgd_outer(params, start, n_rows, n_cols, a, a_off, d, d_off, decay, lr, errors):
    """update_outer for plain SGD (no momentum), inlined into its caller: a call with
    update_outer's arguments cost a tenth of a case update on XOR. W -= lr (a_i d_j + decay
    W), the biases (the row after W: input 1, no decay) -= lr d_j; with `errors`, as
    update_outer."""
    dt = params.dtype.type
    for i in range(n_rows + ONE):
        bias = i == n_rows
        a_i = dt(1) if bias else a[a_off + i]
        row_decay = dt(0) if bias else decay
        row = start + i * n_cols
        if errors and not bias:
            error = dt(0)
            for j in range(n_cols):
                w = params[row + j]
                error += w * d[d_off + j]
                params[row + j] = w - lr * (a_i * d[d_off + j] + row_decay * w)
            d[a_off + i] = error
        else:
            for j in range(n_cols):
                w = params[row + j]
                params[row + j] = w - lr * (a_i * d[d_off + j] + row_decay * w)


@njit(inline="always", **JIT)
def plain_layer_update(params, act, delta, l, fan_in, fan_out, w_off, b_off, a_in, a_out, decay,
                       lr):
    """Plain SGD's step on layer l in case updating (see errors_and_update_inline)."""
    if fan_out == 1:  # one row: errors and update in one loop over it
        d = delta[a_out]
        for i in range(fan_in):
            w = params[w_off + i]
            if l > 0:
                delta[a_in + i] = w * d
            params[w_off + i] = w - lr * (act[a_in + i] * d + decay * w)
        params[b_off] -= lr * d
    else:
        sgd_outer(params, w_off, fan_in, fan_out, act, a_in, delta, a_out, decay, lr, l > 0)


@njit(inline="always", **JIT)
def errors_and_update_inline(params, layout, geo, state, act, delta, decay, opt, hyper, general,
                             codes):
    """Case updating, from the output layer down: the errors of each layer's inputs,
    delta_i = f'(I_i) sum_j w_ij delta_j with w_ij as it was, then its weights move against
    O_i delta_j + decay w_ij and its biases against delta_j; one pass over a row does both.
    Inlined into small networks' case passes; errors_and_update is its called twin.

    general: None for plain SGD (no momentum), when the other optimizers' code is pruned at
    compile time (Numba prunes `x is None` on an argument that is None), else True."""
    begin_update(hyper, opt)
    plain = opt == SGD and hyper[MOMENTUM] == 0.0
    lr = params.dtype.type(hyper[LR])
    for l in range(geo.shape[0] - 1, -1, -1):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if general is None or plain:
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


@njit(**JIT)
def errors_and_update(params, layout, geo, state, act, delta, decay, opt, hyper, general, codes):
    """errors_and_update_inline as a call: networks past SMALL_NETWORK keep their backward
    pass out of line (inlined, it made case updating on `mid` 15% slower)."""
    errors_and_update_inline(params, layout, geo, state, act, delta, decay, opt, hyper, general,
                             codes)


@njit(**JIT)
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


@njit(**JIT)
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


@njit(**JIT)
def errors_and_gradient(params, layout, geo, act, delta, grad, t, codes):
    """The backward pass of one tuple whose output errors are in delta, from the output layer
    down: grad += O_i delta_j for every weight (delta_j for every bias), and each layer's input
    errors delta_i = f'(I_i) sum_j w_ij delta_j. What errors_and_update does, with the
    increments summed into grad instead of applied (epoch and minibatch updating)."""
    for l in range(geo.shape[0] - 1, -1, -1):
        fan_in, fan_out = geo[l, G_IN], geo[l, G_OUT]
        w_off, b_off, a_in, a_out = geo[l, G_W], geo[l, G_B], geo[l, G_A_IN], geo[l, G_A_OUT]
        if fan_out == 1:  # one row of fan_in weights, so the inner loop is the long one
            d = delta[a_out]
            for i in range(fan_in):
                grad[w_off + i] += act[a_in + i] * d
            if l > 0:
                for i in range(fan_in):
                    delta[a_in + i] = params[w_off + i] * d
            grad[b_off] += d
        else:
            add_outer(grad, params, w_off, fan_in, fan_out, act, a_in, delta, a_out, l > 0)
        if l > 0:
            if dropping(layout, l - 1):
                undo_drop_out(layout, l - 1, t, act, delta, a_in, fan_in)
            derivative_hidden(delta, act, a_in, fan_in, codes, layout, l - 1)


@njit(**JIT)
def apply_mean_update(params, grad, state, geo, weight_sum, opt, hyper):
    """Epoch/minibatch updating: move against grad / S (+ alpha w / S on weights), where grad
    is the (weighted) sum of the tuples' gradients and S the sum of their weights."""
    dt = params.dtype.type
    scale = dt(1.0 / weight_sum)
    decay = dt(hyper[ALPHA] / weight_sum)
    begin_update(hyper, opt)
    for l in range(geo.shape[0]):
        w_off, b_off = geo[l, G_W], geo[l, G_B]
        update_flat(params, state, w_off, b_off - w_off, grad, w_off, scale, decay, opt, hyper)
        update_flat(params, state, b_off, geo[l, G_OUT], grad, b_off, scale, dt(0), opt, hyper)


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


@njit(inline="always", **JIT)
def weight_of(weights, t):
    """Tuple t's sample weight; an empty `weights` array means every tuple weighs 1."""
    return 1.0 if weights.shape[0] == 0 else np.float64(weights[t])


@njit(inline="always", **JIT)
def forward_tuple(params, layout, geo, act, X, Y, t, codes, dropout):
    """Forward pass for X[t]: returns (E, 1 if classified right) against Y[t]. dropout: None
    (no dropout: its code is pruned at compile time, see errors_and_update_inline) or True."""
    for i in range(geo[0, G_IN]):
        act[i] = X[t, i]
    if dropout is not None:
        forward_dropout(params, layout, geo, act, t, codes)
    else:
        forward(params, layout, geo, act, codes)
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    return (loss_of(act, out, n_out, Y, t, codes, layout), correct_of(act, out, n_out, Y, t, codes, layout))


# -- blocks of tuples -----------------------------------------------------------------------


@njit(**JIT)
def unit_matrix(buf, units_start, size, b):
    """The b x size matrix of buf holding, for b tuples, the units that start at units_start in act."""
    start = BLOCK * units_start
    return buf[start:start + b * size].reshape((b, size))


@njit(**JIT)
def block_forward(params, layout, X, order, p0, b, act, dropout, codes):
    """Forward pass of the b tuples X[order[p0:p0+b]] into the block buffer act."""
    inputs = unit_matrix(act, 0, layout[0, FAN_IN], b)
    for r in range(b):
        t = order[p0 + r]
        for i in range(inputs.shape[1]):
            inputs[r, i] = X[t, i]
    units = 0
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        W = params[layout[l, W_OFF]:layout[l, B_OFF]].reshape((fan_in, fan_out))
        bias = params[layout[l, B_OFF]:layout[l, B_OFF] + fan_out]
        out = unit_matrix(act, units + fan_in, fan_out, b)
        np.dot(unit_matrix(act, units, fan_in, b), W, out)  # I = O_prev W
        for r in range(b):
            for j in range(fan_out):
                out[r, j] += bias[j]
        start = BLOCK * (units + fan_in)
        activate_block(act, np.uint64(start), np.uint64(b), np.uint64(fan_out), codes, layout,
                       l)
        if dropout is not None and l < layout.shape[0] - 1 and dropping(layout, l):
            for r in range(b):
                drop_out(layout, l, order[p0 + r], act, np.uint64(start + r * fan_out),
                         np.uint64(fan_out))
        units += fan_in


@njit(**JIT)
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


@njit(**JIT)
def new_workspaces(params, layout, n_chunks):
    """One row per chunk, each holding a block's act and delta buffers and room for the
    largest weight matrix; allocated once per kernel call, not per batch."""
    units = layout[0, FAN_IN]
    largest = 0
    for l in range(layout.shape[0]):
        units += layout[l, FAN_OUT]
        largest = max(largest, layout[l, FAN_IN] * layout[l, FAN_OUT])
    return np.empty((n_chunks, 2 * BLOCK * units + largest), dtype=params.dtype)


@njit(**JIT)
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

# Gradient rows are summed in blocks of this many parameters, one block per task.
_REDUCE_BLOCK = 4096
# Below this many numbers to add, the rows are added by one thread.
_PARALLEL_REDUCE = 1 << 20


@njit(**JIT)
def case_pass(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper, state,
              general, dropout):
    """Case updating: for each tuple X[order[p]] in turn, forward, errors back, update params.

    A tuple of weight w moves params by the gradient of w*E + alpha/2 ||W||^2 divided by w
    (scikit-learn with batch_size=1): the data term is unchanged, the L2 term is divided by
    w, and a tuple of weight 0 changes nothing.
    """
    alpha = hyper[ALPHA]
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for p in range(order.shape[0]):
        t = order[p]
        weight = weight_of(weights, t)
        loss, correct = forward_tuple(params, layout, geo, act, X, Y, t, codes, dropout)
        loss_sum += loss
        n_correct += correct
        if weight == 0.0:
            continue
        if alpha != 0.0:
            penalty_sum += 0.5 * alpha * squared_weights(params, layout) / weight
        error_of(act, delta, out, n_out, Y, t, codes, layout)
        if dropout is not None:
            errors_and_update_dropout(params, layout, geo, state, act, delta,
                                      params.dtype.type(alpha / weight), opt, hyper, t, codes)
        else:
            errors_and_update(params, layout, geo, state, act, delta,
                              params.dtype.type(alpha / weight), opt, hyper, general, codes)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT)
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
    for p in range(order.shape[0]):
        t = order[p]
        weight = weight_of(weights, t)
        for i in range(geo[0, G_IN]):
            act[i] = X[t, i]
        forward_inline(params, layout, geo, act, codes)
        loss_sum += loss_of(act, out, n_out, Y, t, codes, layout)
        n_correct += correct_of(act, out, n_out, Y, t, codes, layout)
        if weight == 0.0:
            continue
        if alpha != 0.0:
            penalty_sum += 0.5 * alpha * squared_weights(params, layout) / weight
        error_of(act, delta, out, n_out, Y, t, codes, layout)
        errors_and_update_inline(params, layout, geo, state, act, delta,
                                 params.dtype.type(alpha / weight), opt, hyper, general, codes)
    return loss_sum, penalty_sum, n_correct


@njit(**JIT)
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
        loss, correct = forward_tuple(params, layout, geo, act, X, Y, t, codes, dropout)
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


@njit(**JIT)
def chunk_gradient(params, layout, X, Y, weights, order, lo, hi, codes, row, work_row,
                   dropout):
    """row = sum of w_t dE/dw over X[order[lo:hi]], a block at a time as matrix products:
    returns (sum w_t E_t, sum w_t, n_correct)."""
    act, delta, scratch = split_workspace(work_row, layout)
    row[:] = 0
    loss_c, weight_c, correct_c = 0.0, 0.0, 0
    for p0 in range(lo, hi, BLOCK):
        loss_b, weight_b, correct_b = block_gradient(params, layout, X, Y, weights, order, p0,
                                                     min(BLOCK, hi - p0), codes, act, delta,
                                                     scratch, row, dropout)
        loss_c += loss_b
        weight_c += weight_b
        correct_c += correct_b
    return loss_c, weight_c, correct_c


@njit(**JIT)
def add_rows(rows, grad, lo, hi):
    """grad[lo:hi] = sum of rows[:, lo:hi], added in row order."""
    for k in range(lo, hi):
        grad[k] = rows[0, k]
    for c in range(1, rows.shape[0]):
        for k in range(lo, hi):
            grad[k] += rows[c, k]


@njit(**JIT)
def add_chunks(losses, weight_sums, corrects):
    """(loss_sum, weight_sum, n_correct) over the chunks, added in chunk order."""
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0.0
    for c in range(losses.shape[0]):
        loss_sum += losses[c]
        weight_sum += weight_sums[c]
        n_correct += corrects[c]
    return loss_sum, weight_sum, n_correct


@njit(**JIT)
def add_sums(sums):
    """(loss_sum, weight_sum, n_correct) over the chunks' rows of sums, added in chunk order."""
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
    cannot spare. `tuples` is True (else None) for a pass of at most SMALL_PASS tuples (one
    chunk) through layers at most SMALL_LAYER wide, where a matrix product's call costs more
    than its arithmetic: it goes a tuple at a time, straight into grad on act1 and delta1,
    unit buffers the caller made once (no array view, whose reference count costs tens of
    nanoseconds, per pass). Python decides it (fastbp.network.by_tuples), from the network and
    the pass length alone, so results never depend on the thread count, and the kernel
    compiles only the path it takes.

    Inlined into each parallel kernel (Numba IR inlining, so its prange loops become the
    caller's own; in a serial kernel they are plain loops): a cached kernel must never call
    another cached parallel kernel, which crashes when both are loaded from the disk cache
    (numba issue 8578).
    """
    n_chunks, n_params = rows.shape[0], rows.shape[1]
    n = stop - start
    if tuples is not None:  # one chunk: into grad itself, on the kernel's own act1 and delta1
        for k in range(n_params):
            grad[k] = 0
        return tuples_gradient(params, layout, geo, act1, delta1, X, Y, weights, order, start,
                               stop, codes, grad, dropout)
    if n_chunks == 1:
        sums[0, 0], sums[0, 1], sums[0, 2] = chunk_gradient(
            params, layout, X, Y, weights, order, start, stop, codes, rows[0], work[0],
            dropout)
    else:
        for c in prange(n_chunks):
            sums[c, 0], sums[c, 1], sums[c, 2] = chunk_gradient(
                params, layout, X, Y, weights, order, start + n * c // n_chunks,
                start + n * (c + 1) // n_chunks, codes, rows[c], work[c], dropout)
    if n_chunks * n_params > _PARALLEL_REDUCE:
        n_blocks = (n_params + _REDUCE_BLOCK - 1) // _REDUCE_BLOCK
        for b in prange(n_blocks):
            add_rows(rows, grad, b * n_params // n_blocks, (b + 1) * n_params // n_blocks)
    else:
        add_rows(rows, grad, 0, n_params)
    return add_sums(sums[:n_chunks])


@njit(parallel=True, **JIT)
def batch_gradient(params, layout, X, Y, weights, order, start, stop, codes, rows, grad,
                   dropout, tuples):
    """The summed gradient over X[order[start:stop]] into grad (see gradient_pass); dropout:
    True for a training layout with dropout, else None; tuples: see gradient_pass."""
    n_chunks = rows.shape[0]
    work = new_workspaces(params, layout, n_chunks)
    act1, delta1, _ = split_workspace(work[0], layout)
    return gradient_pass(params, layout, geometry(layout), X, Y, weights, order, start, stop,
                         codes, rows, grad, work, np.zeros((n_chunks, 3)),
                         tuples, act1, delta1, dropout)


@njit(inline="always", **JIT)
def minibatch_pass(params, layout, geo, X, Y, weights, order, batch_size, codes, opt, hyper,
                   state, rows, grad, work, sums, tuples, act1, delta1, dropout):
    """Minibatch updating: for each run of batch_size tuples of `order`, its mean gradient, one
    update. rows holds one row per chunk of a batch of batch_size tuples."""
    n = order.shape[0]
    alpha = hyper[ALPHA]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        loss_b, weight_b, correct_b = gradient_pass(params, layout, geo, X, Y, weights, order,
                                                    start, stop, codes, rows, grad, work, sums,
                                                    tuples, act1, delta1, dropout)
        n_correct += correct_b
        if weight_b == 0.0:  # a batch of zero weight has no gradient to follow
            continue
        loss_sum += (stop - start) / weight_b * loss_b
        if alpha != 0.0:
            penalty_sum += (stop - start) / weight_b * 0.5 * alpha * squared_weights(params, layout)
        apply_mean_update(params, grad, state, geo, weight_b, opt, hyper)
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
            forward(params, layout, geo, act, codes)
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
                         np.empty((n_chunks, n_units(geo)), dtype=params.dtype),
                         np.empty((n_chunks, 3)))


evaluate = twin(evaluate_serial, "evaluate", parallel=True, **JIT)


@njit(**JIT)
def predict_serial(params, layout, X, result, n_chunks, codes):
    """result[t] = output activations of the network for X[t]; one thread (`predict` is its
    parallel twin)."""
    n = X.shape[0]
    geo = geometry(layout)
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    for c in prange(n_chunks):
        act = np.empty(n_units(geo), dtype=params.dtype)
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            for i in range(geo[0, G_IN]):
                act[i] = X[t, i]
            forward(params, layout, geo, act, codes)
            for k in range(n_out):
                result[t, k] = act[out + k]


predict = twin(predict_serial, "predict", parallel=True, **JIT)


@njit(parallel=True, **JIT)
def threads_probe(n):
    """A trivial parallel loop: running it starts Numba's threading layer (fastbp._threads)."""
    total = 0
    for i in prange(n):
        total += i
    return total


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


@njit(**JIT)
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


@njit(**JIT)
def rnn_workspace(params, rl, T):
    nh, no = rl[R_HID], rl[R_OUT]
    dt = params.dtype
    return (np.zeros((T + 1) * nh, dtype=dt), np.zeros((T + 1) * nh, dtype=dt),
            np.empty(no, dtype=dt), np.empty(no, dtype=dt), np.empty(nh, dtype=dt),
            np.empty(nh, dtype=dt))


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


@njit(**JIT)
def rnn_apply(params, grad, state, rl, scale, decay, opt, hyper):
    """Move params against scale grad (+ decay w on the weight blocks), one optimizer step."""
    dt = params.dtype.type
    begin_update(hyper, opt)
    wx, bh, wy, by = rl[R_WX], rl[R_BH], rl[R_WY], rl[R_BY]
    nh, no = rl[R_HID], rl[R_OUT]
    update_flat(params, state, np.uint64(wx), np.uint64(bh - wx), grad, np.uint64(wx), dt(scale), dt(decay), opt, hyper)
    update_flat(params, state, np.uint64(bh), np.uint64(nh), grad, np.uint64(bh), dt(scale), dt(0), opt, hyper)
    update_flat(params, state, np.uint64(wy), np.uint64(by - wy), grad, np.uint64(wy), dt(scale), dt(decay), opt, hyper)
    update_flat(params, state, np.uint64(by), np.uint64(no), grad, np.uint64(by), dt(scale), dt(0), opt, hyper)


@njit(**JIT)
def rnn_case_epoch(params, rl, X2, Y2, weights, order, T, per_step, bptt, max_norm, loss_code,
                   opt, hyper, state):
    """Case updating for sequences: per sequence in `order`, BPTT, one update (as case_epoch)."""
    H, DA, o, do, dh, dh_next = rnn_workspace(params, rl, T)
    grad = np.empty(params.shape[0], dtype=params.dtype)
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
    losses = np.zeros(n_chunks)
    weight_sums = np.zeros(n_chunks)
    corrects = np.zeros(n_chunks)
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


@njit(**JIT)
def rnn_batches(params, rl, X2, Y2, weights, order, batch_size, T, per_step, bptt, max_norm,
                loss_code, opt, hyper, state, rows, grad):
    """Minibatch (and, with one batch, epoch) updating for sequences: per run of batch_size
    sequences of `order`, the mean gradient, clipped, one update."""
    n = order.shape[0]
    alpha = hyper[ALPHA]
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
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


@njit(parallel=True, **JIT)
def rnn_evaluate(params, rl, X2, Y2, weights, T, per_step, loss_code, n_chunks):
    """Forward passes only: (sum w E, sum w, sum of fractions right) at the current weights."""
    n = X2.shape[0] // T
    no = np.uint64(rl[R_OUT])
    losses = np.zeros(n_chunks)
    weight_sums = np.zeros(n_chunks)
    corrects = np.zeros(n_chunks)
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


@njit(parallel=True, **JIT)
def rnn_predict(params, rl, X2, T, per_step, result, n_chunks):
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


# -- batch normalisation --------------------------------------------------------------------------


@njit(**JIT)
def bn_matrix(buf, units_start, size, b):
    start = b * units_start
    return buf[start:start + b * size].reshape((b, size))


@njit(**JIT)
def bn_forward(params, layout, bn, stats, X, order, p0, b, A, ZH, inv, training, update, momentum,
               eps):
    """Forward pass of the b tuples X[order[p0:p0+b]] into A (ZH: the normalised inputs, inv:
    1/sqrt(var + eps) per unit). training: batch statistics (and, with update, the running
    ones move towards them); else the running statistics (inference)."""
    dt = params.dtype.type
    inputs = bn_matrix(A, 0, layout[0, FAN_IN], b)
    for r in range(b):
        t = order[p0 + r]
        for i in range(inputs.shape[1]):
            inputs[r, i] = X[t, i]
    units = 0
    for l in range(layout.shape[0]):
        fan_in, fan_out, code = layout[l, FAN_IN], layout[l, FAN_OUT], layout[l, ACT]
        W = params[layout[l, W_OFF]:layout[l, B_OFF]].reshape((fan_in, fan_out))
        bias = params[layout[l, B_OFF]:layout[l, B_OFF] + fan_out]
        out_start = units + fan_in
        Z = bn_matrix(A, out_start, fan_out, b)
        np.dot(bn_matrix(A, units, fan_in, b), W, Z)
        for r in range(b):
            for j in range(fan_out):
                Z[r, j] += bias[j]
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


@njit(**JIT)
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


@njit(**JIT)
def bn_workspace(params, layout, b):
    geo = geometry(layout)
    units = n_units(geo)
    dt = params.dtype
    return (np.empty(b * units, dtype=dt), np.empty(b * units, dtype=dt),
            np.empty(b * units, dtype=dt), np.empty(units))


@njit(**JIT)
def bn_batches(params, layout, bn, stats, X, Y, weights, order, batch_size, loss_code, opt, hyper,
               state, grad, momentum, eps, bn_off):
    """Minibatch (one batch: epoch) updating of a network with batch normalisation; gamma and
    beta (params[bn_off:]) move like biases (no L2)."""
    n = order.shape[0]
    A, ZH, D, inv = bn_workspace(params, layout, min(batch_size, n))
    geo = geometry(layout)
    alpha = hyper[ALPHA]
    dt = params.dtype.type
    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
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
    A, ZH, D, inv = bn_workspace(params, layout, min(BLOCK, n))
    order = np.arange(n)
    last = layout.shape[0] - 1
    n_out, code = layout[last, FAN_OUT], layout[last, ACT]
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0
    for p0 in range(0, n, BLOCK):
        b = min(BLOCK, n - p0)
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


# -- training runs: many epochs per kernel call -------------------------------------------------


# The bookkeeping kernels round as Python does: no fastmath (a reciprocal or a fused
# multiply-add would move a learning rate or a loss by an ulp from what the rules promise).
PLAIN_JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(inline="always", **JIT)
def copy_into(dst, src):
    """dst[:] = src for two arrays of one length, as a loop: the slice assignment compiles a
    shape check whose error message alone took 2 s to compile."""
    for k in range(dst.shape[0]):
        dst[k] = src[k]


@njit(**PLAIN_JIT)
def begin_epoch(ctl, num, hist, hyper, e):
    """Epoch e's learning rate: into hyper (for the pass) and the history."""
    schedule = ctl[C_SCHEDULE]
    if schedule == SCHED_INV_T:
        num[N_LR] = num[N_LR0] / e
    elif schedule == SCHED_INVSCALING:
        num[N_LR] = num[N_LR0] / np.float64(e) ** num[N_POWER_T]
    hyper[LR] = num[N_LR]
    hist[H_LEARNING_RATE, e - 1] = num[N_LR]


@njit(**JIT)
def set_drop_seed(layout, seed, e):
    """The dropout masks of the pass serving epoch e's updates (a no-op without dropout)."""
    if layout.shape[1] > DROP:
        key = splitmix(np.uint64(seed) ^ DROPOUT_KEY ^ splitmix(np.uint64(e)))
        for l in range(layout.shape[0]):
            layout[l, DROP_SEED] = np.int64(key >> np.uint64(1))


@njit(**JIT)
def epoch_order(ctl, order, orders, e):
    """Put the tuple order of epoch e (see C_ORDER) in `order`, the run's own buffer (copied
    element by element: a view of `orders` would cost a reference count per epoch)."""
    kind = ctl[C_ORDER]
    if kind == ORDER_GIVEN:
        row = e - ctl[C_ORDERS_FIRST]
        for p in range(order.shape[0]):
            order[p] = orders[row, p]
    elif kind == ORDER_HASHED:
        hashed_order(order, ctl[C_SEED], e)


@njit(**PLAIN_JIT)
def record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct):
    """The loss and accuracy of a pass (see "whole passes") into the history: the mean over
    its n tuples, with scikit-learn's scale of the data term and its L2 term where asked."""
    loss = num[N_DATA_SCALE] * loss_sum
    if ctl[C_PENALTY]:
        loss += penalty_sum
    hist[H_LOSS, col] = loss / n
    if ctl[C_CLASSIFIER]:
        hist[H_ACCURACY, col] = n_correct / n


@njit(**PLAIN_JIT)
def record_evaluation(ctl, hist, col, n, loss_sum, weight_sum, n_correct):
    """The loss and accuracy of the network after the epoch (track="end") into the history,
    as Network.evaluate states them: sum w E / sum w, the fraction right."""
    hist[H_LOSS, col] = loss_sum / weight_sum
    if ctl[C_CLASSIFIER]:
        hist[H_ACCURACY, col] = n_correct / n


@njit(**PLAIN_JIT)
def record_validation(ctl, hist, col, n, total, r2_denominator):
    """The validation numbers of one epoch from the chunks' sums (V_* columns): the mean loss,
    the fraction right, and scikit-learn's score: its accuracy, or its R^2 (uniform over the
    outputs, 1 for a perfect fit of a constant, 0 for any other fit of one; NaN when a
    prediction is not finite), as its MLP's _score computes them."""
    hist[H_VAL_LOSS, col] = total[V_LOSS] / total[V_WEIGHT]
    if ctl[C_CLASSIFIER]:
        hist[H_VAL_ACCURACY, col] = total[V_RIGHT] / n
    kind = ctl[C_SCORE]
    score = np.nan
    if kind == SCORE_ACCURACY:
        score = total[V_SK_RIGHT] / total[V_SK_WEIGHT]
    elif kind == SCORE_R2 and total[V_NONFINITE] == 0.0:
        n_out = r2_denominator.shape[0]
        score = 0.0
        for k in range(n_out):
            numerator, denominator = total[V_SQUARED + k], r2_denominator[k]
            if numerator != 0.0 and denominator != 0.0:
                score += 1.0 - numerator / denominator
            elif numerator == 0.0:
                score += 1.0
        score /= n_out
    hist[H_VAL_SCORE, col] = score


@njit(**PLAIN_JIT)
def pend(params, layout, ctl, num, alpha, n, loss_sum, weight_sum, n_correct):
    """Keep a full-batch pass's numbers for the epoch whose update follows its gradient:
    n/S sum w E, the L2 term at the weights it ran at, the count right and S."""
    penalty = 0.5 * alpha * squared_weights(params, layout) if alpha != 0.0 else 0.0
    num[N_PEND_LOSS] = n / weight_sum * loss_sum
    num[N_PEND_PENALTY] = n / weight_sum * penalty
    num[N_PEND_CORRECT] = n_correct
    num[N_PEND_WEIGHT] = weight_sum
    ctl[C_PENDING] = 1


@njit(**JIT)
def scan_weights(params, prev, record):
    """(every weight finite, the largest |change| since prev); with `record`, prev catches up
    with params (the weight-change history), in the same pass."""
    finite = True
    change = 0.0
    if record:
        for k in range(params.shape[0]):
            w = params[k]
            finite = finite and np.isfinite(w)
            change = max(change, np.float64(abs(w - prev[k])))
            prev[k] = w
    else:
        for k in range(params.shape[0]):
            finite = finite and np.isfinite(params[k])
    return finite, change


@njit(**PLAIN_JIT)
def end_epoch(params, ctl, num, hist, best, e, n, finite, change):
    """Book epoch e, whose history column the run kernel has filled (learning rate, loss,
    accuracy, validation, seconds), and apply the rules: divergence, then the stop rules in
    train()'s order of precedence, then scikit-learn's schedules that follow the loss.
    Returns True when the run stops here; ctl[C_STATUS] says why. `finite`: the epoch's
    numbers and weights were all finite; `change`: the largest weight change.

    A diverged epoch is not booked (C_EPOCH stays e - 1 and C_DIVERGED_AT says e; Python
    goes back to the last finite epoch), except under scikit-learn's early stopping with a
    best epoch to go back to: it books the epoch (a NaN score, as scikit-learn records) and
    stops, and Python restores the best weights (scikit-learn's issue 29504)."""
    col = e - 1
    loss = hist[H_LOSS, col]
    es = ctl[C_ES_RULE]
    diverged = not (finite and np.isfinite(loss))
    if diverged:
        ctl[C_DIVERGED_AT] = e
        score = hist[H_VAL_SCORE, col]
        if not (es == RULE_SKLEARN and (num[N_BEST_VAL] > -np.inf or score > num[N_BEST_VAL])):
            ctl[C_STATUS] = STOP_DIVERGED
            return True
    ctl[C_EPOCH] = e
    ctl[C_SAMPLES] += n
    if ctl[C_WEIGHT_CHANGE]:
        hist[H_WEIGHT_CHANGE, col] = change
    stop, event = RUNNING, EVENT_NONE
    patience, tol, tol_rule = ctl[C_PATIENCE], num[N_TOL], ctl[C_TOL_RULE]
    if tol_rule == RULE_TRAIN or (tol_rule == RULE_SKLEARN and es != RULE_SKLEARN):
        # no improvement of the training loss by tol (under scikit-learn's early stopping the
        # validation score feeds the counter instead)
        if loss > num[N_BEST_LOSS] - tol:
            ctl[C_NO_IMPROVEMENT] += 1
        else:
            ctl[C_NO_IMPROVEMENT] = 0
        if loss < num[N_BEST_LOSS]:
            num[N_BEST_LOSS] = loss
        if tol_rule == RULE_TRAIN and ctl[C_NO_IMPROVEMENT] > patience:
            stop = STOP_NO_IMPROVEMENT
    if num[N_MIN_WEIGHT_CHANGE] >= 0.0 and change < num[N_MIN_WEIGHT_CHANGE]:
        stop = STOP_WEIGHT_CHANGE
    if num[N_MAX_MISCLASSIFIED] >= 0.0 and 1.0 - hist[H_ACCURACY, col] <= num[N_MAX_MISCLASSIFIED]:
        stop = STOP_MISCLASSIFIED
    if es == RULE_TRAIN:  # the validation loss has not improved by val_tol for `patience` epochs
        val_loss = hist[H_VAL_LOSS, col]
        if val_loss < num[N_BEST_VAL] - num[N_VAL_TOL]:
            ctl[C_STALL] = 0
        else:
            ctl[C_STALL] += 1
        if val_loss < num[N_BEST_VAL]:
            num[N_BEST_VAL] = val_loss
            copy_into(best, params)
            ctl[C_BEST_EPOCH] = e
        if ctl[C_STALL] > patience:
            stop = STOP_EARLY_STOPPING
            copy_into(params, best)  # the best epoch's weights come back
            ctl[C_PENDING] = 0
    elif es == RULE_SKLEARN:  # the validation score has not improved by tol
        score = hist[H_VAL_SCORE, col]
        if score < num[N_BEST_VAL] + tol:
            ctl[C_NO_IMPROVEMENT] += 1
        else:
            ctl[C_NO_IMPROVEMENT] = 0
        if score > num[N_BEST_VAL]:
            num[N_BEST_VAL] = score
            copy_into(best, params)
            ctl[C_BEST_EPOCH] = e
    if tol_rule == RULE_SKLEARN:  # scikit-learn's iteration_ends, then trigger_stopping
        schedule = ctl[C_SCHEDULE]
        if schedule == SCHED_SAMPLES_INVSCALING:
            num[N_LR] = num[N_LR0] / np.float64(ctl[C_SAMPLES] + 1) ** num[N_POWER_T]
        if ctl[C_NO_IMPROVEMENT] > patience:
            if schedule != SCHED_ADAPTIVE:
                stop, event = STOP_NO_IMPROVEMENT, EVENT_STOP
            elif num[N_LR] <= MIN_ADAPTIVE_RATE:
                stop, event = STOP_NO_IMPROVEMENT, EVENT_LR_TOO_SMALL
            else:
                num[N_LR] /= ADAPTIVE_DIVISOR
                ctl[C_NO_IMPROVEMENT] = 0
                event = EVENT_LR_LOWERED
    hist[H_EVENT, col] = event
    if stop == RUNNING and e >= ctl[C_LAST]:
        stop = STOP_EPOCHS
    if diverged:
        stop = STOP_DIVERGED
    ctl[C_STATUS] = stop
    return stop != RUNNING


@njit(inline="always", **JIT)
def predicted_right(act, out, n_out, Y, t, code):
    """1 if scikit-learn's predict gets tuple t right: the first largest softmax output (a NaN
    counts as largest, as in numpy's argmax), or every logistic output above 0.5 exactly
    where its 0/1 target is 1."""
    if code == SOFTMAX:
        best_o = best_t = np.uint64(0)
        for k in range(n_out):
            if act[out + k] != act[out + k]:
                best_o = k
                break
            if act[out + k] > act[out + best_o]:
                best_o = k
        for k in range(n_out):
            if Y[t, k] > Y[t, best_t]:
                best_t = k
        return 1 if best_o == best_t else 0
    half = act.dtype.type(0.5)
    for k in range(n_out):
        if (act[out + k] > half) != (Y[t, k] > 0.5):
            return 0
    return 1


@njit(inline="always", **JIT)
def validate(params, layout, geo, val, codes, ctl, hist, col):
    """Forward passes over the validation tuples, in fixed chunks (prange, inlined as
    gradient_pass is), into history column col (see record_validation).

    val = (X, Y, Y_score, weights, r2_denominator, acts, sums): Y in the network's dtype for
    the loss, Y_score (float64) and weights (empty: all 1) for scikit-learn's score, acts one
    unit buffer per chunk, sums (chunks + 1, V_SQUARED + outputs) float64 scratch."""
    X, Y, Y_score, weights, r2_denominator, acts, sums = val
    n = X.shape[0]
    n_chunks = acts.shape[0]
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    kind = ctl[C_SCORE]
    for c in prange(n_chunks):
        act = acts[c]
        s = sums[c]
        s[:] = 0.0
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            for i in range(geo[0, G_IN]):
                act[i] = X[t, i]
            forward(params, layout, geo, act, codes)
            s[V_LOSS] += loss_of(act, out, n_out, Y, t, codes, layout)
            s[V_WEIGHT] += 1.0
            s[V_RIGHT] += correct_of(act, out, n_out, Y, t, codes, layout)
            for k in range(n_out):
                if not np.isfinite(act[out + k]):
                    s[V_NONFINITE] = 1.0
            if kind == SCORE_ACCURACY:
                weight = weight_of(weights, t)
                s[V_SK_RIGHT] += weight * sk_correct_of(act, out, n_out, Y_score, t, codes, layout)
                s[V_SK_WEIGHT] += weight
            elif kind == SCORE_R2:
                weight = weight_of(weights, t)
                for k in range(n_out):
                    d = Y_score[t, k] - np.float64(act[out + k])
                    s[V_SQUARED + k] += weight * d * d
    total = sums[n_chunks]
    total[:] = 0.0
    for c in range(n_chunks):  # in chunk order: the same bits on any number of threads
        for k in range(total.shape[0]):
            total[k] += sums[c, k]
    record_validation(ctl, hist, col, n, total, r2_denominator)


@njit(**JIT)
def begin_slice(params, ctl, prev):
    """The weight-change history measures from the weights as the slice finds them (Python
    may have changed them since the last slice: a callback, a restored best epoch)."""
    if ctl[C_WEIGHT_CHANGE]:
        copy_into(prev, params)


@njit(**JIT)
def run_case(params, layout, X, Y, weights, codes, optim, run, work, val, evaluation,
                  general, dropout, small, large):
    """Case updating, epoch after epoch (see "training runs"). optim = (opt, hyper, state);
    run = (ctl, num, hist, order, orders, prev, best); work = (act, delta), the pass's unit
    buffers; evaluation: None, or (acts, sums), the track="end" evaluation's. small, large:
    one is True, the other None: the pass is case_pass_small or case_pass.

    Numba prunes a branch guarded by `arg is None` when the argument is None (and only then:
    `True is None` is not pruned), so what is off costs no compile time: a kernel compiles
    only the pass it runs, the evaluation (track="end"), validation, optimizers other than
    plain SGD (general) and dropout only when they are on."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    act, delta = work
    geo = geometry(layout)
    n = X.shape[0]
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        set_drop_seed(layout, ctl[C_SEED], e)
        epoch_order(ctl, order, orders, e)
        if large is not None:
            loss_sum, penalty_sum, n_correct = case_pass(
                params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                state, general, dropout)
        if small is not None:
            loss_sum, penalty_sum, n_correct = case_pass_small(
                params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                state, general)
        if evaluation is not None:  # track="end"
            acts, sums = evaluation
            s, w, c = evaluate_pass(params, layout, geo, X, Y, weights, codes, acts, sums)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            validate(params, layout, geo, val, codes, ctl, hist, col)
        finite, change = scan_weights(params, prev, ctl[C_WEIGHT_CHANGE] != 0)
        now = monotonic_ns()
        hist[H_SECONDS, col] = (now - clock) * 1e-9
        clock = now
        if end_epoch(params, ctl, num, hist, best, e, n, finite, change) or \
                now - start >= ctl[C_BUDGET_NS]:
            break


run_case_parallel = twin(run_case, "run_case_parallel", parallel=True, **JIT)


@njit(**JIT)
def run_minibatch(params, layout, X, Y, weights, codes, batch_size, optim, run, work,
                  val, evaluation, dropout, tuples):
    """Minibatch updating, epoch after epoch. work = (rows, grad, chunk_work, sums): a batch's
    gradient rows and workspaces; evaluation and dropout as in run_case."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    rows, grad, chunk_work, sums = work
    geo = geometry(layout)
    act1, delta1, _ = split_workspace(chunk_work[0], layout)
    n = X.shape[0]
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        set_drop_seed(layout, ctl[C_SEED], e)
        epoch_order(ctl, order, orders, e)
        loss_sum, penalty_sum, n_correct = minibatch_pass(
            params, layout, geo, X, Y, weights, order, batch_size, codes, opt, hyper, state,
            rows, grad, chunk_work, sums, tuples, act1, delta1, dropout)
        if evaluation is not None:  # track="end"
            acts, eval_sums = evaluation
            s, w, c = evaluate_pass(params, layout, geo, X, Y, weights, codes, acts,
                                    eval_sums)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            validate(params, layout, geo, val, codes, ctl, hist, col)
        finite, change = scan_weights(params, prev, ctl[C_WEIGHT_CHANGE] != 0)
        now = monotonic_ns()
        hist[H_SECONDS, col] = (now - clock) * 1e-9
        clock = now
        if end_epoch(params, ctl, num, hist, best, e, n, finite, change) or \
                now - start >= ctl[C_BUDGET_NS]:
            break


run_minibatch_parallel = twin(run_minibatch, "run_minibatch_parallel", parallel=True, **JIT)


@njit(**JIT)
def run_full_batch(params, layout, X, Y, weights, codes, optim, run, work, val, dropout,
                   tuples):
    """Epoch updating, epoch after epoch: each epoch applies the gradient the previous pass
    left in grad (a first pass makes one when C_PENDING is 0), then passes at the new weights,
    which gives the loss after the epoch (track="end", for free) and the next gradient.
    work = (rows, grad, chunk_work, sums), as run_minibatch's."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    rows, grad, chunk_work, sums = work
    geo = geometry(layout)
    act1, delta1, _ = split_workspace(chunk_work[0], layout)
    n = X.shape[0]
    alpha = hyper[ALPHA]
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        if ctl[C_PENDING] == 0:  # the gradient at the current weights
            set_drop_seed(layout, ctl[C_SEED], e)
            s, w, c = gradient_pass(params, layout, geo, X, Y, weights, order, 0, n, codes,
                                    rows, grad, chunk_work, sums, tuples, act1, delta1, dropout)
            pend(params, layout, ctl, num, alpha, n, s, w, c)
        passed_loss, passed_penalty = num[N_PEND_LOSS], num[N_PEND_PENALTY]
        passed_correct = num[N_PEND_CORRECT]
        apply_mean_update(params, grad, state, geo, num[N_PEND_WEIGHT], opt, hyper)
        set_drop_seed(layout, ctl[C_SEED], e + 1)  # this pass serves the next epoch's update
        s, w, c = gradient_pass(params, layout, geo, X, Y, weights, order, 0, n, codes, rows,
                                grad, chunk_work, sums, tuples, act1, delta1, dropout)
        pend(params, layout, ctl, num, alpha, n, s, w, c)
        if ctl[C_TRACK_END]:
            record_pass(ctl, num, hist, col, n, num[N_PEND_LOSS], num[N_PEND_PENALTY],
                        num[N_PEND_CORRECT])
        else:
            record_pass(ctl, num, hist, col, n, passed_loss, passed_penalty, passed_correct)
        if val is not None:
            validate(params, layout, geo, val, codes, ctl, hist, col)
        finite, change = scan_weights(params, prev, ctl[C_WEIGHT_CHANGE] != 0)
        # the loss at the new weights counts too: a network that predicts NaN is not kept.
        # (Each term on its own: under fastmath, isfinite(a + b) may fold to True.)
        finite = finite and np.isfinite(num[N_PEND_LOSS]) and np.isfinite(num[N_PEND_PENALTY])
        now = monotonic_ns()
        hist[H_SECONDS, col] = (now - clock) * 1e-9
        clock = now
        if end_epoch(params, ctl, num, hist, best, e, n, finite, change) or \
                now - start >= ctl[C_BUDGET_NS]:
            break


run_full_batch_parallel = twin(run_full_batch, "run_full_batch_parallel", parallel=True, **JIT)


@njit(**JIT)
def run_rnn(params, rl, X2, Y2, weights, shape, loss_code, batch_size, optim, run, rows, grad,
            val):
    """An Elman network's epochs: case updating (batch_size 0) or batches of batch_size
    sequences (all of them: epoch updating). shape = (T, per_step, bptt, max_norm, chunks):
    the sequences, backpropagation through time, the track="end" evaluation's chunk count;
    val = (X2, Y2, T, per_step, chunks) or None."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    T, per_step, bptt, max_norm, eval_chunks = shape
    n = X2.shape[0] // T
    empty = np.empty(0, dtype=weights.dtype)
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        epoch_order(ctl, order, orders, e)
        if batch_size == 0:
            loss_sum, penalty_sum, n_correct = rnn_case_epoch(
                params, rl, X2, Y2, weights, order, T, per_step, bptt, max_norm, loss_code, opt,
                hyper, state)
        else:
            loss_sum, penalty_sum, n_correct = rnn_batches(
                params, rl, X2, Y2, weights, order, batch_size, T, per_step, bptt, max_norm,
                loss_code, opt, hyper, state, rows, grad)
        if ctl[C_TRACK_END]:
            s, w, c = rnn_evaluate(params, rl, X2, Y2, weights, T, per_step, loss_code,
                                   eval_chunks)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            Xv, Yv, Tv, per_step_v, val_chunks = val
            nv = Xv.shape[0] // Tv
            s, w, c = rnn_evaluate(params, rl, Xv, Yv, empty, Tv, per_step_v, loss_code,
                                   val_chunks)
            hist[H_VAL_LOSS, col] = s / w
            if ctl[C_CLASSIFIER]:
                hist[H_VAL_ACCURACY, col] = c / nv
        finite, change = scan_weights(params, prev, ctl[C_WEIGHT_CHANGE] != 0)
        now = monotonic_ns()
        hist[H_SECONDS, col] = (now - clock) * 1e-9
        clock = now
        if end_epoch(params, ctl, num, hist, best, e, n, finite, change) or \
                now - start >= ctl[C_BUDGET_NS]:
            break


@njit(**JIT)
def run_batch_norm(params, layout, X, Y, weights, loss_code, batch_size, norm, optim, run, grad,
                   val):
    """A batch-normalised network's epochs in batches of batch_size (all tuples: epoch
    updating). norm = (bn, stats, momentum, eps, bn_off, empty_result); val = (X, Y) or None,
    both evaluated with the running statistics (inference mode)."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    bn, stats, momentum, eps, bn_off, no_result = norm
    n = X.shape[0]
    empty = np.empty(0, dtype=weights.dtype)
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        epoch_order(ctl, order, orders, e)
        loss_sum, penalty_sum, n_correct = bn_batches(
            params, layout, bn, stats, X, Y, weights, order, batch_size, loss_code, opt, hyper,
            state, grad, momentum, eps, bn_off)
        if ctl[C_TRACK_END]:
            s, w, c = bn_evaluate(params, layout, bn, stats, X, Y, weights, loss_code, eps,
                                  no_result)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            Xv, Yv = val
            s, w, c = bn_evaluate(params, layout, bn, stats, Xv, Yv, empty, loss_code, eps,
                                  no_result)
            hist[H_VAL_LOSS, col] = s / w
            if ctl[C_CLASSIFIER]:
                hist[H_VAL_ACCURACY, col] = c / Xv.shape[0]
        finite, change = scan_weights(params, prev, ctl[C_WEIGHT_CHANGE] != 0)
        now = monotonic_ns()
        hist[H_SECONDS, col] = (now - clock) * 1e-9
        clock = now
        if end_epoch(params, ctl, num, hist, best, e, n, finite, change) or \
                now - start >= ctl[C_BUDGET_NS]:
            break
