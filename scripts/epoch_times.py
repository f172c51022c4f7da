"""Seconds per epoch of fastbp's case, epoch and minibatch updating on the workloads of
fastbp.datasets.WORKLOADS (float32, logistic units, squared error).

    python scripts/epoch_times.py                       # tiny and mid, all three modes
    python scripts/epoch_times.py --workloads wide --modes epoch --n-jobs 1,2

Each row: the median of --epochs epochs, after one warm-up epoch on a slice of the data
(so compilation is never timed), measured with train(track="pass") as History.seconds.
"""
import argparse
import platform
import statistics

import numba
import numpy as np

import fastbp
from fastbp.datasets import WORKLOADS, load_workload

MODES = ("case", "epoch", "minibatch")


def seconds_per_epoch(workload, X, Y, mode, epochs, batch_size, n_jobs):
    """Median seconds per epoch of `mode` on (X, Y), compilation excluded."""
    def network():
        return fastbp.Network(WORKLOADS[workload].sizes, dtype=np.float32, random_state=0)

    options = dict(mode=mode, batch_size=batch_size, learning_rate=0.1, track="pass",
                   n_jobs=n_jobs)
    fastbp.train(network(), X[:1000], Y[:1000], epochs=1, **options)  # compile or load
    hist = fastbp.train(network(), X, Y, epochs=epochs, **options)
    return statistics.median(hist.seconds), hist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="tiny,mid",
                        help="comma-separated names from fastbp.datasets.WORKLOADS (default: tiny,mid)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes (default: all)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per row (default: 3)")
    parser.add_argument("--batch-size", type=int, default=200, help="minibatch size (default: 200)")
    parser.add_argument("--n-jobs", default="-1",
                        help="comma-separated Numba thread counts; -1 = all (default: -1)")
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    modes = args.modes.split(",")
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {sorted(WORKLOADS)}")
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; choose from {MODES}")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error(f"--epochs and --batch-size must be >= 1, got {args.epochs} and {args.batch_size}")
    try:
        thread_counts = [int(j) for j in args.n_jobs.split(",")]
    except ValueError:
        parser.error(f"--n-jobs must be comma-separated integers, got {args.n_jobs!r}")
    if 0 in thread_counts:
        parser.error("--n-jobs: 0 threads; use a positive count, or -1 for all")

    print(f"fastbp {fastbp.__version__}, numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} "
          f"threads available), {platform.machine()}, {platform.processor() or platform.system()}")
    print(f"{'workload':8} {'mode':9} {'threads':>7} {'s/epoch':>9} {'us/tuple':>9} {'accuracy':>8}")
    for name in workloads:
        X, Y = load_workload(name)
        for mode in modes:
            for n_jobs in ([1] if mode == "case" else thread_counts):
                seconds, hist = seconds_per_epoch(name, X, Y, mode, args.epochs, args.batch_size, n_jobs)
                threads = numba.config.NUMBA_NUM_THREADS if n_jobs == -1 else n_jobs
                print(f"{name:8} {mode:9} {threads:>7} {seconds:>9.4f} {1e6 * seconds / len(X):>9.2f} "
                      f"{hist.accuracy[-1]:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
