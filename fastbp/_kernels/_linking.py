"""Kernels that call kernels: link the callees' machine-ready code, do not optimise it again.

Numba compiles every function into a library of its own and, to finish a caller's library,
links the libraries of all its callees into the caller's module and optimises the whole
module again (so that LLVM may inline small callees). For fastbp's INTERNAL kernels (the
passes, the epoch bookkeeping: calls by design, see _setup.INTERNAL) that second
optimisation is pure cost, paid again in every caller:

- compile time: a run kernel re-optimised every pass it calls (on the digits drop-in
  program, run_minibatch's own compile time was mostly its callees' code again);
- speed from the cache: a process that compiles a kernel runs the callee's own library,
  but one that loads the caller from Numba's cache runs the copy inside the caller's
  object, the twice-optimised one (on `tiny` case updating that copy spilled twice as many
  registers: 0.172 against 0.185 us a tuple).

`install()` changes how a library is finished: the callees that are late (a fastbp kernel
compiled without a Python wrapper, or a shaped pass) are linked in after the caller's own
module is optimised, as they are (each was optimised once, in its own library), and only
code generation runs on them; every other callee (Numba's helpers, fastbp's inlined
arithmetic such as fast_logistic) is linked in first, as Numba does, and may be inlined.
Where this Numba's CodeLibrary does not have the parts this relies on, nothing changes.
"""
import os

# The kernels linked in late: the passes and the per-tuple and per-block steps they are
# made of, called (never inlined) by design and large, so that re-optimising them was most
# of their callers' compile time. The small bookkeeping kernels (runs.py's per-epoch steps,
# the optimizers' updates) stay early: LLVM inlines them into the run kernels, and as calls
# they cost XOR 70 ns (case) and 150 ns (epoch updating) an epoch.
LATE_KERNELS = frozenset({
    # passes.py and shaped.py (the shaped case pass and the generic stand-in of a shaped pass)
    "case_pass", "case_pass_small", "shaped_case", "generic_case_pass_small",
    "chunk_gradient",
    # steps.py, blocks.py
    "forward", "forward_dropout", "errors_and_update", "errors_and_update_dropout",
    "errors_and_gradient", "block_forward", "block_gradient",
    # rnn.py, batch_norm.py
    "rnn_sequence", "rnn_case_epoch", "rnn_batches", "bn_forward", "bn_gradient", "bn_batches",
})


def _is_late(library):
    """A library to link in late: one of LATE_KERNELS, or one that links one of these in (its
    module holds their code)."""
    return library.name in LATE_KERNELS or any(_is_late(lib) for lib in library._linking_libraries)


def install():
    if os.environ.get("FASTBP_LINK_EARLY"):
        return
    try:
        from numba.core import codegen
        from numba.core.compiler_lock import require_global_compiler_lock
        cls = codegen.CPUCodeLibrary
        needed = ("_linking_libraries", "_final_module", "_optimize_final_module",
                  "_finalize_final_module", "_get_module_for_linking", "_raise_if_finalized")
        if not all(hasattr(cls, n) or n in ("_linking_libraries", "_final_module")
                   for n in needed):
            return
    except ImportError:
        return
    if getattr(cls.finalize, "_fastbp", False):
        return

    def finalize(self):
        require_global_compiler_lock()
        self._codegen._check_llvm_bugs()
        self._raise_if_finalized()
        early, late, seen = [], [], set()
        for library in self._linking_libraries:
            if library not in seen:
                seen.add(library)
                (late if _is_late(library) else early).append(library)
        for library in early + late:  # the caller inherits reload_init, as in Numba
            self._reload_init.update(library._reload_init)
        for library in early:
            self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._optimize_final_module()
        for library in late:
            self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._final_module.verify()
        self._finalize_final_module()

    finalize._fastbp = True
    cls.finalize = finalize
