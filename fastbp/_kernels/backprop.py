"""Every @njit function of fastbp (the codes and table columns they compile in are in
codes.py, which Python reads without importing Numba).

The kernels live in one module per concern, in the order they build on each other:
fastmath (exp, tanh, activations, the clock) and optimizers (the optimizers' steps); steps
(one tuple: forward, errors, update); blocks (a block of tuples as matrix products);
passes (whole passes over the tuples); shaped (case updating's pass for one shape); rnn
and batch_norm; runs (many epochs per call).
This module gathers them all under one name (`fastbp._kernels` reads its names from here).

Numba stamps a cached kernel with a hash of the file that defines it, not of the files its
callees or constants come from; fastbp's cache locator (_cache.py) stamps it with a hash of
every file of this package instead, so an edit to any of them recompiles every kernel.

Kernels take plain arrays and integer codes, never Python objects; the Python layer
(`fastbp.network`, `fastbp.train`) translates names into these codes once and validates
all input before calling in.

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
from ._setup import EXACT_JIT, FASTMATH, JIT  # noqa: F401
from .batch_norm import *  # noqa: F401,F403
from .blocks import *  # noqa: F401,F403
from .fastmath import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .passes import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .shaped import *  # noqa: F401,F403
from .steps import *  # noqa: F401,F403
