"""How many threads fastbp's kernels compute with: Numba's, and BLAS pinned to one.

The parallel kernels split the tuples over Numba's threads and call BLAS (blocks.gemm; np.dot
in batch normalisation) from each of them. A multi-threaded BLAS inside those threads oversubscribes the cores:
measured on 2 cores, epoch updating on `mid` took 10 s instead of 0.056 s per epoch.
So while a kernel runs, BLAS runs single-threaded; the user's setting comes back after.
"""
import os
import sys
import threading
from contextlib import ExitStack, contextmanager, nullcontext

from ._validation import check_n_jobs

_lock = threading.Lock()
_blas = {"controller": None, "users": 0, "limit": None}

# -- Numba's threading layer, chosen deliberately ------------------------------------------------
# TBB first (see fastbp/_kernels/_jit.py: libtbb is loaded with the kernels); NUMBA_THREADING_LAYER
# set by the user is respected.
# - workqueue is not safe for parallel kernels launched from several Python threads at once
#   (GridSearchCV's threading backend, Dask's threaded workers): fits then take turns
#   (_serial_parallel_calls below).
_layer = {"name": None}
_serial_parallel_calls = threading.RLock()


def threading_layer():
    """The threading layer the parallel kernels run on ("tbb", "omp" or "workqueue"),
    starting it if no parallel code has run yet (so that the choice never happens in two
    threads at once). numba.get_num_threads() starts it as a parallel kernel would, with
    libtbb loaded first; a tiny parallel kernel did this before, at 0.3 s of compilation in
    every first run."""
    if _layer["name"] is None:
        with _lock:
            if _layer["name"] is None:
                import numba

                from ._kernels._jit import preload_tbb
                preload_tbb()
                numba.get_num_threads()
                _layer["name"] = numba.threading_layer()
    return _layer["name"]


def _blas_pools():
    """threadpoolctl's handle on the loaded BLAS libraries, found once (finding them costs ms)."""
    if _blas["controller"] is None:
        import scipy.linalg.cython_blas  # noqa: F401  the BLAS blocks.gemm and np.dot call into
        from threadpoolctl import ThreadpoolController
        _blas["controller"] = _blas_of_mapped_files(ThreadpoolController) or \
            ThreadpoolController().select(user_api="blas")
    return _blas["controller"]


def _blas_of_mapped_files(controller_class):
    """The BLAS libraries threadpoolctl would find, found among the files mapped into this
    process whose names begin as those of a library it controls (its own rule, applied to the
    file's name with symbolic links resolved, which is how /proc/self/maps lists it): 6.6 ms,
    where threadpoolctl's scan of every loaded library (228 in a process with scikit-learn,
    each path resolved) took 12.1 ms (15-24 ms under cProfile) of every drop-in fit. None
    where this cannot be done (no /proc, another threadpoolctl) or finds no BLAS:
    threadpoolctl's own scan then."""
    try:
        import threadpoolctl
        prefixes = tuple(prefix for kind in threadpoolctl._ALL_CONTROLLERS
                         for prefix in kind.filename_prefixes)
        with open("/proc/self/maps") as maps:
            paths = {fields[5].rstrip("\n") for fields in (line.split(None, 5) for line in maps)
                     if len(fields) == 6 and fields[5].startswith("/")}
        found = controller_class._from_controllers([])
        for path in sorted(paths):
            if os.path.basename(path).startswith(prefixes):
                found._make_controller_from_path(path)
        found = found.select(user_api="blas")
    except (OSError, AttributeError, TypeError, ValueError):
        return None
    return found if found.lib_controllers else None


@contextmanager
def single_threaded_blas():
    """BLAS on one thread inside; the first caller in sets it, the last one out restores it,
    so overlapping fits in several Python threads hand back the user's setting intact."""
    with _lock:
        if _blas["users"] == 0:
            _blas["limit"] = _blas_pools().limit(limits=1)
        _blas["users"] += 1
    try:
        yield
    finally:
        with _lock:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                _blas["limit"].restore_original_limits()
                _blas["limit"] = None


