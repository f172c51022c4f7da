"""The fastbp command line: `fastbp demo`, `fastbp train FILE`, `fastbp predict MODEL FILE`.

    fastbp demo                          XOR (case and epoch updating) and scikit-learn's digits
    fastbp train data.csv --target y     train on a table, print metrics, save the model (.npz)
    fastbp predict model.npz data.csv    predictions of a saved model, as CSV
    fastbp compile                       compile the common kernels ahead of first use

`main(argv)` returns the exit code: 0 on success, 2 on bad input (one line on stderr
naming the problem, never a traceback), 130 when interrupted, 141 when standard output
is a pipe closed early (as by `| head`).
"""
import argparse
import csv
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import datasets, io
from ._version import __version__
from .network import Network
from ._threads import compute_threads
from ._validation import is_int, is_number, short_repr
from .train import InterruptedWarning, train

# -- defaults, one place ----------------------------------------------------------------------
MODE_DEFAULTS = {  # learning rate and momentum per updating mode, when not given
    "case": (0.01, 0.0),
    "minibatch": (0.05, 0.9),
    "epoch": (0.5, 0.9),
}
MAX_AUTO_CLASSES = 20     # --task auto: at most this many distinct integer values is classification
MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}   # CSV cells read as missing values



class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- argument types ----------------------------------------------------------------------------
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
        if size < 1:
            raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {size} in {text!r}")
        sizes.append(size)
    return tuple(sizes)


def _int_at_least(minimum, also=()):
    """An int type for argparse: >= minimum, or one of the special values `also` (e.g. -1)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum and value not in also:
            extra = "".join(f"{v} or " for v in also)
            raise argparse.ArgumentTypeError(f"must be {extra}>= {minimum}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)
_n_jobs = _int_at_least(1, also=(-1,))  # -1: all threads


def _float_in(low, high, low_open=False, high_open=False):
    """A float type for argparse within [low, high] (either end open)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not np.isfinite(value) or value < low or (low_open and value == low) \
                or value > high or (high_open and value == high):
            if np.isinf(high):
                wanted = f"a finite number {'>' if low_open else '>='} {low}"
            else:
                wanted = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value
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
                    "several; predict and evaluate. They run in parallel processes, one per core. "
                    "The machine code is kept in fastbp's cache folder (--where), so later "
                    "processes load it instead of compiling: run this once in a Dockerfile or a "
                    "CI job to bake the cache. Other settings (another activation, loss, "
                    "optimizer, dropout, validation, track='end', RNN, batch norm) still compile "
                    "on first use. On the project's 2-core test machine it took "
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
        description="Train the XOR problem in case and in epoch updating until every tuple is "
                    "classified right, then a 64-64-10 network on scikit-learn's bundled 8x8 digits "
                    "(75/25 stratified split). Each training prints its final loss, accuracy, epochs, "
                    "seconds and training tuples per second. The first run compiles the kernels "
                    "(cached on disk afterwards).")
    demo.add_argument("--plot", default="fastbp-demo.png", metavar="PNG",
                      help="where to draw the digits run's training and validation curves "
                           "(default: fastbp-demo.png; needs matplotlib: pip install "
                           "\"fastbp[plot]\"; --plot '' for none)")
    demo.add_argument("--quick", action="store_true",
                      help="train digits for 3 epochs instead of the default 20 (for smoke tests)")
    demo.add_argument("--no-progress", dest="progress", action="store_false",
                      help="do not show a progress bar per training (default: shown)")
    demo.add_argument("--n-jobs", type=_n_jobs, default=1, metavar="N",
                      help="Numba threads for the parallel kernels (the per-epoch evaluation "
                           "pass), -1 for all; the demo's data are small, so waking more threads "
                           "every epoch costs more than it saves (default: 1)")
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
    return parser


