"""The memory floor of case updating: how fast one update per tuple could possibly be.

    python scripts/case_update_floor.py

Case updating with momentum (scikit-learn's solver="sgd", batch_size=1) must, for every
tuple, read each weight once in the forward pass, then read and write each weight and its
velocity once in the update. This script times exactly that and nothing else -- one flat
loop that reads W, one flat loop that reads and writes W and V, perfectly vectorised, no
layers, no activations, no error propagation -- for the networks scikit-learn's comparison
uses (scripts/compare_sklearn.py). No real kernel can beat it: it is the price of moving
the weights through the cache once per tuple. Each row also says what that floor means for
a ratio against a library that spends a given time per tuple (--other-us).
"""
import argparse
import time

import numpy as np
from numba import njit

# The networks of scripts/compare_sklearn.py's batch_size=1 rows: (label, layer sizes, dtype).
NETWORKS = (
    ("digits 64-100-10 float64", (64, 100, 10), np.float64),
    ("breast_cancer 30-100-1 float64", (30, 100, 1), np.float64),
    ("mid 32-64-64-1 float32", (32, 64, 64, 1), np.float32),
)


@njit(fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy")
def memory_floor(w, v, reps):
    """reps times: read every weight (forward), then read and write every weight and
    velocity (momentum update). Returns a checksum, so no loop is optimised away."""
    n = np.uint64(w.shape[0])
    mu, lr = w.dtype.type(0.9), w.dtype.type(1e-3)
    checksum = w.dtype.type(0)
    for _ in range(reps):
        total = w.dtype.type(0)
        for k in range(n):
            total += w[k]
        checksum += total
        g = total * w.dtype.type(1e-9)
        for k in range(n):
            vk = mu * v[k] - lr * (g + w[k])
            v[k] = vk
            w[k] += mu * vk - lr * (g + w[k])
    return checksum


def n_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=100_000, help="tuples per timing (default: 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per network; the fastest counts (default: 5)")
    parser.add_argument("--other-us", type=float, default=105.0,
                        help="another library's microseconds per tuple, for the ratio column "
                             "(default: 105, scikit-learn's batch_size=1 on digits in the README's run)")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.repeats < 1 or args.other_us <= 0:
        parser.error("--reps and --repeats must be >= 1 and --other-us > 0")

    print("| network | weights + biases | W and V | floor, µs per tuple | "
          f"best possible ratio against {args.other_us:g} µs per tuple |")
    print("|---|---:|---:|---:|---:|")
    for label, sizes, dtype in NETWORKS:
        n = n_params(sizes)
        w = (np.random.RandomState(0).rand(n) * 1e-3).astype(dtype)
        v = np.zeros(n, dtype)
        memory_floor(w, v, 10)  # compile
        best = min(_timed(w, v, args.reps) for _ in range(args.repeats))
        print(f"| {label} | {n:,} | {2 * n * w.itemsize / 1024:.0f} KB | {best * 1e6:.2f} "
              f"| {args.other_us / (best * 1e6):.0f}x |")


def _timed(w, v, reps):
    start = time.perf_counter()
    memory_floor(w, v, reps)
    return (time.perf_counter() - start) / reps


if __name__ == "__main__":
    main()
