"""Inlined helpers: translate each once per process, and copy its IR in one piece.

fastbp's kernels are built from small helpers marked inline="always" (the activations, each
kind of layer's sums and update, the bookkeeping of a pass), which Numba inlines into their
callers before typing them. To inline one, Numba runs its whole front end on the helper
again (bytecode, IR, and the inlining of the helper's own helpers) at every call site, then
copies the resulting IR twice, block by block (see _SharedMemoCopy: each block's copy
copied the function's whole scope again). On the `fastbp demo` program the inlining took
4.2 s, 1.2 s of it to inline errors_and_update_inline once.

`install()` keeps the translated IR of each of fastbp's inlined helpers, keyed by the
function and what the translation depends on (the caller's parallel options and declared
locals), and hands Numba's inlining a copy with an identity of its own, as a translation
would; Numba copies the IR it is given before it changes anything (InlineWorker.inline_ir),
so the kept IR is never altered. And inline_ir's copies take one memo per IR (this serves
every inlining, other packages' too). The inlining then took 1.2 s on the demo, which
compiled 2 s faster in all (scripts/compile_times.py cli-demo), with the same results
(tests/test_startup.py compares them, serial and parallel kernels). Where this Numba's
InlineWorker differs from the one this was written for, nothing changes;
FASTBP_INLINE_UNCACHED=1 turns both off (for comparisons), and with them the typing of
inline="always" overloads without compiling them alone (_type_inlined_overloads_only).
"""
import copy
import os

_KEPT = {}


