"""What the compiled code needs set up before its first @njit: libtbb, twin(), and the Numba
type of the codes a kernel compiles in (Codes).

Numba's threading layer: the parallel kernels run on one of Numba's threading layers, chosen
at the first parallel call: TBB, else OpenMP, else the built-in workqueue.
- workqueue is not safe for parallel kernels launched from several Python threads at once
  (fastbp._threads makes such fits take turns).
- OpenMP is thread-safe, but its workers spin while they wait: with more busy threads than
  cores (two fits at once on 2 cores, or any other process busy) every parallel region
  costs milliseconds; minibatch updating on `mid` measured 7.7 s per epoch instead of 0.05 s
  with one other process busy on a 2-core machine. It is also unsafe to fork after it
  started (GNU OpenMP).
- TBB is thread- and fork-safe and does not spin, so it comes first. pip's `tbb` wheel (a
  dependency) installs libtbb in <prefix>/lib, where Numba's TBB extension cannot find it;
  loading it first, by its full path, makes the layer available. It is loaded when the
  kernels are (before any parallel kernel can run), not at `import fastbp`.
NUMBA_THREADING_LAYER set by the user is respected.
"""
import ctypes
import operator
import os
from types import FunctionType

from numba import njit, types
from numba._dispatcher import compute_fingerprint
from numba.extending import NativeValue, models, overload, register_model, typeof_impl, unbox

from ._options import OVERLOAD
from .codes import Codes, CompiledIn, Optimizer, Pack, Shape

_TBB_NAMES = ("libtbb.so.12", "libtbb.12.dylib")
_tbb = {"path": None, "tried": False}


