"""Kernels that call kernels: link the passes' code as compiled, do not optimise it again.

Numba compiles every function into a library of its own and, to finish a caller's library,
links the libraries of all its callees into the caller's module and optimises the whole
module again (so that LLVM may inline small callees). For fastbp's passes and the
per-tuple and per-block steps they are made of (large, and calls by design) that second
optimisation is pure cost, paid again in every caller:

- compile time: a run kernel re-optimised every pass it calls (on the digits drop-in
  program, run_minibatch's own compile time was mostly its callees' code again);
- speed from the cache: a process that compiles a kernel runs the callee's own library
  (the first definition of a symbol wins), but one that loads the caller from Numba's cache
  runs the copy inside the caller's object, the twice-optimised one (on `tiny` case
  updating that copy spilled twice as many registers: 0.185 against 0.172 us a tuple).

`install()` changes how a library is finished: the callees that are late (whose code holds
one of LATE_KERNELS) are linked in after the caller's own module is optimised, as they are
(each was optimised once, in its own library), and only code generation runs on them;
every other callee (Numba's helpers, fastbp's small helpers such as fast_logistic and the
epoch bookkeeping) is linked in first, as Numba does, and may be inlined. A helper that a
late pass and its caller both call as a function (not inlined) keeps the caller's copy.
Where this Numba's CodeLibrary lacks a part this relies on, nothing changes;
FASTBP_LINK_EARLY=1 turns it off (for comparisons; it is part of the cache's stamp,
_cache.CODE_SWITCHES, so the two never share a cached kernel).
"""
import os
import threading
import weakref

# The kernels linked in late: the passes and the per-tuple and per-block steps they are
# made of, called (never inlined) by design and large, so that re-optimising them was most
# of their callers' compile time. The small bookkeeping kernels (runs.py's per-epoch steps,
# the optimizers' updates) and the shaped gradient pass stay early: LLVM inlines them into
# the run kernels, and as calls they cost XOR 70 ns (case), 150 ns and 30 ns (epoch
# updating) an epoch.
LATE_KERNELS = frozenset({
    # passes.py and shaped.py
    "case_pass", "case_pass_small", "shaped_case", "chunk_gradient",
    # steps.py, blocks.py
    "forward", "forward_dropout", "errors_and_update", "errors_and_update_dropout",
    "errors_and_gradient", "block_forward", "block_gradient",
    # rnn.py, batch_norm.py
    "rnn_sequence", "rnn_case_epoch", "rnn_batches", "bn_forward", "bn_gradient", "bn_batches",
})
# A function of fastbp's kernels as Numba names it in a module: _ZN6fastbp8_kernels, its
# module's name, then its own, length first, and "B" (its ABI tags follow)
_PREFIX = "_ZN6fastbp8_kernels"
_MANGLED = tuple(f"{len(name)}{name}B" for name in LATE_KERNELS)


def _is_late(library, module=None):
    """Whether a library's module for linking holds the code of one of LATE_KERNELS: it is
    one, or links one in. Read from the module itself, so that a library loaded from Numba's
    cache (which does not list the libraries it linked) is judged as when it was compiled,
    and no one else's function of the same name counts. Memoised on the library. (module:
    the library's final module, which defines the same functions, while it is finished.)"""
    late = getattr(library, "_fastbp_late", None)
    if late is None:
        module = module if module is not None else library._get_module_for_linking()
        late = any(fn.name.startswith(_PREFIX) and any(m in fn.name for m in _MANGLED)
                   for fn in module.functions if not fn.is_declaration)
        try:
            library._fastbp_late = late
        except AttributeError:
            pass
    return late


_PARTS = ("_optimize_final_module", "_finalize_final_module", "_get_module_for_linking",
          "_raise_if_finalized")