def main(argv=None):
    """Run the command line on argv (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already reported
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return args.run(args) or 0
    except UsageError as error:
        print(f"fastbp {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away, e.g. `fastbp predict ... | head`
        try:  # point stdout at /dev/null, so flushing it at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


# -- reporting ---------------------------------------------------------------------------------
def _percent(fraction):
    return "n/a" if fraction is None else f"{100 * fraction:.1f}%"


def _result_line(history, seconds, train_metric, test_metric=None, name="accuracy"):
    """One line: final loss, train/test metric, epochs (and why training stopped), time, throughput."""
    parts = [f"loss {history.loss[-1]:.4g}", f"train {name} {train_metric}"]
    if test_metric is not None:
        parts.append(f"test {name} {test_metric}")
    parts += [f"epochs {history.n_epochs} ({history.stopped_by})", f"{seconds:.2f} s",
              f"{history.tuples_per_second:,.0f} tuples/s"]
    return "  ".join(parts)


def _warm_up(net, X, Y, **options):
    """Compile (or load from Numba's disk cache) the kernels a training will call: one epoch
    over two tuples on a copy of net. Returns the seconds it took, so the timed training that
    follows measures training only."""
    start = time.perf_counter()
    options = dict(options, epochs=1, progress=False, max_misclassified=None)
    if options.get("batch_size"):
        options["batch_size"] = min(options["batch_size"], 2)
    train(net.copy(), X[:2], Y[:2], **options)
    return time.perf_counter() - start


def _write_plot(path, history, title):
    """fastbp.plot_history to `path` (nothing for an empty path); a note when matplotlib is missing."""
    if not path:
        return
    try:
        import matplotlib
    except ImportError:
        print(f'(no plot: {path} needs matplotlib, pip install "fastbp[plot]")')
        return
    matplotlib.use("Agg")  # a file, never a window
    from .plots import plot_history
    try:
        plot_history(history, path, title=title)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot write the plot to {path}: {error}") from None
    print(f"wrote the training curves to {path}")


def _timed_train(net, X, Y, stop_on_interrupt=True, **options):
    """(History, wall seconds of train()). train() answers Ctrl-C by returning the epochs
    done (stopped_by "interrupted"); the demo then stops (KeyboardInterrupt), while `train`
    saves what it has (stop_on_interrupt=False) before exiting with 130."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterruptedWarning)  # said in one line below instead
        history = train(net, X, Y, **options)
    if history.stopped_by == "interrupted" and (stop_on_interrupt or history.n_epochs == 0):
        raise KeyboardInterrupt
    return history, time.perf_counter() - start


# -- compile -----------------------------------------------------------------------------------
COMPILE_SECONDS_HERE = 82  # `fastbp compile` on an empty cache, 2-core test machine (README)


def run_compile(args):
    import shutil
    from ._compile import compile_all
    from ._kernels._cache import cache_dir
    where = cache_dir()
    if args.where:
        print(where)
        return 0
    if args.clear:
        shutil.rmtree(where, ignore_errors=True)
        print(f"removed {where}")
        return 0
    print(f"compiling fastbp's common kernels into {where}")
    seconds = compile_all(args.jobs)
    print(f"done in {seconds:.1f} s")
    return 0


# -- demo --------------------------------------------------------------------------------------
XOR_RUNS = (  # (mode, learning rate, momentum): each learns XOR within a few hundred epochs
    ("case", 0.5, 0.9),
    ("epoch", 2.0, 0.9),
)
XOR_MAX_EPOCHS = 5000
DIGITS_LR, DIGITS_EPOCHS, DIGITS_QUICK_EPOCHS = 0.01, 20, 3


def run_demo(args):
    import numba
    total = time.perf_counter()
    with compute_threads(args.n_jobs):  # what train() will run with: -1 and too many are clipped there
        threads = numba.get_num_threads()
    print(f"fastbp {__version__} demo: seed {args.seed}, {threads} Numba thread(s)")

    # The seeds' XOR problem: 4 tuples, not linearly separable, so it needs the hidden layer.
    X, y = datasets.xor()
    Y = y.reshape(-1, 1).astype(np.float64)
    for mode, lr, momentum in XOR_RUNS:
        net = Network([2, 4, 1], activation="logistic", output_activation="logistic",
                      loss="squared_error", dtype=np.float64, random_state=args.seed)
        options = dict(mode=mode, learning_rate=lr, momentum=momentum, n_jobs=args.n_jobs)
        jit = _warm_up(net, X, Y, **options)
        print(f"\nXOR, {mode} updating, learning rate {lr}, momentum {momentum}, until all 4 "
              f"tuples are right: {net!r} (kernels ready in {jit:.2f} s)", flush=True)
        history, seconds = _timed_train(net, X, Y, epochs=XOR_MAX_EPOCHS, max_misclassified=0.0,
                                        progress=args.progress, **options)
        outputs = " ".join(f"{o:.3f}" for o in net.predict(X)[:, 0])
        print(f"xor {mode:<6} " + _result_line(history, seconds, _percent(history.accuracy[-1])))
        print(f"           outputs for (0,0) (0,1) (1,0) (1,1): {outputs}  (targets 0 1 1 0)")

    # scikit-learn's bundled 8x8 digits: 1797 images, 10 classes.
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
    net = Network([64, 64, 10], activation="relu", output_activation="softmax", loss="log_loss",
                  dtype=np.float32, init="glorot", random_state=args.seed)
    options = dict(mode="case", learning_rate=DIGITS_LR, n_jobs=args.n_jobs)
    jit = _warm_up(net, X_train, Y_train, **options)
    print(f"\ndigits (scikit-learn's 8x8 images, 10 classes), {len(X_train)} train / {len(X_test)} "
          f"test tuples, standardized; case updating, learning rate {DIGITS_LR}, {epochs} epochs: "
          f"{net!r} (kernels ready in {jit:.2f} s)", flush=True)
    history, seconds = _timed_train(net, X_train, Y_train, epochs=epochs, progress=args.progress,
                                    validation=(X_test, Y_test), **options)
    _, test_accuracy = net.evaluate(X_test, Y_test)
    print("digits     " + _result_line(history, seconds, _percent(history.accuracy[-1]),
                                       _percent(test_accuracy)))
    _write_plot(args.plot, history, "digits, case updating: training and test (validation) curves")
    print(f"\ndemo done in {time.perf_counter() - total:.1f} s")
    return 0


# -- reading data ------------------------------------------------------------------------------
def _is_missing(cell):
    return cell.strip().lower() in MISSING


def _read_csv(path):
    """(header, rows as a list of lists of str); refuses ragged or empty files."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text CSV file") from None
    except csv.Error as error:
        raise UsageError(f"{path}: not a readable CSV file ({error})") from None
    if not lines:
        raise UsageError(f"{path} is empty")
    header = [name.strip() for name in lines[0]]
    if len(lines) < 2:
        raise UsageError(f"{path} has a header but no data rows")
    for name in header:
        if header.count(name) > 1:
            raise UsageError(f"{path}: column name {name!r} appears more than once in the header")
    for i, row in enumerate(lines[1:]):
        if len(row) != len(header):
            raise UsageError(f"{path}: data row {i + 1} has {len(row)} fields, the header has {len(header)}")
    return header, lines[1:]


def _numeric_column(path, name, cells, what):
    """A CSV column as float64, or UsageError naming the column and the first bad row."""
    try:
        values = np.array(cells, dtype=np.float64)
        if np.isfinite(values).all():
            return values
    except ValueError:
        pass
    for i, cell in enumerate(cells):  # find the first offending cell, to name it
        try:
            value = float(cell)
        except ValueError:
            if not _is_missing(cell):
                raise UsageError(f"{path}: {what} column {name!r} is not numeric: data row {i + 1} "
                                 f"holds {cell.strip()!r}") from None
            value = float("nan")
        if not np.isfinite(value):
            raise UsageError(f"{path}: {what} column {name!r} has a missing or infinite value "
                             f"(NaN or inf) in data row {i + 1}")
    raise AssertionError("unreachable: some cell was not a finite number")


def _load_table(path, target, for_prediction=False, feature_names=None, target_index=None):
    """Read FILE into (X float64, y or None, feature names, target name, target index).

    For training, `target` names the target (CSV column name / .npy column index). For
    prediction, `feature_names` picks the CSV columns and `target_index` is dropped from a
    .npy that still holds the target column.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, rows = _read_csv(path)
        columns = dict(zip(header, zip(*rows)))
        if for_prediction:
            absent = [name for name in feature_names if name not in columns]
            if absent:
                raise UsageError(f"{path}: feature column(s) {', '.join(map(repr, absent))} of the model "
                                 f"are not in the header")
            names, y, target_name = list(feature_names), None, None
        else:
            if target is None:
                raise UsageError("--target COLUMN is required for a .csv file")
            if target not in columns:
                raise UsageError(f"{path}: unknown target column {target!r}; the columns are "
                                 f"{', '.join(map(repr, header))}")
            names = [name for name in header if name != target]
            target_name = target
            y = _target_from_cells(path, target, columns[target])
        if not names:
            raise UsageError(f"{path}: no feature columns besides the target {target!r}")
        X = np.column_stack([_numeric_column(path, name, list(columns[name]), "feature")
                             for name in names])
        return X, y, names, target_name, None

    if suffix == ".npy":
        array = _np_load(path)
        if not isinstance(array, np.ndarray):
            raise UsageError(f"{path}: expected one array in a .npy file")
        if array.ndim != 2:
            raise UsageError(f"{path}: expected a 2-D array (rows, columns), got shape {array.shape}")
        _check_numeric(path, array, "array")
        n_columns = array.shape[1]
        if for_prediction:
            if target_index is not None and n_columns == len(feature_names) + 1:
                array = np.delete(array, target_index, axis=1)
            if array.shape[1] != len(feature_names):
                raise UsageError(f"{path} has {n_columns} columns, the model expects "
                                 f"{len(feature_names)} features")
            return _finite_features(path, array, list(feature_names)), None, list(feature_names), None, None
        if target is None:
            raise UsageError("--target INDEX (a column index) is required for a .npy file")
        try:
            index = int(target)
        except ValueError:
            raise UsageError(f"--target must be a column index for a .npy file, got {target!r}") from None
        if not -n_columns <= index < n_columns:
            raise UsageError(f"{path}: target column index {index} is out of range for "
                             f"{n_columns} columns")
        index %= n_columns
        if n_columns < 2:
            raise UsageError(f"{path}: no feature columns besides the target")
        names = [f"x{j}" for j in range(n_columns) if j != index]
        X = _finite_features(path, np.delete(array, index, axis=1), names)
        return X, array[:, index], names, str(index), index

    if suffix == ".npz":
        arrays = _np_load(path)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise UsageError(f"{path}: not a .npz archive")
        with arrays:
            keys = set(arrays.files)
            needed = {"X"} if for_prediction else {"X", "y"}
            if not needed <= keys:
                raise UsageError(f"{path}: a .npz file needs arrays {' and '.join(sorted(needed))}; "
                                 f"it holds {', '.join(sorted(keys)) or 'none'}")
            try:
                X = arrays["X"]
                y = None if for_prediction else arrays["y"]
            except ValueError as error:  # object arrays need pickle, which is refused
                raise UsageError(f"{path}: cannot read arrays without pickle ({error})") from None
        if X.ndim != 2:
            raise UsageError(f"{path}: X must be 2-D (rows, features), got shape {X.shape}")
        _check_numeric(path, X, "X")
        names = list(feature_names) if for_prediction else [f"x{j}" for j in range(X.shape[1])]
        if for_prediction and X.shape[1] != len(names):
            raise UsageError(f"{path}: X has {X.shape[1]} columns, the model expects {len(names)} features")
        X = _finite_features(path, X, names)
        if y is not None:
            if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
                raise UsageError(f"{path}: y must have one entry (or row) per row of X: X has "
                                 f"{X.shape[0]} rows, y has shape {y.shape}")
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.dtype.kind not in "biufUS":
                raise UsageError(f"{path}: y must hold numbers or strings, got dtype {y.dtype}")
        return X, y, names, "y", None

    raise UsageError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
                     "use .csv, .npy or .npz")


