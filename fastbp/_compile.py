"""`fastbp compile`: compile the kernels of the common configurations ahead of first use.

Numba compiles a kernel the first time a call needs it and keeps the machine code in fastbp's
cache folder (fastbp._kernels._cache). This module runs each common configuration once, on a
few tuples of synthetic data, through the public API, so that exactly the kernels a user's
call will need get compiled: the drop-ins with scikit-learn's defaults, train()'s three modes
with its defaults in float32 and float64 (small and large networks for case updating, one
and several chunks for the gradient passes), the demo's XOR network (whose narrow layers get
passes compiled for its shape) and its digits network, and predict/evaluate (also of an X
large enough for several threads). The configurations run in parallel processes, one per
core; a second pass in this process loads every kernel back and compiles whatever a
concurrent write to the cache index lost.
"""
import os
import sys
import time
import warnings

import numpy as np

# Tuples: few (one chunk, serial kernels) and many (several chunks, the parallel kernels).
FEW, MANY = 8, 400
# A small network whose layers are too wide for passes compiled per shape (SHAPED_LAYER): the
# kernels every small network shares; and the demo's XOR network, which gets its own.
SMALL, XOR = [4, 16, 1], [2, 4, 1]


def _data(n, n_in, n_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in)).astype(dtype)
    Y = (X[:, :n_out] > 0.5).astype(dtype)
    return X, Y


def _train(mode, dtype, sizes, n, momentum=0.0):
    from .network import Network
    from .train import train
    X, Y = _data(n, sizes[0], sizes[-1], dtype)
    net = Network(sizes, dtype=dtype, random_state=0)
    train(net, X, Y, mode=mode, epochs=2, random_state=0, momentum=momentum)
    net.predict(X)
    net.evaluate(X, Y)