class _SharedMemoCopy:
    """Numba's inline_ir copies the callee's IR block by block, each with copy.deepcopy of
    its own: every block then copies the function's whole scope (all its variables) again,
    so a copy cost blocks x variables (errors_and_update_inline, 996 statements: 1.2 s to
    inline once), and Numba copies the IR twice per call site. Standing in for the copy
    module there, this copies the blocks of one IR with one memo, keyed by the scope they
    share: the scope, and whatever else the blocks share, is copied once, as a deepcopy of
    the whole function would. Each inline_ir call has memos of its own (a stack: inlining
    an overload can compile, and so inline, other functions before it returns), dropped
    when it returns."""

    def __init__(self):
        self.stack = []

    def deepcopy(self, x, memo=None):
        scope = getattr(x, "scope", None)
        if memo is None and self.stack and scope is not None and type(x).__name__ == "Block":
            memo = self.stack[-1].setdefault(id(scope), {})
        return copy.deepcopy(x, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _key(worker, function):
    """What a helper's IR depends on besides the helper itself, or None (do not keep)."""
    if not getattr(function, "__module__", "").startswith("fastbp."):
        return None
    try:
        parallel = getattr(worker.flags, "auto_parallel", None)
        parallel = tuple(sorted(vars(parallel).items())) if parallel is not None else None
        local_types = tuple(sorted((worker.locals or {}).items()))
        # (not the target context: each set of kernel options has its own, and the front end
        # uses it only to lift loops out of object-mode code, which fastbp has none of)
        key = (function, parallel, local_types, id(worker.typingctx))
        hash(key)
    except (TypeError, AttributeError):
        return None
    return key


def install():
    """Have Numba's inlining of fastbp's helpers reuse their IR (see the module's docstring),
    from the first compile of the process on: a program that only loads kernels from the
    cache never imports Numba's inliner (0.04 s). And read compile flags directly."""
    inline_uncached = os.environ.get("FASTBP_INLINE_UNCACHED", "") not in ("", "0")
    from numba.core import event

    class FirstCompile(event.Listener):
        def on_start(self, ev):
            _read_flags_directly()
            if not inline_uncached:
                _install_now()  # (once: it finds InlineWorker patched after that)

        def on_end(self, ev):
            pass

    event.register("numba:compile", FirstCompile())


def _install_now():
    try:
        from numba.core import inline_closurecall
        from numba.core.bytecode import FunctionIdentity
        from numba.core.inline_closurecall import InlineWorker
    except ImportError:  # pragma: no cover - a Numba whose internals moved
        return
    if getattr(InlineWorker, "_fastbp_kept", False):
        return
    if not all(hasattr(InlineWorker, name) for name in ("inline_function", "inline_ir",
                                                        "run_untyped_passes")):
        return  # pragma: no cover
    translate_each_time = InlineWorker.inline_function

    def inline_function(self, caller_ir, block, i, function, arg_typs=None):
        key = _key(self, function)
        if key is None:
            return translate_each_time(self, caller_ir, block, i, function, arg_typs=arg_typs)
        kept = _KEPT.get(key)
        if kept is None:
            kept = _KEPT[key] = self.run_untyped_passes(function)
        else:  # what translating would also have done: it sets the caller's flags so
            self.flags.enable_ssa = False
        # an identity of its own per call site, as a new translation had: inline_ir names the
        # inlined variables after it, and two call sites in one caller sharing a name would
        # look like versions of one variable to the SSA and parfor passes
        callee_ir = copy.copy(kept)
        callee_ir.func_id = FunctionIdentity.from_function(function)
        return self.inline_ir(caller_ir, block, i, callee_ir, function.__code__.co_freevars,
                              arg_typs=arg_typs)

    InlineWorker.inline_function = inline_function
    if getattr(inline_closurecall, "copy", None) is copy:
        copier = _SharedMemoCopy()
        inline_closurecall.copy = copier
        inline_ir = InlineWorker.inline_ir

        def inline_ir_shared(self, *args, **kwargs):
            copier.stack.append({})
            try:
                return inline_ir(self, *args, **kwargs)
            finally:
                copier.stack.pop()

        InlineWorker.inline_ir = inline_ir_shared
    InlineWorker._fastbp_kept = True
    _type_inlined_overloads_only()


def _type_inlined_overloads_only():
    """Numba types a call of an inline="always" overload from the implementation's IR (the
    template's generic(), which keeps that IR to inline it), but first compiles the
    implementation in full, to machine code (_build_impl, through its dispatcher's
    get_call_template), for a function no one will call. For fastbp's overloads (their
    typing functions carry `_fastbp_inlined`) the implementation's dispatcher is made unable
    to compile: its call template then only folds the argument types, which is all generic()
    reads of it. On the digits drop-in program those compiles were 0.7 s of 8. (Numba's
    compile there also served an implementation calling numba.literally(), which would
    retry the typing with literal arguments: fastbp's call none.)"""
    try:
        from numba.core.typing.templates import _OverloadFunctionTemplate as template
    except ImportError:  # pragma: no cover - a Numba whose internals moved
        return
    jit_decorator = getattr(template, "_get_jit_decorator", None)
    if jit_decorator is None or getattr(jit_decorator, "_fastbp", False):
        return  # pragma: no cover

    def _get_jit_decorator(self):
        jitter = jit_decorator(self)
        if not (getattr(self._overload_func, "_fastbp_inlined", False)
                and self._inline.is_always_inline):
            return jitter

        def typing_only(**options):
            decorate = jitter(**options)

            def make(pyfunc):
                dispatcher = decorate(pyfunc)
                dispatcher._can_compile = False  # (disable_compile() wants a signature first)
                return dispatcher
            return make
        return typing_only

    _get_jit_decorator._fastbp = True
    template._get_jit_decorator = _get_jit_decorator


def _read_flags_directly():
    """Numba compares compile flags (TargetConfig.__eq__, by values(): every option read
    through its property) at each lookup of an overload's implementation, thousands of times
    per kernel. values() here builds the same dict from the stored values and the options'
    defaults directly, what each property reads: the digits drop-in program compiled 0.3 s
    faster (of 7). Once per process."""
    try:
        from numba.core.targetconfig import TargetConfig
    except ImportError:  # pragma: no cover - a Numba whose internals moved
        return
    if getattr(TargetConfig.values, "_fastbp", False) or not hasattr(TargetConfig, "options"):
        return

    def values(self):
        stored = self._values
        return {name: stored.get(name, option.default) for name, option in self.options.items()}

    values._fastbp = True
    TargetConfig.values = values
