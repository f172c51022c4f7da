"""The fastbp command line: `fastbp demo`, `fastbp train FILE`, `fastbp predict MODEL FILE`,
`fastbp compile`, `fastbp sweep`.

    fastbp demo                          XOR (case and epoch updating) and scikit-learn's digits
    fastbp train data.csv --target y     train on a table, print metrics, save the model (.npz)
    fastbp predict model.npz data.csv    predictions of a saved model, as CSV
    fastbp compile                       compile the common kernels ahead of first use
    fastbp sweep --config g.toml --out r a grid of training runs, here or on a Dask cluster

`main(argv)` returns the exit code: 0 on success, 2 on bad input (one line on stderr
naming the problem, never a traceback), 130 when interrupted, 141 when standard output
is a pipe closed early (as by `| head`).

The package: parser (every command and option), demo, data (reading tables), commands
(train, predict, compile and the model files; `fastbp sweep` is fastbp.sweep's own
command line), _common (defaults, UsageError, reports).
"""
import os
import sys

from ._common import UsageError
from .commands import _load_model, _save_model  # noqa: F401  (the model files, for tests)
from .parser import build_parser

__all__ = ["main", "build_parser", "UsageError"]


def main(argv=None):
    """Run the command line on argv (default: sys.argv[1:]); return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"]:  # its own parser, --help included (fastbp.sweep, scripts/sweep.py)
        from .. import sweep
        return sweep.main(argv[1:], prog="fastbp sweep")
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
