"""fastbp.MLPClassifier against scikit-learn's MLPClassifier: fit time, epochs, time per
epoch and test accuracy on load_digits, load_breast_cancer and the `mid` workload of
fastbp.datasets.WORKLOADS, printed as a Markdown table (paste it into the README as is).

    python scripts/compare_sklearn.py                         # everything (a few minutes)
    python scripts/compare_sklearn.py --datasets digits,breast_cancer --repeats 3
    python scripts/compare_sklearn.py --datasets mid --mid-rows 20000
    python scripts/compare_sklearn.py --quick                 # smoke test, about a minute
    python scripts/compare_sklearn.py --blas-threads 1        # on a machine others keep busy
    python scripts/compare_sklearn.py --seeds 0,1,2,3         # fits over several random_states

Settings:

- defaults: MLPClassifier() as it comes (adam, batch_size="auto" = 200, relu, max_iter=200,
  stopping after 10 epochs without improvement), except random_state, and
  hidden_layer_sizes=(64, 64) on mid so the network is the workload's 32-64-64-1;
- sgd-batch1: solver="sgd", batch_size=1 (case updating), learning_rate_init=0.01
  (--sgd-learning-rate), the rest as it comes (momentum 0.9, Nesterov). On digits 0.01
  diverges, in scikit-learn as in fastbp (marked † in the table); 0.001 converges. On
  mid, max_iter is --mid-sgd-epochs, because scikit-learn takes about 14 s per 100,000
  tuples (the time per epoch is what the comparison is about).

Data: a stratified 75/25 train/test split (random_state=0). The bundled sets are
standardized by a StandardScaler fitted on the train split and stay float64; mid is
load_workload("mid")'s float32 X with labels Y[:, 0], not scaled (it is standard normal).

Both libraries fit the same arrays with the same parameters and random_state, one after
the other in this process. fastbp's kernels are compiled (or loaded from Numba's cache)
before any timing, by one fit and score on a slice of the train split with the same dtype
and settings (scikit-learn gets the same warm-up), so no time includes compilation. Times
are wall-clock seconds of fit() alone, the minimum over --repeats; time per epoch is fit
time / n_iter_; the ratios are scikit-learn's time / fastbp's. With several --seeds (the
estimators' random_state; the split keeps random_state=0) every row sums the fit times and
epochs over the seeds and averages the test accuracy: where a fit stops is decided by the
no-improvement rule, which rounding in the last bit moves by tens of epochs either way in
float32, so one seed's epoch count says little about either library. Progress goes to
stderr, the Markdown to stdout.
"""
import argparse
import gc
import os
import platform
import sys
import time
import warnings
from collections import namedtuple

import numba
import numpy as np
import sklearn
import threadpoolctl
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.preprocessing import StandardScaler

import fastbp
from fastbp import MLPClassifier as FastbpMLPClassifier
from fastbp.datasets import WORKLOADS, load_workload

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/_report.py
import _report  # noqa: E402
from _report import LoadAverage, comma_list, int_at_least, positive_float, ratio, sig3  # noqa: E402

DATASETS = ("digits", "breast_cancer", "mid")
SETTINGS = ("defaults", "sgd-batch1")
SETTING_LABELS = {
    "defaults": "defaults (adam, batch 200)",
    "sgd-batch1": "sgd, batch_size=1",
}
RANDOM_STATE = 0          # of the split, and of both estimators unless --seeds
TEST_SIZE = 0.25
WARMUP_ROWS = 500         # > 200, so "auto" batches are minibatches in the warm-up too
QUICK_MID_ROWS = 4000
QUICK_MAX_ITER = 10

Result = namedtuple("Result", "seconds epochs capped diverged accuracy")


# --------------------------------------------------------------------------- data


def load(name, mid_rows):
    """(X_train, X_test, y_train, y_test, description) of one dataset."""
    if name == "mid":
        X, Y = load_workload("mid", n_samples=mid_rows)  # float32 teacher data
        y = Y[:, 0]
        scale = False
    else:
        bunch = load_digits() if name == "digits" else load_breast_cancer()
        X, y = bunch.data, bunch.target
        scale = True
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=RANDOM_STATE, stratify=y)
    if scale:
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    n_classes = len(np.unique(y))
    desc = (f"{name} ({X_train.shape[0]:,} train / {X_test.shape[0]:,} test × "
            f"{X_train.shape[1]}, {n_classes} classes, {X_train.dtype})")
    return X_train, X_test, y_train, y_test, desc