def _np_load(path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        raise UsageError(f"{path}: cannot be read without pickle ({error})") from None
    except (OSError, EOFError) as error:
        raise UsageError(f"{path}: not a readable NumPy file ({error})") from None


def _check_numeric(path, array, what):
    if array.dtype.kind not in "biuf":
        raise UsageError(f"{path}: {what} must hold numbers, got dtype {array.dtype}")


def _finite_features(path, X, names):
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UsageError(f"{path}: feature {names[col]!r} has a missing or infinite value "
                         f"(NaN or inf) in row {row + 1}")
    return X


def _target_from_cells(path, name, cells):
    """A CSV target column: float64 when every cell is a number, else the stripped strings."""
    cells = [cell.strip() for cell in cells]
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            raise UsageError(f"{path}: target column {name!r} has a missing value in data row {i + 1}")
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        return np.array(cells)
    if not np.isfinite(values).all():
        raise UsageError(f"{path}: target column {name!r} holds infinite values")
    return values


# -- task --------------------------------------------------------------------------------------
def _integer_valued(y):
    return y.dtype.kind in "biu" or (y.dtype.kind == "f" and bool(np.all(y == np.round(y))))


def _resolve_task(task, y):
    """'classification' or 'regression' for target y under --task."""
    if y.ndim == 2:
        if task == "classification":
            raise UsageError("classification needs one target column; y is 2-D")
        return "regression"
    numeric = y.dtype.kind in "biuf"
    if task == "auto":
        if not numeric or y.dtype.kind in "biu":
            return "classification"
        if _integer_valued(y) and len(np.unique(y)) <= MAX_AUTO_CLASSES:
            return "classification"
        return "regression"
    if task == "regression" and not numeric:
        raise UsageError("--task regression needs a numeric target; the target holds "
                         f"non-numbers such as {str(y[0])!r}")
    return task


def _label_list(classes):
    """Class labels as JSON-able Python values (str, int or float)."""
    if classes.dtype.kind in "US":
        return [str(c) for c in classes]
    if _integer_valued(classes):
        return [int(c) for c in classes]
    return [float(c) for c in classes]


# -- train -------------------------------------------------------------------------------------
def _targets(task, y, args, dtype):
    """What the network is trained to output for target y: (Y, output_activation, loss,
    labels to stratify the split by or None, metadata: class labels)."""
    if task == "regression":
        output = "identity" if args.output_activation == "auto" else args.output_activation
        loss = "squared_error" if args.loss == "auto" else args.loss
        if output != "identity" or loss != "squared_error":
            raise UsageError("regression needs --output-activation identity and --loss squared_error, "
                             f"got {output} and {loss}")
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1), output, loss, None, {}

    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise UsageError(f"the target has only one class ({_label_list(classes)[0]!r}); "
                         "classification needs at least 2")
    output = args.output_activation
    if output == "auto":  # as scikit-learn's MLPClassifier: one logistic unit for two classes
        output = "logistic" if len(classes) == 2 else "softmax"
    if output == "identity":
        raise UsageError("classification needs --output-activation logistic or softmax, not identity")
    loss = "log_loss" if args.loss == "auto" else args.loss
    if len(classes) == 2 and output == "logistic":
        Y = codes.reshape(-1, 1).astype(dtype)
    else:
        Y = datasets.one_hot(codes, len(classes), dtype=dtype)
    return Y, output, loss, codes, {"classes": _label_list(classes)}