def _predict_large(dtype):
    """predict() and evaluate() of an X large enough for several threads."""
    from ._model import PARALLEL_FORWARD_WORK
    from .network import Network
    net = Network([64, 256, 1], dtype=dtype, random_state=0)
    X, Y = _data(PARALLEL_FORWARD_WORK // net.n_params + 1, 64, 1, dtype)
    net.predict(X)
    net.evaluate(X, Y)


def _classifier(n_classes):
    from .estimators import MLPClassifier
    X, _ = _data(MANY, 8, 1, np.float64)
    y = np.arange(MANY) % n_classes
    MLPClassifier(max_iter=2, random_state=0).fit(X, y).score(X, y)


def warm_up(net, X, Y, **options):
    """Compile (or load from Numba's disk cache) the kernels a training will call: one epoch
    over two tuples on a copy of net. Returns the seconds it took, so the timed training that
    follows measures training only (the command line's warm-up, and demo_digits')."""
    from .train import train
    start = time.perf_counter()
    options = dict(options, epochs=1, progress=False, max_misclassified=None)
    if options.get("batch_size"):
        options["batch_size"] = min(options["batch_size"], 2)
    train(net.copy(), X[:2], Y[:2], **options)
    return time.perf_counter() - start


# The demo's digits network and training (`fastbp demo`), here below the command line so that
# `fastbp compile` covers it and the demo's first run compiles it in a second process.
DEMO_DIGITS_LR = 0.01


def demo_digits_network(seed=0):
    """The network `fastbp demo` trains on scikit-learn's digits (64 pixels, 10 classes)."""
    from .network import Network
    return Network([64, 64, 10], activation="relu", output_activation="softmax", loss="log_loss",
                   dtype=np.float32, init="glorot", random_state=seed)


def demo_digits_options(n_jobs, validation):
    """train()'s options for it: case updating, with the test tuples as validation."""
    return dict(mode="case", learning_rate=DEMO_DIGITS_LR, n_jobs=n_jobs, validation=validation)


def demo_digits(n_jobs=1):
    """The demo's digits warm-up (warm_up) on tuples of its shapes and dtypes: the kernels the
    demo's digits run calls (tests/test_cli.py checks that it then compiles none)."""
    from .datasets import one_hot
    X, _ = _data(FEW, 64, 1, np.float32)
    Y = one_hot(np.arange(FEW) % 10, 10, dtype=np.float32)
    warm_up(demo_digits_network(), X, Y, **demo_digits_options(n_jobs, (X, Y)))


def _regressor():
    from .estimators import MLPRegressor
    X, Y = _data(MANY, 8, 1, np.float64)
    MLPRegressor(max_iter=2, random_state=0).fit(X, Y[:, 0] + X[:, 1]).score(X, Y[:, 0])


def configurations():
    """name -> (function, arguments): each a call as a user makes it."""
    configs = {
        "MLPClassifier() binary": (_classifier, (2,)),
        "MLPClassifier() multiclass": (_classifier, (3,)),
        "MLPRegressor()": (_regressor, ()),
    }
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        configs[f"train(mode='case') small network, {name}"] = (_train, ("case", dtype, SMALL, FEW))
        configs[f"train(mode='case') large network, {name}"] = (_train, ("case", dtype, [16, 64, 1], MANY))
        configs[f"predict() and evaluate() of a large X, {name}"] = (_predict_large, (dtype,))
        for mode in ("epoch", "minibatch"):
            for n in (FEW, MANY):
                configs[f"train(mode='{mode}') {n} tuples, {name}"] = (_train, (mode, dtype, SMALL, n))
    for mode in ("case", "epoch"):  # the demo's XOR network (plain SGD): its own shape
        configs[f"train(mode='{mode}') Network({XOR}), float64"] = (_train, (mode, np.float64, XOR, FEW))
    configs["fastbp demo's digits network, float32"] = (demo_digits, ())
    # the README's case updating with momentum (the generic small-network pass)
    configs[f"train(mode='case', momentum=0.9) Network({XOR}), float64"] = \
        (_train, ("case", np.float64, XOR, FEW, 0.9))
    return configs


def _run(name):
    """Run configuration `name` (in a worker process); its seconds."""
    function, args = configurations()[name]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=2 does not converge, as intended
        function(*args)
    return time.perf_counter() - start


def compile_aside(function, *args):
    """On a first run (no kernel of these sources in the cache yet) with a second core to
    compile on: a started process that calls function(*args) (a function of this package,
    literal arguments), so compiling the kernels it calls into the cache while this process
    compiles and runs others; else None. Numba compiles one function at a time, on one core.
    FASTBP_COMPILE_ASIDE=0 turns it off (scripts/compile_times.py's per-function tables).

    A new interpreter runs `python -c` with this interpreter's flags and this fastbp first on
    its path (subprocess.Popen): unlike multiprocessing's spawn, it never imports the caller's
    main module again. It has a session of its own (Ctrl-C reaches only this process, which
    ends it), no input, and its output is discarded: if it fails, the caller compiles the
    kernels itself, as without it."""
    from ._kernels._cache import holds_no_kernels
    from ._threads import usable_cores
    if usable_cores() < 2 or not sys.executable or getattr(sys, "frozen", False) \
            or os.environ.get("FASTBP_COMPILE_ASIDE", "") == "0" \
            or os.environ.get("NUMBA_DISABLE_JIT", "0") != "0" or not holds_no_kernels():
        return None
    import subprocess
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    call = (f"import sys; sys.path.insert(0, {here!r}); "
            f"from {function.__module__} import {function.__name__} as f; f(*{args!r})")
    flags = getattr(subprocess, "_args_from_interpreter_flags", list)()
    return subprocess.Popen([sys.executable, *flags, "-c", call], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=os.name == "posix")


def end_aside(process, timeout):
    """Wait up to `timeout` seconds for a process of compile_aside (or None) to end, then end
    it; whether it ended by itself, successfully."""
    if process is None:
        return False
    import subprocess
    try:
        return process.wait(timeout) == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def compile_all(jobs=None, report=print, names=None):
    """Compile the kernels of the configurations `names` (default: all), `jobs` processes at
    once (default: one per core); returns the seconds it took."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    names = list(configurations()) if names is None else list(names)
    jobs = jobs or os.cpu_count() or 1
    start = time.perf_counter()
    # spawn: each worker a fresh interpreter, none inheriting a started thread pool
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run, name): name for name in names}
        for done in as_completed(futures):
            report(f"  {done.result():6.1f} s  {futures[done]}")
    # everything loads from the cache now; a lost index entry compiles. Through Numba's
    # dispatchers (FASTBP_NATIVE=0), which read that index: the copies of the kernels that
    # later processes run without Numba (fastbp/_kernels/_native.py) are whole files, each
    # written by the worker that ran its kernel, and lose nothing.
    before = os.environ.get("FASTBP_NATIVE")
    os.environ["FASTBP_NATIVE"] = "0"
    try:
        for name in names:
            _run(name)
    finally:
        if before is None:
            del os.environ["FASTBP_NATIVE"]
        else:
            os.environ["FASTBP_NATIVE"] = before
    return time.perf_counter() - start
