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
FASTBP_LINK_EARLY=1 turns it off (for comparisons: Numba's cache does not tell the two
apart, so clear it, `fastbp compile --clear`, when switching).
"""
import os

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


def _is_late(library):
    """Whether a library's module for linking holds the code of one of LATE_KERNELS: it is
    one, or links one in. Read from the module itself, so that a library loaded from Numba's
    cache (which does not list the libraries it linked) is judged as when it was compiled,
    and no one else's function of the same name counts. Memoised on the library."""
    late = getattr(library, "_fastbp_late", None)
    if late is None:
        late = any(fn.name.startswith(_PREFIX) and any(m in fn.name for m in _MANGLED)
                   for fn in library._get_module_for_linking().functions
                   if not fn.is_declaration)
        try:
            library._fastbp_late = late
        except AttributeError:
            pass
    return late


_PARTS = ("_optimize_final_module", "_finalize_final_module", "_get_module_for_linking",
          "_raise_if_finalized")


def install():
    """Replace Numba's CPUCodeLibrary.finalize (see the module), once per process."""
    if os.environ.get("FASTBP_LINK_EARLY"):
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
