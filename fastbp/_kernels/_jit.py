"""What the compiled code needs set up before its first @njit: libtbb, and twin().

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
import os
from types import FunctionType

from numba import njit

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


def twin(kernel, name, **options):
    """A second compiled kernel from `kernel`'s Python code, under its own name (and so its
    own cache files), compiled with other options: the parallel twin of a serial kernel.

    The serial kernel is a plain function, so Numba prunes what its None arguments switch off
    before it inlines anything (validation, the track="end" evaluation: their code is never
    even inlined); the twin, parallel=True, runs the prange loops of what it inlines on
    several threads. One body, two kernels, no wrapper that would inline the body whole."""
    py_func = kernel.py_func
    copy = FunctionType(py_func.__code__, py_func.__globals__, name, py_func.__defaults__,
                        py_func.__closure__)
    copy.__qualname__, copy.__doc__ = name, py_func.__doc__
    return njit(**options)(copy)