def install():
    """Replace Numba's CPUCodeLibrary.finalize (see the module), once per process."""
    if os.environ.get("FASTBP_LINK_EARLY", "") not in ("", "0"):
        return
    try:
        from numba.core import codegen
        from numba.core.compiler_lock import require_global_compiler_lock
    except ImportError:
        return
    cls = getattr(codegen, "CPUCodeLibrary", None)
    if cls is None or not all(hasattr(cls, part) for part in _PARTS):
        return
    if getattr(cls.finalize, "_fastbp", False):
        return
    numba_finalize = cls.finalize

    def finalize(self):
        if not hasattr(self, "_linking_libraries") or not hasattr(self, "_final_module"):
            return numba_finalize(self)  # (not the library this was written for)
        require_global_compiler_lock()
        self._codegen._check_llvm_bugs()
        self._raise_if_finalized()
        early, late, seen = [], [], set()
        for library in self._linking_libraries:
            if library not in seen:
                seen.add(library)
                (late if _is_late(library) else early).append(library)
        reload_init = getattr(self, "_reload_init", None)  # (Numba 0.62 on)
        if reload_init is not None:
            for library in early + late:  # the caller inherits it, as in Numba
                reload_init.update(getattr(library, "_reload_init", ()))
        for library in early:
            self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._optimize_final_module()
        for library in late:
            self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._final_module.verify()
        self._finalize_final_module()

    finalize._fastbp = True
    cls.finalize = finalize


# Emitting machine code for a callee when a caller needs it ------------------------------
#
# Numba turns every function it compiles into machine code at once, callees included, and
# gives each a Python entry point. But a callee's code runs as part of its callers: the
# caller's library links the callee's module in (early or late, above) and is itself turned
# into machine code, the callee's copy with it; a process that loads the caller from the
# cache runs that copy. The callee's own machine code is used only where Python calls the
# callee directly, and (the first definition in memory wins) by the process that compiled
# it, which so ran other code than every later process: the first run after compiling could
# differ from the later ones in the last bit (float32 epoch updating, threaded minibatch
# updating, recurrent networks). On the digits drop-in program emitting the callees' own
# code (the block passes two and three times over, once in each library that links them)
# was 0.55 s of 8.
#
# install_deferred_emission() makes every fastbp function compiled (or loaded) while another
# is being compiled wait: its library is finished (optimised, ready to link) but not emitted,
# and its entry point is an _Unemitted stand-in. The stand-in is what Numba files the callee
# under for its callers (the key of its implementation); the first Python call of the
# callee emits the code, gives the dispatcher the real entry point and saves the kernel to
# the cache again as machine code. Until then the cache keeps such a callee as optimised
# LLVM bitcode, which is all a caller compiled in a later process needs of it.
#
# Emitting a module also changed it (the code generator runs IR passes of its own on it, in
# place, before Numba links it into callers), and two kinds of callee ran faster in their
# callers for it, so they keep that: the late passes get the pass that mattered, loop
# strength reduction (_reduce_strength), and fastmath's small helpers (fast_exp,
# fast_logistic, fast_tanh: cheap to emit, inlined into every tuple's code) are emitted as
# before. FASTBP_EMIT_ALL=1 turns this off (for comparisons; part of the cache's stamp too).

class _Depth(threading.local):
    n = 0  # Dispatcher.compile calls under way in this thread
    loading = None  # the kind of cache entry being loaded ("object", "bitcode"), if one is


_depth = _Depth()
_WAITING_ENVIRONMENTS = set()  # names of environments defined by libraries not emitted


def _deferred_now():
    """Whether a fastbp library finished now may wait: a callee compiled while another
    kernel compiles, or any kernel the cache keeps as bitcode (a callee's). One loaded as
    machine code is ready to run as it is: it is handed to the JIT at once."""
    loading = _depth.loading
    return loading == "bitcode" or (loading is None and _depth.n > 1)


def _own_fastbp_functions(library):
    """Names of fastbp's functions that a library's final module defines itself (external
    linkage: what it links in from other libraries is linkonce_odr). Memoised."""
    mine = getattr(library, "_fastbp_mine", None)
    if mine is None:
        from llvmlite import binding as ll
        mine = library._fastbp_mine = [
            fn.name for fn in library._final_module.functions
            if fn.name.startswith(_PREFIX) and not fn.is_declaration
            and fn.linkage == ll.Linkage.external]
    return mine


def _is_fastbp(library):
    """Whether the library defines one of fastbp's functions itself."""
    return bool(_own_fastbp_functions(library))


def _is_math_helper(library):
    """Whether the library is one of fastmath's helpers (fast_exp, fast_logistic, ...):
    parity(8) case updating ran 5% slower with fast_logistic linked as the optimiser left
    it, not as emitting it left it."""
    return all(name.startswith(_MATH_PREFIX) for name in _own_fastbp_functions(library))