def params_for(name, setting, max_iter_cap, mid_sgd_epochs, sgd_learning_rate):
    """Constructor parameters shared by both libraries."""
    params = dict(random_state=RANDOM_STATE)
    if name == "mid":
        params["hidden_layer_sizes"] = WORKLOADS["mid"].sizes[1:-1]  # (64, 64): 32-64-64-1
    if setting == "sgd-batch1":
        params.update(solver="sgd", batch_size=1, learning_rate_init=sgd_learning_rate)
        if name == "mid":
            params["max_iter"] = mid_sgd_epochs
    if max_iter_cap is not None:
        params["max_iter"] = min(params.get("max_iter", 200), max_iter_cap)
    return params


# --------------------------------------------------------------------------- timing


def fit_once(cls, params, X_train, y_train, X_test, y_test):
    """Seconds of fit, epochs, whether max_iter stopped it, whether it diverged (final
    training loss above ln(classes)), and test accuracy, of one fresh estimator."""
    est = cls(**params)
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    # worse than predicting every class with equal probability: log loss ln(classes)
    diverged = not np.isfinite(est.loss_) or est.loss_ > np.log(len(est.classes_))
    return Result(seconds, est.n_iter_, est.n_iter_ >= est.max_iter, diverged,
                  est.score(X_test, y_test))


def warm_up(params, X_train, y_train):
    """Compile (or load from cache) every fastbp kernel this setting uses: a 2-epoch fit
    and a score on a slice of the train split, same dtype, solver and batch size.
    scikit-learn gets the same warm-up (first-call costs such as starting BLAS threads)."""
    rows = min(len(X_train), WARMUP_ROWS)
    for cls in (FastbpMLPClassifier, SklearnMLPClassifier):
        est = cls(**{**params, "max_iter": 2})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train[:rows], y_train[:rows])
        est.score(X_train[:rows], y_train[:rows])


def compare(name, setting, data, repeats, max_iter_cap, mid_sgd_epochs, sgd_learning_rate,
            seeds=(RANDOM_STATE,)):
    """Both libraries on one dataset and setting: ({library: Result over the seeds}, params).
    Per seed, each library's fastest of `repeats` fits; over the seeds, fit times and epochs
    are summed and test accuracies averaged."""
    X_train, X_test, y_train, y_test, _ = data
    params = params_for(name, setting, max_iter_cap, mid_sgd_epochs, sgd_learning_rate)
    warm_up(params, X_train, y_train)
    libraries = {"scikit-learn": SklearnMLPClassifier, "fastbp": FastbpMLPClassifier}
    per_seed = {lib: [] for lib in libraries}
    for seed in seeds:
        best = {}
        for r in range(repeats):
            # alternate who goes first, so neither always gets a cold or a warm cache
            order = list(libraries) if r % 2 == 0 else list(libraries)[::-1]
            for lib in order:
                result = fit_once(libraries[lib], {**params, "random_state": seed},
                                  X_train, y_train, X_test, y_test)
                print(f"  {name} / {setting} / seed {seed} / {lib} run {r + 1}: "
                      f"{result.seconds:.3f} s, {result.epochs} epochs, accuracy "
                      f"{result.accuracy:.4f}{', diverged' if result.diverged else ''}",
                      file=sys.stderr, flush=True)
                if lib not in best or result.seconds < best[lib].seconds:
                    best[lib] = result
        for lib in libraries:
            per_seed[lib].append(best[lib])
    return {lib: Result(sum(r.seconds for r in results), sum(r.epochs for r in results),
                        any(r.capped for r in results), any(r.diverged for r in results),
                        float(np.mean([r.accuracy for r in results])))
            for lib, results in per_seed.items()}, params


# --------------------------------------------------------------------------- output


def machine_lines():
    """The machine and versions, as Markdown list items."""
    return [
        _report.cpu_line(),
        f"- fastbp: Numba threading layer {_report.threading_layer()}, {numba.get_num_threads()} "
        f"threads (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})",
        f"- BLAS (scikit-learn's matrix products): {_report.blas_libraries()}",
        f"- versions: Python {platform.python_version()}, fastbp {fastbp.__version__}, "
        f"numba {numba.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}",
    ]


def table(rows):
    header = ("| data | setting | epochs sklearn | epochs fastbp | fit s sklearn | fit s fastbp "
              "| fit ratio | s/epoch sklearn | s/epoch fastbp | epoch ratio "
              "| test acc sklearn | test acc fastbp |")
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for desc, setting, params, best in rows:
        sk, fb = best["scikit-learn"], best["fastbp"]
        label = SETTING_LABELS[setting]
        if "learning_rate_init" in params:
            label += f", lr {params['learning_rate_init']:g}"
        if "max_iter" in params:
            label += f", max_iter={params['max_iter']}"
        if "hidden_layer_sizes" in params:
            label += f", hidden {tuple(params['hidden_layer_sizes'])}"

        def epochs(res):
            return f"{res.epochs}{'*' if res.capped else ''}"

        def accuracy(res):
            return f"{res.accuracy:.3f}{'†' if res.diverged else ''}"

        sk_epoch, fb_epoch = sk.seconds / sk.epochs, fb.seconds / fb.epochs
        lines.append(
            f"| {desc} | {label} | {epochs(sk)} | {epochs(fb)} | {sig3(sk.seconds)} "
            f"| {sig3(fb.seconds)} | {ratio(sk.seconds, fb.seconds)} | {sig3(sk_epoch)} "
            f"| {sig3(fb_epoch)} | {ratio(sk_epoch, fb_epoch)} | {accuracy(sk)} | {accuracy(fb)} |")
    return lines


