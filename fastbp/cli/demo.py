"""`fastbp demo`: XOR in case and epoch updating, then scikit-learn's digits."""
import time

import numpy as np

from .. import datasets
from .._compile import DEMO_DIGITS_LR, compile_aside, demo_digits, demo_digits_network, demo_digits_options, end_aside
from .._threads import planned_threads
from .._version import __version__
from ..network import Network
from ._common import _percent, _result_line, _timed_train, _warm_up, _write_plot, check_plot_path

# -- demo --------------------------------------------------------------------------------------
# (mode, learning rate, momentum): the textbook's two forms, plain gradient descent. Each
# learns XOR, outputs within 0.03 of the targets after XOR_EPOCHS (seeds 0-29 checked: at
# most 0.020 and 0.026). Plain SGD's case updating runs a pass compiled for the network's
# shape, which compiles in about a second; momentum would compile the general pass (~5 s).
XOR_RUNS = (
    ("case", 4.0, 0.0),
    ("epoch", 8.0, 0.0),
)
XOR_EPOCHS = 2000
DEFAULT_PLOT = "fastbp-demo.png"
DIGITS_EPOCHS, DIGITS_QUICK_EPOCHS = 20, 3
ASIDE_TIMEOUT = 600  # seconds to wait for the digits kernels compiled aside (~10 s here)


def run_demo(args):
    total = time.perf_counter()
    # checked before any training: a --plot given must be drawable; the default one is optional
    plot = check_plot_path(args.plot) if args.plot is not None else \
        check_plot_path(DEFAULT_PLOT, required=False)
    # what train() will run with: -1 and too many are clipped there (found without importing
    # Numba: the demo's kernels, once cached, run without it)
    threads = planned_threads(args.n_jobs)
    print(f"fastbp {__version__} demo: seed {args.seed}, {threads} Numba thread(s)")
    # A first run compiles the digits network's kernels (most of its compiling) in a second
    # process, on the second core, while this one compiles and trains XOR's.
    aside = compile_aside(demo_digits, args.n_jobs)
    try:
        _xor(args)
        history = _digits(args, aside)
    finally:
        end_aside(aside, timeout=0)  # (done by then, but not if XOR stopped the demo)
    _write_plot(plot, history, "digits, case updating: training and test (validation) curves")
    print(f"\ndemo done in {time.perf_counter() - total:.1f} s")
    return 0


def _xor(args):
    """XOR in the textbook's two forms (XOR_RUNS)."""
    # The seeds' XOR problem: 4 tuples, not linearly separable, so it needs the hidden layer.
    X, y = datasets.xor()
    Y = y.reshape(-1, 1).astype(np.float64)
    for mode, lr, momentum in XOR_RUNS:
        net = Network([2, 4, 1], activation="logistic", output_activation="logistic",
                      loss="squared_error", dtype=np.float64, random_state=args.seed)
        options = dict(mode=mode, learning_rate=lr, momentum=momentum, n_jobs=args.n_jobs)
        jit = _warm_up(net, X, Y, **options)
        print(f"\nXOR, {mode} updating, learning rate {lr}, momentum {momentum}, {XOR_EPOCHS} "
              f"epochs: {net!r} (kernels ready in {jit:.2f} s)", flush=True)
        history, seconds = _timed_train(net, X, Y, epochs=XOR_EPOCHS, progress=args.progress,
                                        **options)
        outputs = " ".join(f"{o:.3f}" for o in net.predict(X)[:, 0])
        print(f"xor {mode:<6} " + _result_line(history, seconds, _percent(history.accuracy[-1])))
        print(f"           outputs for (0,0) (0,1) (1,0) (1,1): {outputs}  (targets 0 1 1 0)")


def _digits(args, aside=None):
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes) with test tuples as
    validation; its History. aside: the process compiling its kernels (compile_aside), or
    None."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, stratify=digits.target, random_state=args.seed)
    X_train, mean, std = datasets.standardize(X_train.astype(np.float32), return_stats=True)
    X_test = datasets.standardize(X_test.astype(np.float32), mean=mean, std=std)
    Y_train = datasets.one_hot(y_train, 10, dtype=np.float32)
    Y_test = datasets.one_hot(y_test, 10, dtype=np.float32)
    epochs = DIGITS_QUICK_EPOCHS if args.quick else DIGITS_EPOCHS
    net = demo_digits_network(args.seed)
    # validation in the warm-up too: the same kernel as the timed run, compiled once
    options = demo_digits_options(args.n_jobs, (X_test, Y_test))
    waited = time.perf_counter()
    end_aside(aside, ASIDE_TIMEOUT)  # its kernels are in the cache once it is done
    jit = time.perf_counter() - waited + _warm_up(net, X_train, Y_train, **options)
    print(f"\ndigits (scikit-learn's 8x8 images, 10 classes), {len(X_train)} train / {len(X_test)} "
          f"test tuples, standardized; case updating, learning rate {DEMO_DIGITS_LR}, {epochs} epochs: "
          f"{net!r} (kernels ready in {jit:.2f} s)", flush=True)
    history, seconds = _timed_train(net, X_train, Y_train, epochs=epochs, progress=args.progress,
                                    **options)
    test_accuracy = history.val_accuracy[-1]  # the validation pass after the last epoch
    print("digits     " + _result_line(history, seconds, _percent(history.accuracy[-1]),
                                       _percent(test_accuracy)))
    return history