def _split(n_rows, test_fraction, seed, stratify):
    """(train rows, test rows, how they were drawn): stratified by class when possible."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n_rows)
    if test_fraction == 0:
        return rows, rows[:0], "no test set"
    if stratify is not None:
        try:
            return (*train_test_split(rows, test_size=test_fraction, random_state=seed,
                                      stratify=stratify), "stratified")
        except ValueError:  # a class with too few rows to be in both parts
            pass
    try:
        train_rows, test_rows = train_test_split(rows, test_size=test_fraction, random_state=seed)
    except ValueError as error:
        raise UsageError(f"cannot hold out --test-fraction {test_fraction} of {n_rows} rows: "
                         f"{error}") from None
    return train_rows, test_rows, "random" if stratify is None else "random: a class is too small to stratify"


def run_train(args):
    dtype = np.dtype(args.dtype)
    X, y, feature_names, target_name, target_index = _load_table(args.file, args.target)
    n_rows = X.shape[0]
    if n_rows < 2:
        raise UsageError(f"{args.file}: need at least 2 rows to train, got {n_rows}")
    task = _resolve_task(args.task, y)
    Y, output, loss, stratify, classes = _targets(task, y, args, dtype)
    n_outputs = Y.shape[1]
    meta = dict({"task": task, "feature_names": feature_names, "target": target_name,
                 "target_index": target_index, "classes": None, "y_mean": None, "y_std": None},
                **classes)
    train_rows, test_rows, split_note = _split(n_rows, args.test_fraction, args.seed, stratify)

    X_train, X_test = X[train_rows], X[test_rows]
    if args.standardize:
        X_train, x_mean, x_std = datasets.standardize(X_train, return_stats=True)
        if len(test_rows):
            X_test = datasets.standardize(X_test, mean=x_mean, std=x_std)
        meta["x_mean"], meta["x_std"] = [float(v) for v in x_mean], [float(v) for v in x_std]
    else:
        meta["x_mean"] = meta["x_std"] = None
    Y_train, Y_test = Y[train_rows], Y[test_rows]
    if task == "regression":  # train on standardized targets; predictions are mapped back
        y_mean = Y_train.mean(axis=0)
        y_std = Y_train.std(axis=0)
        y_std[y_std == 0] = 1.0
        meta["y_mean"], meta["y_std"] = [float(v) for v in y_mean], [float(v) for v in y_std]
        Y_fit = ((Y_train - y_mean) / y_std).astype(dtype)
    else:
        Y_fit = Y_train

    mode = args.mode
    lr = MODE_DEFAULTS[mode][0] if args.learning_rate is None else args.learning_rate
    momentum = MODE_DEFAULTS[mode][1] if args.momentum is None else args.momentum
    try:
        net = Network([X.shape[1], *args.hidden, n_outputs], activation=args.activation,
                      output_activation=output, loss=loss, dtype=dtype, init=args.init,
                      random_state=args.seed)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None

    if task == "classification":
        labels = ", ".join(map(str, meta["classes"][:10])) + (", ..." if len(meta["classes"]) > 10 else "")
        kind = f"classification, {len(meta['classes'])} classes ({labels})"
    else:
        kind = f"regression, {n_outputs} output(s)"
    print(f"{args.file}: {n_rows} rows, {X.shape[1]} features, target {target_name!r}: {kind}")
    print(f"split: {len(train_rows)} train / {len(test_rows)} test ({split_note}, seed {args.seed}); "
          f"features {'standardized with the training rows' if args.standardize else 'as given'}")
    batch = f", batch {args.batch_size}" if mode == "minibatch" else ""
    options = dict(mode=mode, batch_size=args.batch_size if mode == "minibatch" else None,
                   learning_rate=lr, momentum=momentum, n_jobs=args.n_jobs)
    try:
        jit = _warm_up(net, X_train, Y_fit, **options)
        print(f"{net!r}, {mode} updating{batch}, learning rate {lr}, momentum {momentum}, "
              f"{args.epochs} epochs (kernels ready in {jit:.2f} s)", flush=True)
        validation = None
        if args.plot and len(test_rows):  # the test rows' curve in the plot
            validation = (X_test, Y_test if task == "classification" else
                          ((Y_test - np.asarray(meta["y_mean"])) / np.asarray(meta["y_std"])).astype(dtype))
        history, seconds = _timed_train(net, X_train, Y_fit, epochs=args.epochs,
                                        progress=args.progress, stop_on_interrupt=False,
                                        validation=validation, **options)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None

    if task == "classification":
        train_metric = _percent(history.accuracy[-1])
        test_metric = _percent(net.evaluate(X_test, Y_test)[1]) if len(test_rows) else None
        print("result: " + _result_line(history, seconds, train_metric, test_metric))
    else:
        train_fit = _regression_scores(_unscale(net.predict(X_train), meta), Y_train)
        test_fit = _regression_scores(_unscale(net.predict(X_test), meta), Y_test) if len(test_rows) else None
        print("result: " + _result_line(history, seconds, train_fit, test_fit, name="RMSE"))

    out = Path(args.out) if args.out else Path(args.file).with_suffix(".fastbp.npz")
    _save_model(out, net, meta)
    print(f"saved model to {out}")
    if history.n_epochs:
        _write_plot(args.plot, history, f"{Path(args.file).name}: {mode} updating")
    if history.stopped_by == "interrupted":
        print(f"interrupted: the model saved is the one after epoch {history.n_epochs}",
              file=sys.stderr)
        return 130
    return 0


def _unscale(outputs, meta):
    return outputs.astype(np.float64) * np.asarray(meta["y_std"]) + np.asarray(meta["y_mean"])


def _regression_scores(predicted, Y):
    """'RMSE (R2 r2)' in the target's units, averaged over outputs."""
    rmse = float(np.sqrt(np.mean((predicted - Y) ** 2)))
    total = np.sum((Y - Y.mean(axis=0)) ** 2)
    r2 = 1.0 - np.sum((predicted - Y) ** 2) / total if total > 0 else float("nan")
    return f"{rmse:.4g} (R2 {r2:.3f})"


