"""exp, the logistic function and tanh without libm, the clock, and the activations and
their derivatives over a run of units (the per-unit arithmetic every kernel inlines).
"""
import operator
import os
import sys

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import min_max_typing, new_array_typing
from ._setup import EXACT_JIT, INTERNAL, JIT
from .codes import *  # noqa: F401,F403  (compiled in as constants)

# -- min and max of integers, and eps, without a function of their own ---------------------------
# Builtin min and max are an @overload in Numba: each signature they are used with compiles a
# function of its own, and np.finfo four (0.2 s on the digits drop-in program, and a cached
# program then imported Numba's numpy implementations to load them). These intrinsics
# compile into their caller: for integers (offsets, batch and block sizes) the same
# instructions; floats keep the builtins (see _jit.min_max_typing).

@intrinsic
def larger(typingctx, a, b):
    """max(a, b) of two integers, as Python's: a unless b > a."""
    return min_max_typing(typingctx, a, b, operator.gt)


@intrinsic
def smaller(typingctx, a, b):
    """min(a, b) of two integers, as Python's: a unless b < a."""
    return min_max_typing(typingctx, a, b, operator.lt)


@intrinsic
def epsilon(typingctx, ary):
    """np.finfo(ary.dtype).eps, a float64 constant of the compiled code."""
    if not (isinstance(ary, types.Array) and isinstance(ary.dtype, types.Float)):
        return None
    value = float(np.finfo(str(ary.dtype)).eps)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.float64, value)
    return types.float64(ary), codegen


# -- new arrays without a function of their own ---------------------------------------------------
# np.empty and np.zeros are @overloads too: each signature compiled a function of its own, and
# np.zeros two more (0.3 s of the XOR program's first run: geometry's table and predict's
# buffers). These allocate in their caller with the code np.empty's implementation runs
# (Numba's arrayobj._empty_nd_impl: NRT memory, the same checks), np.zeros' memset after it
# (where a parallel twin's np.zeros was a parallel loop of its own: the same zeros).

@intrinsic
def empty_array(typingctx, shape, dtype):
    """np.empty(shape, dtype=dtype), compiled into the caller."""
    return new_array_typing(shape, dtype, zeroed=False)


@intrinsic
def zero_array(typingctx, shape, dtype):
    """np.zeros(shape, dtype=dtype), compiled into the caller."""
    return new_array_typing(shape, dtype, zeroed=True)


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


@njit(**EXACT_JIT, **INTERNAL)
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


@njit(**EXACT_JIT, **INTERNAL)
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


@njit(**EXACT_JIT, **INTERNAL)
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
def prefetch(typingctx, array, row, col):
    """Ask the cache for the line holding array[row, col] (llvm.prefetch: a hint, read,
    high locality; no load, no fault, no bounds check: only the address is computed)."""
    if not (isinstance(array, types.Array) and array.ndim == 2 and
            isinstance(row, types.Integer) and isinstance(col, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        index = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2)]
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, index,
                                       wraparound=False, boundscheck=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.void(array, row, col), codegen


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


# -- the activations and their derivatives --------------------------------------------------------
# One inlined function per activation (UNITS, DERIVATIVES): where the code is known when a
# kernel compiles (Codes, the shaped passes) only its own function is inlined; activate and
# times_derivative choose at run time. Inlining one function that held every activation cost
# the first XOR program ~0.7 s of its compilation (Numba copies a function's whole IR at each
# inlined call, branches it later prunes included).

@njit(inline="always", **JIT)
def identity_units(v, start, n):
    pass


@njit(inline="always", **JIT)
def logistic_units(v, start, n):
    for j in range(n):
        v[start + j] = fast_logistic(v[start + j])


@njit(inline="always", **JIT)
def tanh_units(v, start, n):
    for j in range(n):
        v[start + j] = fast_tanh(v[start + j])


@njit(inline="always", **JIT)
def relu_units(v, start, n):
    zero = v.dtype.type(0)
    for j in range(n):
        v[start + j] = max(v[start + j], zero)


@njit(inline="always", **JIT)
def exp_units(v, start, n):
    for j in range(n):
        v[start + j] = fast_exp(v[start + j])


@njit(inline="always", **JIT)
def leaky_relu_units(v, start, n):
    zero, slope = v.dtype.type(0), v.dtype.type(LEAKY_SLOPE)
    for j in range(n):
        a = v[start + j]
        v[start + j] = a if a > zero else slope * a


@njit(inline="always", **JIT)
def elu_units(v, start, n):
    zero, one = v.dtype.type(0), v.dtype.type(1)
    for j in range(n):
        a = v[start + j]
        v[start + j] = a if a > zero else fast_exp(a) - one


