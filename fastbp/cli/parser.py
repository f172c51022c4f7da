"""The argument parser of the command line: every command, option, default and type check."""
import argparse

import numpy as np

from .._validation import check_float, check_int
from .._version import __version__
from ._common import MAX_AUTO_CLASSES, MODE_DEFAULTS
from .commands import COMPILE_SECONDS_HERE, run_compile, run_predict, run_train
from .demo import XOR_EPOCHS, run_demo


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- argument types: the text parsed here, the value checked by fastbp._validation (the checks
# the API, the file formats and the sweep configs use), its error as argparse's -------------
def _checked(check, *args, **kwargs):
    """check(*args, **kwargs), a ValueError or TypeError becoming argparse's type error."""
    try:
        return check(*args, **kwargs)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _layer_sizes(text):
    """--hidden: "64,32" -> (64, 32); every entry an integer >= 1."""
    sizes = []
    for item in text.split(","):
        item = item.strip()
        try:
            size = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma-separated list of layer sizes: {item!r} is not an integer") from None
        sizes.append(_checked(check_int, size, "layer sizes", minimum=1))
    return tuple(sizes)


def _int_at_least(minimum, also=()):
    """An int type for argparse: >= minimum, or one of the special values `also` (e.g. -1)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value in also:
            return value
        try:
            return check_int(value, "value", minimum=minimum)
        except ValueError as error:
            special = "".join(f"{v} or " for v in also)  # "-1 or >= 1"
            raise argparse.ArgumentTypeError(str(error).replace(">=", special + ">=", 1)) from None
    return parse


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)
_n_jobs = _int_at_least(1, also=(-1,))  # -1: all threads


def _float_in(low, high, low_open=False, high_open=False):
    """A float type for argparse: finite, within [low, high] (either end open)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        return _checked(check_float, value, "value", minimum=low,
                        maximum=None if np.isinf(high) else high, strict_min=low_open,
                        strict_max=high_open)
    return parse


# -- the parser --------------------------------------------------------------------------------
def build_parser():
    parser = _Parser(
        prog="fastbp",
        description="Train feed-forward neural networks with backpropagation in Numba-compiled kernels.",
        epilog="Run 'fastbp COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    comp = commands.add_parser(
        "compile", help="compile the kernels of the common configurations ahead of first use",
        description="Compile, ahead of first use, the kernels of the common configurations: "
                    "MLPClassifier (binary and multiclass) and MLPRegressor with scikit-learn's "
                    "defaults; train() in case (small and large networks), epoch and minibatch "
                    "updating with its defaults, in float32 and float64, on one chunk and on "
                    "several; the XOR network Network([2, 4, 1]) of the demo (plain SGD) "
                    "and of the README (with momentum); the demo's digits network "
                    "Network([64, 64, 10]) (relu, softmax, float32, with validation); "
                    "predict and evaluate. "
                    "They run in parallel processes, one per core. "
                    "The machine code is kept in fastbp's cache folder (--where), so later "
                    "processes load it instead of compiling; on Linux x86-64 the serial "
                    "kernels of these configurations then run from copies of that machine "
                    "code without importing Numba (for arguments of the same kinds). Run this "
                    "once in a Dockerfile or a CI job to bake the cache. Other settings (another activation, loss, "
                    "optimizer, dropout, validation, track='end', RNN, batch norm) still compile "
                    "on first use, as does each new network whose layers are all at most 8 "
                    "units wide (its case updating with plain SGD, and its short passes, get "
                    "kernels compiled for its shape: a few seconds per shape and mode, once). "
                    "On the project's 2-core "
                    "test machine it took "
                    f"{COMPILE_SECONDS_HERE} s.")
    comp.add_argument("--jobs", type=_int_at_least(1), default=None, metavar="N",
                      help="processes at once (default: one per core)")
    comp.add_argument("--where", action="store_true",
                      help="print the cache folder and exit (default: compile; set FASTBP_CACHE_DIR "
                           "to move the folder)")
    comp.add_argument("--clear", action="store_true",
                      help="delete the cache folder and exit, so the next call compiles again "
                           "(default: compile)")
    comp.set_defaults(run=run_compile)

    demo = commands.add_parser(
        "demo", help="train XOR (case and epoch updating) and scikit-learn's digits; print the results",
        description=f"Train the XOR problem in case and in epoch updating for {XOR_EPOCHS} epochs "
                    "each (outputs close to the targets 0 1 1 0), then a 64-64-10 network on "
                    "scikit-learn's bundled 8x8 digits "
                    "(75/25 stratified split). Each training prints its final loss, accuracy, epochs, "
                    "seconds and training tuples per second. The first run compiles the kernels "
                    "(cached on disk afterwards).")
    demo.add_argument("--plot", default=None, metavar="PNG",
                      help="where to draw the digits run's training and validation curves "
                           "(default: fastbp-demo.png when matplotlib is installed, pip install "
                           "\"fastbp[plot]\"; a --plot given needs it; --plot '' for none)")
    demo.add_argument("--quick", action="store_true",
                      help="train digits for 3 epochs instead of the default 20 (for smoke tests)")
    demo.add_argument("--no-progress", dest="progress", action="store_false",
                      help="do not show a progress bar per training (default: shown)")
    demo.add_argument("--n-jobs", type=_n_jobs, default=1, metavar="N",
                      help="Numba threads for the parallel kernels, -1 for all (default: 1); "
                           "the demo's data are small, so its passes, validation included, run "
                           "on one thread whatever this says")
    demo.add_argument("--seed", type=_seed, default=0,
                      help="seed of the weight initialisation, shuffles and the digits split (default: 0)")
    demo.set_defaults(run=run_demo)

    tr = commands.add_parser(
        "train", help="train a network on a .csv, .npy or .npz file and save it",
        description="Train a network on a table, print train/test metrics, and save the model "
                    "as a .npz file (no pickle) that 'fastbp predict' reads.")
    tr.add_argument("file", metavar="FILE",
                    help=".csv with a header row and numeric feature columns; .npy, a 2-D numeric "
                         "array (--target is a column index); or .npz with arrays X and y "
                         "(--target is ignored)")
    tr.add_argument("--target", metavar="COLUMN",
                    help="the target column: a header name for .csv, a column index for .npy "
                         "(negative counts from the end); every other column is a feature. "
                         "Required for .csv and .npy")
    tr.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                    help="auto: classification when the target holds non-numbers (e.g. strings), "
                         "is an integer or boolean array (.npy/.npz), or has at most "
                         f"{MAX_AUTO_CLASSES} distinct values all integers; else regression "
                         "(default: auto)")
    tr.add_argument("--hidden", type=_layer_sizes, default=(64,), metavar="SIZES",
                    help="hidden layer sizes, comma-separated, e.g. 64,32 (default: 64)")
    tr.add_argument("--activation", choices=("relu", "logistic", "sigmoid", "tanh", "identity",
                                             "leaky_relu", "elu", "softplus"),
                    default="relu", help="activation of the hidden units (default: relu)")
    tr.add_argument("--output-activation", choices=("auto", "logistic", "softmax", "identity"),
                    default="auto",
                    help="auto: one logistic unit for 2 classes, softmax over k units for k > 2 "
                         "classes, identity for regression (default: auto)")
    tr.add_argument("--loss", choices=("auto", "log_loss", "squared_error"), default="auto",
                    help="auto: log_loss for classification, squared_error (1/2 sum (T-O)^2 per "
                         "tuple) for regression (default: auto)")
    tr.add_argument("--init", choices=("glorot", "uniform"), default="glorot",
                    help="weight initialisation: glorot (scikit-learn's) or uniform in [-0.5, 0.5] "
                         "(the textbook's) (default: glorot)")
    tr.add_argument("--mode", choices=("case", "minibatch", "epoch"), default="case",
                    help="case: update after every tuple; minibatch: after every --batch-size "
                         "tuples; epoch: once per pass over the data (default: case)")
    tr.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                    help="tuples per update in --mode minibatch (default: 32)")
    tr.add_argument("--epochs", type=_positive_int, default=30, metavar="N",
                    help="passes over the training data (default: 30)")
    tr.add_argument("--learning-rate", type=_float_in(0, np.inf, low_open=True), metavar="F",
                    help="step size (default: " + ", ".join(
                        f"{lr} for {m}" for m, (lr, _) in MODE_DEFAULTS.items()) + ")")
    tr.add_argument("--momentum", type=_float_in(0, 1, high_open=True), metavar="F",
                    help="momentum in [0, 1) (default: " + ", ".join(
                        f"{mom} for {m}" for m, (_, mom) in MODE_DEFAULTS.items()) + ")")
    tr.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="precision of the network and of all its arithmetic (default: float32)")
    tr.add_argument("--test-fraction", type=_float_in(0, 1, high_open=True), default=0.25,
                    metavar="F",
                    help="fraction of rows held out for testing, stratified by class for "
                         "classification; 0 trains on all rows (default: 0.25)")
    tr.add_argument("--seed", type=_seed, default=0,
                    help="seed of the split, the weight initialisation and the shuffles (default: 0)")
    tr.add_argument("--n-jobs", type=_n_jobs, metavar="N",
                    help="Numba threads for the parallel kernels, -1 for all (default: Numba's "
                         "current setting)")
    tr.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                    help="scale each feature to mean 0 and standard deviation 1 with the training "
                         "rows' statistics, which are saved with the model (default: on)")
    tr.add_argument("--out", metavar="MODEL",
                    help="where to save the model (default: FILE's name with its suffix replaced "
                         "by .fastbp.npz, next to FILE)")
    tr.add_argument("--no-progress", dest="progress", action="store_false",
                    help="do not show the progress bar (default: shown)")
    tr.add_argument("--plot", metavar="PNG", default=None,
                    help="draw the loss and accuracy per epoch, on the training rows and the "
                         "held-out test rows, to this file (needs matplotlib; default: none)")
    tr.set_defaults(run=run_train)

    pr = commands.add_parser(
        "predict", help="predict with a saved model",
        description="Predictions of a model saved by 'fastbp train', written as CSV: a column "
                    "'prediction' (class label or value) and, for classification, one column "
                    "'p_<label>' per class with the network's output for it.")
    pr.add_argument("model", metavar="MODEL", help="a .npz file written by 'fastbp train'")
    pr.add_argument("file", metavar="FILE",
                    help=".csv holding (at least) the model's feature columns by name; .npy with "
                         "the feature columns (and, optionally, the target column the model was "
                         "trained with, which is dropped); or .npz with an array X")
    pr.add_argument("--out", metavar="CSV", help="write the predictions here (default: standard output)")
    pr.set_defaults(run=run_predict)

    # listed here for --help; main() hands `fastbp sweep ...` to fastbp.sweep's own parser
    commands.add_parser("sweep", add_help=False,
                        help="run a grid of training runs, here or on a Dask cluster")
    return parser