# -- predict -----------------------------------------------------------------------------------
def _predict_outputs(net, meta, X):
    """(predictions, outputs) of a loaded model for raw features X (float64, unscaled)."""
    if meta.get("x_mean") is not None:
        X = datasets.standardize(X, mean=np.asarray(meta["x_mean"]), std=np.asarray(meta["x_std"]))
    outputs = net.predict(X)
    if meta["task"] == "regression":
        values = _unscale(outputs, meta)
        return (values[:, 0] if values.shape[1] == 1 else values), outputs
    classes = np.asarray(meta["classes"])
    if outputs.shape[1] == 1:
        return classes[(outputs[:, 0] >= 0.5).astype(np.int64)], outputs
    return classes[np.argmax(outputs, axis=1)], outputs


def run_predict(args):
    net, meta = _load_model(args.model)
    X, _, _, _, _ = _load_table(args.file, None, for_prediction=True,
                                feature_names=meta["feature_names"],
                                target_index=meta.get("target_index"))
    try:
        predictions, outputs = _predict_outputs(net, meta, X)
    except (ValueError, TypeError) as error:  # e.g. features that overflow once standardized
        raise UsageError(f"cannot predict with {args.model}: {error}") from None
    if meta["task"] == "classification":
        classes = meta["classes"]
        if outputs.shape[1] == 1:  # one logistic unit: its output is the second class's score
            outputs = np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]])
        header = ["prediction"] + [f"p_{label}" for label in classes]
        rows = ([label] + [f"{p:.6g}" for p in row] for label, row in zip(predictions.tolist(), outputs))
    else:
        values = predictions.reshape(len(X), -1)
        header = ["prediction"] if values.shape[1] == 1 else [f"prediction_{k}" for k in range(values.shape[1])]
        rows = ([repr(float(v)) for v in row] for row in values)
    target = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(target)
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        if args.out:
            target.close()
    if args.out:
        print(f"wrote {len(X)} predictions to {args.out}", file=sys.stderr)
    return 0


