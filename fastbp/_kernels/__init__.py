"""fastbp's compiled code and the codes it shares with Python.

`codes` (the constants) is plain Python and loads with fastbp; the compiled functions
(`backprop`) load, with Numba, on first use: `fastbp._kernels.run_case` imports backprop,
so `import fastbp` does not pay for Numba until a call needs a kernel.
"""
import importlib

from .codes import *  # noqa: F401,F403


def __getattr__(name):
    if name.startswith("_"):  # a private submodule (_cache, _jit, _setup): the import system's
        raise AttributeError(name)  # to load, even before backprop (which imports them)
    backprop = importlib.import_module(".backprop", __name__)
    try:
        return getattr(backprop, name)
    except AttributeError:
        raise AttributeError(f"module 'fastbp._kernels' has no attribute {name!r}") from None