_MATH_PREFIX = _PREFIX + "8fastmath"


class _Unemitted:
    """A callee's entry point until Python calls it: emits the library's machine code and
    makes the real entry point (Numba's get_executable) on first use."""

    __slots__ = ("context", "library", "fndesc", "env", "function", "listed", "__weakref__")

    def __init__(self, context, library, fndesc, env):
        self.context, self.library, self.fndesc, self.env = context, library, fndesc, env
        self.function = None
        self.listed = False  # in its dispatcher's table (_called_from_python)

    def emit(self):
        from numba.core.compiler_lock import global_compiler_lock
        with global_compiler_lock:
            if self.function is None:
                _emit(self.library)
                self.function = _numba_get_executable(self.context, self.library,
                                                      self.fndesc, self.env)
                _set_linked_environments(self.library)
        return self.function

    def __call__(self, *args, **kwargs):
        return self.emit()(*args, **kwargs)


def _emit(library):
    """What Numba's _finalize_final_module does after a deferral skipped it: hand the module
    to the JIT and emit it."""
    if not getattr(library, "_fastbp_unemitted", False):
        return
    library._fastbp_unemitted = False
    if not getattr(library, "_object_caching_enabled", False):
        library.enable_object_caching()  # (one loaded as bitcode: to be saved as machine code)
    module = library._final_module
    module._CPUCodeLibrary__library = weakref.proxy(library)  # (for the object cache hooks)
    cleanup = library._codegen._add_module(module)
    if cleanup:
        weakref.finalize(library, cleanup)
    library._finalize_specific()


_numba_get_executable = None
_EMIT_PARTS = ("_finalize_final_module", "_finalize_dynamic_globals", "_unserialize",
               "_verify_declare_only_symbols", "_finalize_specific", "serialize_using_bitcode",
               "serialize_using_object_code")


def install_deferred_emission():
    """Defer the machine code of callees (see above), once per process."""
    global _numba_get_executable
    if os.environ.get("FASTBP_EMIT_ALL", "") not in ("", "0"):
        return
    try:
        from numba.core import codegen, cpu, dispatcher
    except ImportError:  # pragma: no cover - a Numba whose internals moved
        return
    library_class = getattr(codegen, "JITCodeLibrary", None)
    dispatcher_class = getattr(dispatcher, "Dispatcher", None)
    context_class = getattr(cpu, "CPUContext", None)
    codegen_class = getattr(codegen, "JITCPUCodegen", None)
    if (library_class is None or dispatcher_class is None or context_class is None
            or not all(hasattr(library_class, part) for part in _EMIT_PARTS)
            or not all(hasattr(dispatcher_class, part)
                       for part in ("compile", "_compile_for_args", "add_overload", "_insert"))
            or not hasattr(context_class, "get_executable")
            or not hasattr(codegen_class, "set_env")):
        return  # pragma: no cover
    if getattr(dispatcher_class.compile, "_fastbp", False):
        return
    _numba_get_executable = context_class.get_executable
    finalize_final_module = library_class._finalize_final_module
    to_object_code = library_class.serialize_using_object_code
    numba_compile = dispatcher_class.compile
    compile_for_args = dispatcher_class._compile_for_args
    add_overload = dispatcher_class.add_overload
    unserialize = library_class._unserialize  # (a classmethod, bound)
    set_environment = codegen_class.set_env

    def _finalize_final_module_deferred(self):
        if not (_deferred_now() and _is_fastbp(self)) or _is_math_helper(self):
            return finalize_final_module(self)
        if (_is_late(self, self._final_module) and _depth.loading != "bitcode"
                and not _reduce_strength(self)):  # (one loaded as bitcode had it when saved)
            return finalize_final_module(self)
        self._finalize_dynamic_globals()
        self._verify_declare_only_symbols()
        _WAITING_ENVIRONMENTS.update(gv.name for gv in self._final_module.global_variables
                                     if gv.name.startswith("_ZN08NumbaEnv"))
        self._fastbp_unemitted = True
        self._finalized = True

    def serialize_using_object_code(self):
        if getattr(self, "_fastbp_unemitted", False):
            return self.serialize_using_bitcode()  # (no machine code yet: its LLVM bitcode)
        return to_object_code(self)

    def _unserialize(cls, codegen, state):
        _depth.loading = state[1]
        try:
            return unserialize(codegen, state)
        finally:
            _depth.loading = None

    def set_env(self, env_name, env):
        if env_name in _WAITING_ENVIRONMENTS and not self._engine.get_global_value_address(
                env_name):
            return  # in a library that waits: set when it is emitted
        set_environment(self, env_name, env)

    def get_executable(self, library, fndesc, env):
        library._ensure_finalized()
        if getattr(library, "_fastbp_unemitted", False):
            return _Unemitted(self, library, fndesc, env)
        function = _numba_get_executable(self, library, fndesc, env)
        if _is_fastbp(library):
            _set_linked_environments(library)
        return function

    def compile(self, sig):
        _depth.n += 1
        try:
            return numba_compile(self, sig)
        finally:
            _depth.n -= 1

    def _compile_for_args(self, *args, **kwargs):
        entry = compile_for_args(self, *args, **kwargs)
        if isinstance(entry, _Unemitted):  # a callee's first call from Python
            entry = _called_from_python(self, entry)
        return entry

    def add_overload_(self, cres):
        if isinstance(cres.entry_point, _Unemitted):  # Python cannot call it yet: not listed
            self.overloads[tuple(cres.signature.args)] = cres  # in the dispatch table
            return
        add_overload(self, cres)

    library_class._finalize_final_module = _finalize_final_module_deferred
    library_class.serialize_using_object_code = serialize_using_object_code
    library_class._unserialize = classmethod(_unserialize)
    codegen_class.set_env = set_env
    context_class.get_executable = get_executable
    compile._fastbp = True
    dispatcher_class.compile = compile
    dispatcher_class._compile_for_args = _compile_for_args
    dispatcher_class.add_overload = add_overload_