# -- saving and loading models, without pickle (fastbp.io) ---------------------------------------
def _save_model(path, net, meta):
    """Write net and its metadata to one .npz (fastbp.io's format, atomically)."""
    try:
        return io.save_network_with_meta(net, Path(path), meta)
    except OSError as error:
        raise UsageError(f"cannot write the model to {path}: {error.strerror or error}") from None


def _load_model(path):
    """(Network, header dict) from a file written by _save_model; never unpickles.

    Any file that is not such a model (a tampered or truncated one included) is a UsageError
    naming what is wrong: the header is checked field by field before anything is built from it.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such model file")
    try:
        header, arrays = io.read_archive(path, kinds=("Network",))
        check = io.Checker(path)
        absent = [key for key in _HEADER_KEYS if key not in header]
        if absent:
            check.fail(f"it lacks {', '.join(map(repr, absent))}")
        net = io.decode_network(header, arrays, check)
    except (io.ModelFileError, OSError) as error:
        raise UsageError(str(error)) from None

    def bad(problem):
        return UsageError(f"{path}: invalid model header: {problem}")

    _check_header_meta(header, net, bad)
    return net, header


_HEADER_KEYS = ("sizes", "activation", "output_activation", "loss", "dtype", "task", "feature_names")


def _check_header_meta(header, net, bad):
    """Check the fields 'fastbp predict' reads, against the network; bad(problem) otherwise."""
    n_features, n_outputs = net.n_inputs, net.n_outputs
    names = header["feature_names"]
    if not isinstance(names, list) or len(names) != n_features \
            or not all(isinstance(name, str) for name in names):
        raise bad(f"'feature_names' must be a list of {n_features} strings, got {short_repr(names)}")
    index = header.get("target_index")
    if index is not None and not (is_int(index) and 0 <= index <= n_features):
        raise bad(f"'target_index' must be null or an integer in 0..{n_features}, got {short_repr(index)}")

    def numbers(key, length, positive=False):
        values = header.get(key)
        if not isinstance(values, list) or len(values) != length \
                or not all(is_number(v, finite=True) and (v > 0 or not positive) for v in values):
            raise bad(f"'{key}' must be a list of {length} finite{' positive' if positive else ''} "
                      f"numbers, got {short_repr(values)}")

    if (header.get("x_mean") is None) != (header.get("x_std") is None):
        raise bad("'x_mean' and 'x_std' must both be given or both be null")
    if header.get("x_mean") is not None:
        numbers("x_mean", n_features)
        numbers("x_std", n_features, positive=True)
    task = header["task"]
    if task == "regression":
        numbers("y_mean", n_outputs)
        numbers("y_std", n_outputs, positive=True)
    elif task == "classification":
        classes = header.get("classes")
        n_classes = 2 if n_outputs == 1 else n_outputs
        if not isinstance(classes, list) or len(classes) != n_classes \
                or not (all(isinstance(c, str) for c in classes) or all(is_number(c, finite=True) for c in classes)):
            raise bad(f"'classes' must be a list of {n_classes} labels (all strings or all numbers) "
                      f"for {n_outputs} output unit(s), got {short_repr(classes)}")
    else:
        raise bad(f"'task' must be 'classification' or 'regression', got {short_repr(task)}")
