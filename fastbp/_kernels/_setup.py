"""The options every kernel compiles with, and what must happen before the first @njit:
fastbp's cache locator (_cache) and libtbb (_jit.preload_tbb). Every kernel module imports
this first."""
from . import _cache, _inlining, _linking
from ._jit import preload_tbb
from ._options import FASTMATH, NO_REFCOUNT, OVERLOAD  # noqa: F401  (see _options)

_cache.install()  # fastbp's cache folder and stamp, before the first @njit
_linking.install()  # callees linked as compiled, not optimised again in each caller
_linking.install_deferred_emission()  # a callee's own machine code only if Python calls it
_inlining.install()  # each inlined helper translated once, not at every call site
preload_tbb()  # before any parallel kernel can start Numba's threading layer


# Options of every kernel. error_model="numpy" drops Python's ZeroDivisionError checks from hot loops;
# nogil lets several fits run at once in Python threads.
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
# fast_exp's and fast_tanh's options: no reassoc or arcp, which would undo their argument
# reduction and the order of their polynomials.
EXACT_JIT = dict(cache=True, fastmath={"nsz", "contract"}, error_model="numpy", nogil=True)

# The small helpers run per tuple and per layer (activations, errors, loss) carry
# inline="always": Numba then compiles them into their callers, where a call with array
# arguments cost tens of cycles (case updating on `tiny`: 0.39 -> 0.30 us per tuple). So is
# the forward pass into case updating's pass (case_pass_small); the optimizers' per-layer
# update (update_outer) stays a call: inlined, it made case updating slower.

# What only compiled code calls compiles without the wrappers that let Python call it (Numba
# builds two per function by default, whose code for unboxing every array argument was LLVM's
# work to optimise too): the first XOR program compiled 0.5 s faster. Calling such a function
# from Python crashes the process: never mark one that Python (a test, a script) calls.
INTERNAL = dict(no_cpython_wrapper=True, no_cfunc_wrapper=True)

# What a run kernel calls once or a few times per epoch (the bookkeeping, the optimizer's
# update, a short pass, case updating's pass, whose calls per tuple counted references too:
# 8-32-2 300 -> 200 ns per tuple) compiles with NO_REFCOUNT: Numba counts the references to every array
# argument of a called function (an atomic add at entry and another at exit, each) and to
# every array an inlined function names, and on XOR these counts were three quarters of an
# epoch (epoch updating: 700 -> 230 ns per epoch here). Such a function may neither allocate
# an array nor keep one that a callee returns (never freed: a leak). Numba refuses the first,
# and a callee compiled first under it inherits the option and is refused too; but a callee
# already compiled (or cached) with reference counts is reused as it is, so call nothing that
# returns a new array (tests/test_kernels_module.py counts the allocations of every run
# kernel). The run kernel that calls it holds every array it gets. (NO_REFCOUNT: _options.py)


def _noalias_option():
    """NOALIAS: the option that tells LLVM a kernel's array arguments never overlap (C's
    `restrict`), or {} where this Numba cannot say it. Numba passes it only to its parallel
    loops' bodies; a kernel gets it through a target option named after its flag, added here.
    Without it, every vectorised loop that writes one array while reading another first
    checks at run time that the two do not overlap: on a case update of 64-32-10 those checks
    and their loop set-up were a quarter of the time."""
    try:
        from numba.core.compiler import Flags
        from numba.core.cpu import CPUTargetOptions
        from numba.core.options import TargetOptions
    except ImportError:  # pragma: no cover - a Numba that moved them
        return {}
    if not isinstance(getattr(Flags, "noalias", None), property):  # pragma: no cover
        return {}
    if not hasattr(CPUTargetOptions, "_noalias"):
        CPUTargetOptions._noalias = TargetOptions.Mapping("noalias")
    return dict(_noalias=True)


# A kernel marked NOALIAS (the hot case-updating pass and its calls) promises that no two of
# its array arguments share memory that one of them writes: every caller passes separate
# allocations for what it writes (params, the optimizer's state, hyper, act and delta:
# Network.training_kernel makes act and delta apart; as views of one buffer they would
# share a reference count, which errors_and_update_dropout, a counting callee of case_pass,
# would write through both) and training data that is only read. It carries NO_REFCOUNT
# too, so it writes no reference count itself.
NOALIAS = _noalias_option()
