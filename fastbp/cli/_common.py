"""What every command of the command line shares: its defaults, UsageError (bad input,
reported as one line, exit code 2) and the report and training helpers."""
import time
import warnings
from pathlib import Path

from .._compile import warm_up as _warm_up  # noqa: F401  (the commands' warm-up)
from ..train import InterruptedWarning, train

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


def check_plot_path(path, required=True):
    """Before any training: the plot `path` (None or empty: none) can be drawn -- matplotlib is
    installed and the folder exists. Returns the path to draw to, or None. required=False
    (the demo's default plot): without matplotlib, a note and no plot instead of an error."""
    if not path:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if not required:
            print(f'(no plot: {path} needs matplotlib, pip install "fastbp[plot]")')
            return None
        raise UsageError(f'--plot {path} needs matplotlib: pip install "fastbp[plot]" (or leave '
                         "out --plot)") from None
    check_output_path(path, "--plot")
    return path


def check_output_path(path, option):
    """Before any work: the folder `path` goes into exists, and `path` is not a folder."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")


def _write_plot(path, history, title):
    """fastbp.plot_history to `path` (nothing for an empty path or None), a path
    check_plot_path returned."""
    if not path:
        return
    import matplotlib  # there: check_plot_path saw to it before training
    matplotlib.use("Agg")  # a file, never a window
    from ..plots import plot_history
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