@contextmanager
def compute_threads(n_jobs=None, parallel=True, blas=False):
    """Run kernels with n_jobs Numba threads and single-threaded BLAS; both are restored
    afterwards, also on error. n_jobs as in joblib: None keeps the current count, a positive
    number is a count (at most Numba's NUMBA_NUM_THREADS), -1 is all of them, -2 all but
    one, and so on (at least one). Numba's count is per calling thread.

    parallel=False: the kernels inside run no parallel region (a small problem, or a short
    run), so there are no Numba threads to set: n_jobs is only checked, and the threading
    layer is not even started. blas=True then still pins BLAS to one thread, for a serial
    kernel whose passes are matrix products: as in the parallel twin, so that both give the
    same bits (a multi-threaded BLAS may split its sums by its thread count)."""
    n_jobs = check_n_jobs(n_jobs)
    if not parallel:
        if blas:
            with single_threaded_blas():
                yield
        else:
            yield
        return
    if "numba" in sys.modules:
        numba_started()  # (settings of enclosing contexts that waited for Numba: first)
        with _numba_threads(n_jobs):
            yield
        return
    # Numba not imported: the kernels inside may all run from the cache without it
    # (fastbp._kernels._native), with no thread of Numba's to set. That setting waits until
    # a kernel inside needs Numba (numba_started), and applies from then to the end. BLAS is
    # pinned at once: the serial kernels a copy runs call it too.
    from ._kernels import _native
    with _lock:
        if numba_started not in _native.BEFORE_NUMBA:
            _native.BEFORE_NUMBA.append(numba_started)
    frame = _Deferred(n_jobs)
    frames = _deferred_frames()
    frames.append(frame)
    try:
        with single_threaded_blas():
            yield
    finally:
        frames.remove(frame)
        if frame.applied is not None:
            frame.applied.close()


def usable_cores():
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def planned_threads(n_jobs=None):
    """How many Numba threads compute_threads(n_jobs) runs parallel kernels with, without
    importing Numba where it is not imported yet: its count is then Numba's default,
    NUMBA_NUM_THREADS or the CPUs this process may run on (numba.core.config)."""
    n_jobs = check_n_jobs(n_jobs)
    if "numba" in sys.modules:
        import numba
        with compute_threads(n_jobs):
            return numba.get_num_threads()
    try:
        limit = int(os.environ["NUMBA_NUM_THREADS"])
    except (KeyError, ValueError):
        limit = usable_cores()
    limit = max(1, limit)
    if n_jobs is None:
        return limit
    return min(n_jobs, limit) if n_jobs > 0 else max(1, limit + 1 + n_jobs)


@contextmanager
def _numba_threads(n_jobs):
    import numba
    before = numba.get_num_threads()
    if n_jobs is not None:
        limit = numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(min(n_jobs, limit) if n_jobs > 0 else max(1, limit + 1 + n_jobs))
    guard = _serial_parallel_calls if threading_layer() == "workqueue" else nullcontext()
    try:
        with guard, single_threaded_blas():
            yield
    finally:
        numba.set_num_threads(before)


class _Deferred:
    """A compute_threads(parallel=True) entered before Numba was imported."""

    __slots__ = ("n_jobs", "applied")

    def __init__(self, n_jobs):
        self.n_jobs, self.applied = n_jobs, None


_pending = threading.local()


def _deferred_frames():
    frames = getattr(_pending, "frames", None)
    if frames is None:
        frames = _pending.frames = []
    return frames


def numba_started():
    """A kernel is about to run through Numba (fastbp._kernels._native.BEFORE_NUMBA): apply this
    thread's compute_threads that waited for Numba, outermost first, as if applied on entry."""
    frames = getattr(_pending, "frames", None)
    if frames:
        for frame in frames:
            if frame.applied is None:
                stack = ExitStack()
                stack.enter_context(_numba_threads(frame.n_jobs))
                frame.applied = stack