def preload_tbb():
    """Load the tbb wheel's libtbb into the process (global symbols), once; its path, or None."""
    if _tbb["tried"]:
        return _tbb["path"]
    _tbb["tried"] = True
    import importlib.metadata
    try:
        files = importlib.metadata.files("tbb") or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name in _TBB_NAMES:
            path = file.locate()
            try:
                ctypes.CDLL(os.fspath(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return None
            _tbb["path"] = path
            return path
    return None


def twin(kernel, name, calls=None, **options):
    """A second compiled kernel from `kernel`'s Python code, under its own name (and so its
    own cache files), compiled with other options: the parallel twin of a serial kernel.

    The serial kernel is a plain function, so Numba prunes what its None arguments switch off
    before it inlines anything (validation, the track="end" evaluation: their code is never
    even inlined); a twin compiled with parallel=True runs the prange loops of what it
    inlines on several threads. One body, two kernels, no wrapper that would inline the body
    whole.

    calls = {name: kernel}: the twin calls these kernels where the body names others (a
    parallel pass for a serial one that is not inlined; the twin itself then needs no
    parallel=True)."""
    py_func = kernel.py_func
    unknown = set(calls or ()) - set(py_func.__code__.co_names)
    if unknown:
        raise ValueError(f"{py_func.__name__} calls no {sorted(unknown)}")
    scope = py_func.__globals__ if calls is None else {**py_func.__globals__, **calls}
    copy = FunctionType(py_func.__code__, scope, name, py_func.__defaults__,
                        py_func.__closure__)
    copy.__qualname__, copy.__doc__ = name, py_func.__doc__
    return njit(**options)(copy)


def min_max_typing(typingctx, a, b, compare):
    """An intrinsic's (signature, codegen) for Python's max (compare: operator.gt) or min
    (operator.lt) of two integers, the code Numba's own builtin runs (do_minmax); see
    fastmath.larger and smaller. None for other types: for floats keep the builtins, whose
    compare, compiled apart without fastmath, stays a select; inside a fastmath kernel its
    nsz let LLVM make it a maxnum, three instructions on x86 where the select is one (a
    logistic unit's clamp: XOR case updating 20% slower)."""
    if not all(isinstance(t, (types.Integer, types.Boolean)) for t in (a, b)):
        return None
    result = typingctx.unify_types(a, b)
    if result is None:
        return None

    def codegen(context, builder, signature, args):
        from numba.cpython.builtins import do_minmax
        return do_minmax(context, builder, list(signature.args), list(args), compare)
    return result(a, b), codegen


def new_array_typing(shape, dtype, zeroed):
    """An intrinsic's (signature, codegen) for a new C-contiguous array of `shape` (an integer
    or a tuple of integers) and `dtype` (a dtype, as params.dtype, or a number class, as
    np.uint64); zeroed: filled with zero bytes. None for other types."""
    if isinstance(dtype, types.DType):
        item = dtype.dtype
    elif isinstance(dtype, types.NumberClass):
        item = dtype.instance_type
    else:
        return None
    if isinstance(shape, types.Integer):
        ndim = 1
    elif isinstance(shape, types.BaseTuple) and all(isinstance(t, types.Integer)
                                                   for t in shape.types):
        ndim = len(shape.types)
    else:
        return None
    array_t = types.Array(item, ndim, "C")

    def codegen(context, builder, signature, args):
        from numba.core import cgutils
        from numba.np.arrayobj import _empty_nd_impl, _parse_shape
        shapes = _parse_shape(context, builder, signature.args[0], args[0])
        ary = _empty_nd_impl(context, builder, array_t, shapes)
        if zeroed:
            cgutils.memset(builder, ary.data, builder.mul(ary.itemsize, ary.nitems), 0)
        return ary._getvalue()
    return array_t(shape, dtype), codegen


# -- codes compiled in -------------------------------------------------------------------------
# A kernel used to read a layer's activation and the loss from integer codes at run time, so it
# compiled every activation and loss at every place it applies one (9 activations x every
# inlined site): most of its compile time. The MLP kernels take a `codes` argument instead
# (fastbp._kernels.codes.Codes: hidden activation, output activation, loss), whose Numba type
# carries the three codes; the helpers below, resolved while a kernel is typed, inline only
# the functions of those codes (fastmath.UNITS, DERIVATIVES) or hand the codes on as
# constants, so that Numba prunes every other activation and loss before typing them. A
# network's kernels compile once per (dtype, activations, loss) it uses.

class CompiledInType(types.Type):
    """The Numba type of a value a kernel compiles in (codes.CompiledIn: Codes, Optimizer,
    Shape): the value's fields are attributes of the type (codes.hidden, opt.code,
    shape.layers), its name says them, and the value carries nothing at run time. Numba
    interns types by name, so equal values share one type, and one compiled kernel."""

    def __init__(self, name, fields):
        self.__dict__.update(fields)
        super().__init__(name=name)


class CodesType(CompiledInType):
    """Codes: hidden, output, loss."""


class OptimizerType(CompiledInType):
    """Optimizer: code."""


class ShapeType(CompiledInType):
    """Shape: layers."""


def _unbox_nothing(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())  # nothing to carry: it is all in the type


for _type_class in (CodesType, OptimizerType, ShapeType):
    register_model(_type_class)(models.OpaqueModel)
    unbox(_type_class)(_unbox_nothing)

_TYPE_CLASSES = {Codes: CodesType, Optimizer: OptimizerType, Shape: ShapeType}


def compiled_in_type(value):
    """The Numba type of a Codes, Optimizer or Shape (value._numba_type_ asks here, once per
    value). Made once per distinct value: each train() call makes new values, and a new Numba
    type cost tens of microseconds of a call that may last a millisecond."""
    key = (type(value), value.type_name())
    if key not in _TYPES:
        _TYPES[key] = _TYPE_CLASSES[type(value)](value.type_name(), value.fields())
    return _TYPES[key]


_TYPES = {}


@typeof_impl.register(CompiledIn)
def _typeof_compiled_in(value, context):
    return value._numba_type_


@typeof_impl.register(Pack)
def _typeof_pack(value, context):
    """A Pack's type, from its items' fingerprints (what Numba's dispatcher keys its own
    cache on) and compiled-in types: made once per kind of contents."""
    key = tuple(item._numba_type_ if isinstance(item, CompiledIn) else compute_fingerprint(item)
                for item in value)
    if key not in _PACK_TYPES:
        _PACK_TYPES[key] = typeof_impl(tuple(value), context)
    return _PACK_TYPES[key]


_PACK_TYPES = {}


@overload(operator.eq)
def _optimizer_eq(a, b):
    """`opt == ADAM` on an Optimizer: a constant of the compiled code."""
    if isinstance(a, OptimizerType) and isinstance(b, types.Integer):
        code = a.code
        return lambda a, b: b == code
    if isinstance(b, OptimizerType) and isinstance(a, types.Integer):
        code = b.code
        return lambda a, b: a == code
    return None


def update_flat(params, state, start, n, vec, v_off, scale, decay, opt, hyper):
    """Move params[start:start+n] against g_k = scale vec[v_off+k] + decay w_k: with an
    Optimizer, its own step alone (optimizers.FLAT_STEPS), else (an int code) any_update_flat."""


def update_outer(params, state, start, n_rows, n_cols, a, a_off, d, d_off, decay, opt, hyper,
                 errors, with_bias):
    """One layer's case update (optimizers.any_update_outer): with an Optimizer, its own step
    alone (optimizers.OUTER_STEPS), else (an int code) any_update_outer."""


def _optimizer_overload(stub, steps_name, any_name, inline):
    """Overload `stub`: for an OptimizerType `opt` a call of the optimizer's own step (of the
    optimizers module's table steps_name, which takes stub's arguments but opt), else a call
    of optimizers.<any_name>, which takes them all and chooses at run time. inline: Numba's
    option ("always": compiled into each caller)."""
    names = stub.__code__.co_varnames[:stub.__code__.co_argcount]
    rest = [n for n in names if n != "opt"]

    def typer(*args):
        from . import optimizers
        opt = args[names.index("opt")]
        # __name__: the module Numba names the code's environment after (as in shaped.py)
        if isinstance(opt, OptimizerType):
            scope = {"__name__": __name__, "step": getattr(optimizers, steps_name)[opt.code]}
            call = f"step({', '.join(rest)})"
        else:
            scope = {"__name__": __name__, "step": getattr(optimizers, any_name)}
            call = f"step({', '.join(names)})"
        exec(f"def {stub.__name__}_impl({', '.join(names)}):\n    return {call}\n", scope)
        return scope[f"{stub.__name__}_impl"]
    overload(stub, inline=inline, jit_options=OVERLOAD)(_with_signature(typer, stub))


def activate_layer(v, start, n, codes, layout, l):
    """activate() for layer l (the output activation on the last layer, else the hidden one)."""


def activate_block(v, start, rows, n, codes, layout, l):
    """activate() for layer l on `rows` tuples' n units each from v[start] (softmax per row)."""


def derivative_hidden(delta, act, start, n, codes, layout, l):
    """times_derivative() with hidden layer l's activation."""


def loss_of(act, out, n_out, Y, t, codes, layout):
    """tuple_loss() with the loss and output activation."""


def error_of(act, delta, out, n_out, Y, t, codes, layout):
    """output_error() with the loss and output activation."""


def correct_of(act, out, n_out, Y, t, codes, layout):
    """is_correct() with the output activation."""


def sk_correct_of(act, out, n_out, Y, t, codes, layout):
    """predicted_right() with the output activation."""


# The overloads called once per tuple are inlined into their callers: as calls they were a
# fifth of case updating's pass on 8-32-2 (~230 -> ~175 ns per tuple here, compile time
# unchanged). So are the per-layer activation and derivative: as calls, a case update of
# 8-32-1 or 8-32-2 ran at one of two speeds fixed for the whole process (about 125 or
# 175-210 ns per tuple, in about half the processes each; why is not known: not where the
# data lies); inlined, none of some 25 processes since has run at the slow one. Compile time
# within noise on the XOR and digits programs (scripts/compile_times.py).
INLINED = {"loss_of": "always", "error_of": "always", "correct_of": "always",
           "activate_layer": "always", "derivative_hidden": "always"}


def _codes_overload(stub):
    """Register `make(K, hidden, output, loss) -> impl` as stub's overload for a CodesType
    `codes` argument (K: the backprop module; hidden and output None: generic codes, read
    from the layout table at run time)."""
    def register(make):
        def typer(*args):
            codes = args[stub.__code__.co_varnames.index("codes")]
            if isinstance(codes, CodesType):
                from . import backprop
                return make(backprop, codes.hidden, codes.output, codes.loss)
            return None
        overload(stub, inline=INLINED.get(stub.__name__, "never"),
                 jit_options=OVERLOAD)(_with_signature(typer, stub))
        return make
    return register


def _with_signature(typer, stub):
    """typer with stub's parameter names (Numba matches an overload's signature to the stub)."""
    names = stub.__code__.co_varnames[:stub.__code__.co_argcount]
    scope = {"typer": typer}
    exec(f"def overload_of_{stub.__name__}({', '.join(names)}):\n"
         f"    return typer({', '.join(names)})\n", scope)
    overload_of = scope[f"overload_of_{stub.__name__}"]
    # fastbp's: of these, the inline="always" ones are typed, never compiled alone
    overload_of._fastbp_inlined = True  # (_inlining._type_inlined_overloads_only)
    return overload_of


@_codes_overload(activate_layer)
def _(K, hidden, output, loss):
    if hidden is None:
        def impl(v, start, n, codes, layout, l):
            K.activate(v, start, n, layout[l, K.ACT])
    else:  # only the two activations' own code is inlined
        hidden_units, output_units = K.UNITS[hidden], K.UNITS[output]
        # An element-wise activation runs over the layer's padding too (geometry rounds each
        # layer's room up to UNIT_ALIGN): its loop is then whole vectors, where a remainder of
        # up to seven units went one at a time (a 6-unit output layer: all six).
        output_whole, padded = output != K.SOFTMAX, K.padded

        def impl(v, start, n, codes, layout, l):
            if l == layout.shape[0] - 1:
                output_units(v, start, padded(n) if output_whole else n)
            else:
                hidden_units(v, start, padded(n))
    return impl


@_codes_overload(activate_block)
def _(K, hidden, output, loss):
    if hidden is None:  # generic: the layout's codes
        def impl(v, start, rows, n, codes, layout, l):
            code = layout[l, K.ACT]
            if code == K.SOFTMAX:  # normalised per tuple
                for r in range(rows):
                    K.activate(v, start + r * n, n, code)
            else:
                K.activate(v, start, rows * n, code)
    elif output == K.SOFTMAX:
        hidden_units, softmax_units = K.UNITS[hidden], K.softmax_units

        def impl(v, start, rows, n, codes, layout, l):
            if l < layout.shape[0] - 1:
                hidden_units(v, start, rows * n)
            else:  # normalised per tuple
                for r in range(rows):
                    softmax_units(v, start + r * n, n)
    else:
        hidden_units, output_units = K.UNITS[hidden], K.UNITS[output]

        def impl(v, start, rows, n, codes, layout, l):
            if l < layout.shape[0] - 1:
                hidden_units(v, start, rows * n)
            else:
                output_units(v, start, rows * n)
    return impl


@_codes_overload(derivative_hidden)
def _(K, hidden, output, loss):
    if hidden is None:
        def impl(delta, act, start, n, codes, layout, l):
            K.times_derivative(delta, act, start, n, layout[l, K.ACT])
    else:
        hidden_derivative, padded = K.DERIVATIVES[hidden], K.padded

        def impl(delta, act, start, n, codes, layout, l):  # over the padding too (see above)
            hidden_derivative(delta, act, start, padded(n))
    return impl


# The four helpers of the output layer: each with the output activation as a constant, or
# (generic codes) as the layout's last row says.

@_codes_overload(loss_of)
def _(K, hidden, output, loss):
    if output is None:
        def impl(act, out, n_out, Y, t, codes, layout):
            return K.tuple_loss(act, out, n_out, Y, t, loss, layout[layout.shape[0] - 1, K.ACT])
    else:
        def impl(act, out, n_out, Y, t, codes, layout):
            return K.tuple_loss(act, out, n_out, Y, t, loss, output)
    return impl


@_codes_overload(error_of)
def _(K, hidden, output, loss):
    if output is None:
        def impl(act, delta, out, n_out, Y, t, codes, layout):
            K.output_error(act, delta, out, n_out, Y, t, loss, layout[layout.shape[0] - 1, K.ACT])
    elif loss != K.SQUARED_ERROR:  # a matched pair: O - T
        def impl(act, delta, out, n_out, Y, t, codes, layout):
            K.output_difference(act, delta, out, n_out, Y, t)
    elif output != K.SOFTMAX:  # squared error: times f'(I), only the output's own code inlined
        derivative = K.DERIVATIVES[output]

        def impl(act, delta, out, n_out, Y, t, codes, layout):
            K.output_difference(act, delta, out, n_out, Y, t)
            derivative(delta, act, out, n_out)
    else:
        def impl(act, delta, out, n_out, Y, t, codes, layout):
            K.output_error(act, delta, out, n_out, Y, t, loss, output)
    return impl


@_codes_overload(correct_of)
def _(K, hidden, output, loss):
    if output is None:
        def impl(act, out, n_out, Y, t, codes, layout):
            return K.is_correct(act, out, n_out, Y, t, layout[layout.shape[0] - 1, K.ACT])
    else:
        def impl(act, out, n_out, Y, t, codes, layout):
            return K.is_correct(act, out, n_out, Y, t, output)
    return impl


@_codes_overload(sk_correct_of)
def _(K, hidden, output, loss):
    if output is None:
        def impl(act, out, n_out, Y, t, codes, layout):
            return K.predicted_right(act, out, n_out, Y, t, layout[layout.shape[0] - 1, K.ACT])
    else:
        def impl(act, out, n_out, Y, t, codes, layout):
            return K.predicted_right(act, out, n_out, Y, t, output)
    return impl


# update_flat inlined into its callers (apply_mean_update, rnn_apply, batch_norm's update: one
# call site each): as a call per layer's weights and biases it was an eighth of an epoch of
# XOR's epoch updating (1.57 -> 1.40 ms for 5,000 epochs); update_outer stays a call
# (inlined, it made case updating slower: see _setup).
_optimizer_overload(update_flat, "FLAT_STEPS", "any_update_flat", "always")
_optimizer_overload(update_outer, "OUTER_STEPS", "any_update_outer", "never")