@njit(inline="always", **JIT)
def softplus_units(v, start, n):
    linear = v.dtype.type(SOFTPLUS_LINEAR)
    for j in range(n):
        a = v[start + j]
        v[start + j] = a if a > linear else np.log1p(fast_exp(a))


@njit(inline="always", **JIT)
def softmax_units(v, start, n):
    top = v[start]
    for j in range(n):
        top = max(top, v[start + j])
    total = v.dtype.type(0)
    for j in range(n):
        v[start + j] = fast_exp(v[start + j] - top)
        total += v[start + j]
    inv = v.dtype.type(1) / total
    for j in range(n):
        v[start + j] *= inv


# f'(I_j) written from the unit's output O_j, as the textbook does (delta_j *= f'(I_j)).
@njit(inline="always", **JIT)
def identity_derivative(delta, act, start, n):
    pass


@njit(inline="always", **JIT)
def logistic_derivative(delta, act, start, n):
    one = act.dtype.type(1)
    for j in range(n):
        delta[start + j] *= act[start + j] * (one - act[start + j])


@njit(inline="always", **JIT)
def tanh_derivative(delta, act, start, n):
    one = act.dtype.type(1)
    for j in range(n):
        delta[start + j] *= one - act[start + j] * act[start + j]


@njit(inline="always", **JIT)
def relu_derivative(delta, act, start, n):
    zero = act.dtype.type(0)
    for j in range(n):
        delta[start + j] = delta[start + j] if act[start + j] > zero else zero


@njit(inline="always", **JIT)
def exp_derivative(delta, act, start, n):
    for j in range(n):
        delta[start + j] *= act[start + j]


@njit(inline="always", **JIT)
def leaky_relu_derivative(delta, act, start, n):
    zero, slope = act.dtype.type(0), act.dtype.type(LEAKY_SLOPE)
    for j in range(n):
        if not act[start + j] > zero:
            delta[start + j] *= slope


@njit(inline="always", **JIT)
def elu_derivative(delta, act, start, n):  # f'(a) = 1 for a > 0, else exp(a) = O + 1
    zero, one = act.dtype.type(0), act.dtype.type(1)
    for j in range(n):
        if not act[start + j] > zero:
            delta[start + j] *= act[start + j] + one


@njit(inline="always", **JIT)
def softplus_derivative(delta, act, start, n):  # f'(a) = logistic(a) = 1 - exp(-O)
    one = act.dtype.type(1)
    for j in range(n):
        delta[start + j] *= one - fast_exp(-act[start + j])


# softmax has no derivative here: its layer is the output, whose error the loss gives directly.
UNITS = {IDENTITY: identity_units, LOGISTIC: logistic_units, TANH: tanh_units,
         RELU: relu_units, EXP: exp_units, LEAKY_RELU: leaky_relu_units, ELU: elu_units,
         SOFTPLUS: softplus_units, SOFTMAX: softmax_units}
DERIVATIVES = {IDENTITY: identity_derivative, LOGISTIC: logistic_derivative,
               TANH: tanh_derivative, RELU: relu_derivative, EXP: exp_derivative,
               LEAKY_RELU: leaky_relu_derivative, ELU: elu_derivative,
               SOFTPLUS: softplus_derivative}


@njit(inline="always", **JIT)
def activate(v, start, n, code):
    """O_j = f(I_j), in place on the n units v[start:start+n], f chosen by `code` at run time."""
    if code == LOGISTIC:
        logistic_units(v, start, n)
    elif code == TANH:
        tanh_units(v, start, n)
    elif code == RELU:
        relu_units(v, start, n)
    elif code == EXP:
        exp_units(v, start, n)
    elif code == LEAKY_RELU:
        leaky_relu_units(v, start, n)
    elif code == ELU:
        elu_units(v, start, n)
    elif code == SOFTPLUS:
        softplus_units(v, start, n)
    elif code == SOFTMAX:
        softmax_units(v, start, n)


@njit(inline="always", **JIT)
def times_derivative(delta, act, start, n, code):
    """delta_j *= f'(I_j), f chosen by `code` at run time."""
    if code == LOGISTIC:
        logistic_derivative(delta, act, start, n)
    elif code == TANH:
        tanh_derivative(delta, act, start, n)
    elif code == RELU:
        relu_derivative(delta, act, start, n)
    elif code == EXP:
        exp_derivative(delta, act, start, n)
    elif code == LEAKY_RELU:
        leaky_relu_derivative(delta, act, start, n)
    elif code == ELU:
        elu_derivative(delta, act, start, n)
    elif code == SOFTPLUS:
        softplus_derivative(delta, act, start, n)