def _reduce_strength(library):
    """Run LLVM's loop strength reduction on a late kernel's module, as emitting it did.

    Emitting a module runs the code generator's own IR passes on it, in place, loop strength
    reduction among them, and Numba links that module into the callers afterwards. A caller
    generating code for a late pass (linked in as it is, not optimised again) from the
    optimiser's output instead ran it slower: RPROP on parity(8), 28 against 20 ms for
    1,000 epochs; with this pass run first, 20 ms again. False where this llvmlite cannot."""
    try:
        import llvmlite.binding as llvm
        pass_builder = llvm.create_pass_builder(
            library._codegen._tm, llvm.create_pipeline_tuning_options(speed_level=3))
        passes = llvm.create_new_module_pass_manager()
        passes.add_loop_strength_reduce_pass()
        passes.run(library._final_module, pass_builder)
    except (AttributeError, TypeError):  # pragma: no cover - an llvmlite without them
        return False
    return True


def _called_from_python(dispatcher, stand_in):
    """Emit a deferred callee that Python now calls, list its entry point in the dispatch
    table (once: two threads may call it first) and save it to the cache again, as machine
    code. (A process that later compiles a new caller of it then loads that machine code,
    and runs it where it calls the callee: the one case left where a compiling process
    runs other code than the processes that load its kernels.)"""
    from numba.core.compiler_lock import global_compiler_lock
    with global_compiler_lock:
        function = stand_in.emit()
        if stand_in.listed:
            return function
        stand_in.listed = True
        for args, cres in list(dispatcher.overloads.items()):
            if cres.entry_point is stand_in:
                dispatcher._insert([a._code for a in args], function, cres.objectmode)
                cache = getattr(dispatcher, "_cache", None)
                if cache is not None:
                    try:
                        cache.save_overload(args, cres)
                    except (RuntimeError, ValueError):  # pragma: no cover - a Numba whose
                        pass  # object-cache hooks moved: it stays cached as bitcode
    return function


def _set_linked_environments(library):
    """Point the environments of the functions linked into a library at their objects, as a
    load from Numba's cache does (CompileResult._rebuild): a callee whose library was never
    emitted has its environment only in its callers' code."""
    try:
        from numba.core.environment import lookup_environment
    except ImportError:  # pragma: no cover
        return
    for gv in library._final_module.global_variables:
        if gv.name.startswith("_ZN08NumbaEnv") and not gv.is_declaration:
            env = lookup_environment(gv.name)
            if env is not None:
                library.codegen.set_env(gv.name, env)