# --------------------------------------------------------------------------- main


def seed_list(text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"give one or more seeds >= 0, got {text!r}")
    return list(dict.fromkeys(seeds))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--datasets", type=comma_list(DATASETS, "dataset"), default=list(DATASETS),
                        help=f"comma-separated, from {', '.join(DATASETS)} (default: all)")
    parser.add_argument("--settings", type=comma_list(SETTINGS, "setting"), default=list(SETTINGS),
                        help=f"comma-separated, from {', '.join(SETTINGS)} (default: both)")
    parser.add_argument("--repeats", type=int_at_least(1), default=1,
                        help="fits per library and row; the minimum time is reported (default: 1)")
    parser.add_argument("--mid-rows", type=int_at_least(1000), default=None,
                        help="rows of the mid workload before the 75/25 split "
                             f"(default: 100000; {QUICK_MID_ROWS} with --quick)")
    parser.add_argument("--mid-sgd-epochs", type=int_at_least(1), default=2,
                        help="max_iter of sgd-batch1 on mid (default: 2)")
    parser.add_argument("--sgd-learning-rate", type=positive_float, default=0.01,
                        help="learning_rate_init of sgd-batch1 (default: 0.01)")
    parser.add_argument("--blas-threads", type=int_at_least(1), default=None,
                        help="limit the BLAS threads of the whole run (scikit-learn's matrix "
                             "products) with threadpoolctl (default: leave as is); on a machine "
                             "other processes keep busy, OpenBLAS's spinning threads can make "
                             "scikit-learn many times slower, and 1 is the fair setting")
    parser.add_argument("--seeds", type=seed_list, default=[RANDOM_STATE],
                        help="comma-separated random_states of the estimators; times and epochs "
                             f"are summed over them, accuracy averaged (default: {RANDOM_STATE})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: mid on {QUICK_MID_ROWS} rows unless --mid-rows, "
                             f"max_iter at most {QUICK_MAX_ITER}; the numbers mean little")
    args = parser.parse_args(argv)
    mid_rows = args.mid_rows or (QUICK_MID_ROWS if args.quick else WORKLOADS["mid"].n_samples)
    max_iter_cap = QUICK_MAX_ITER if args.quick else None

    started = time.perf_counter()
    load = LoadAverage()
    rows = []
    with threadpoolctl.threadpool_limits(limits=args.blas_threads, user_api="blas"):
        for name in args.datasets:
            data = load(name, mid_rows)
            print(f"{data[4]}", file=sys.stderr, flush=True)
            for setting in args.settings:
                best, params = compare(name, setting, data, args.repeats, max_iter_cap,
                                       args.mid_sgd_epochs, args.sgd_learning_rate, args.seeds)
                rows.append((data[4], setting, params, best))
        machine = machine_lines()
    elapsed = time.perf_counter() - started
    if load.line():
        machine.append(load.line())

    _report.print_heading("compare_sklearn.py", argv, machine)
    for line in table(rows):
        print(line)
    print()
    seeds = ("" if len(args.seeds) == 1 else
             f", summed over random_state {', '.join(map(str, args.seeds))} (epochs too; test "
             "accuracy is their mean)")
    print(f"Wall-clock seconds of fit() alone, the minimum of {args.repeats} "
          f"run{'s' if args.repeats != 1 else ''} per library{seeds}, the libraries alternating in one "
          "process on the same split and random_state. Time per epoch = fit time / epochs "
          "(n_iter_); ratio = scikit-learn's time / fastbp's. fastbp's kernels were compiled "
          "before timing (a fit and score on a slice with the same dtype and settings), so no "
          "time includes compilation. * = stopped at max_iter. † = diverged: the final "
          "training loss is above ln(classes), worse than guessing every class equally likely, "
          "and the accuracy is chance's play (a smaller --sgd-learning-rate converges).")
    if args.quick:
        print()
        print(f"--quick: max_iter at most {QUICK_MAX_ITER}, mid on {mid_rows:,} rows; "
              "a smoke test, not a benchmark.")
    print(f"\n({elapsed:.0f} s in all.)", file=sys.stderr)


if __name__ == "__main__":
    main()
