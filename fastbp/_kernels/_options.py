"""Compile options that _jit's overloads need as well as the kernels (_setup imports _jit,
so they cannot come from there): see _setup for what each is for."""

# fastmath without nnan/ninf, so NaN and inf checks keep working -- on values as loaded from
# memory: under reassoc, isfinite(a + b) can fold to True (seen); reassoc lets reductions vectorise.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# No reference counts (see _setup's comment on it).
NO_REFCOUNT = dict(_nrt=False)

# The options of an overload's implementation compiled as a function of its own (not inlined
# into its caller): the kernels' (an overload gets Numba's defaults otherwise: no fastmath,
# Python's division checks, a reference count on every array argument). On XOR's epoch
# updating the optimizer step (update_flat) was an eighth of an epoch without them.
OVERLOAD = dict(fastmath=FASTMATH, error_model="numpy", **NO_REFCOUNT)
