"""How fast case updating on `tiny` (3-8-8-1, logistic units) can be on this machine.

    python scripts/tiny_case_floor.py

Issue 4 asks for case updating on `tiny` at >= 3x FANN's speed. On `tiny` the work per
tuple is small (113 weights) and strictly serial: tuple t+1's forward pass needs the first
layer's weights as tuple t's update left them, and that update needs tuple t's errors, which
need its output, three logistic layers deep. This script measures, side by side in one
process on the same data (alternating, fastest of --rounds):

- fastbp's case updating (train(mode="case")), as scripts/compare_peers.py runs it;
- FANN's FANN_TRAIN_INCREMENTAL, when libfann is installed (as compare_peers.py runs it);
- `hand`: the same arithmetic written out by hand for exactly 3-8-8-1 float32, with every
  trip count a constant except the activation loops (so that LLVM vectorises those), and
  the next tuples' rows prefetched as fastbp does:
  the best code we know for this one shape, with none of the generality fastbp needs;
- the latency of one logistic step (a chain of 1/(1+exp(-x)) each needing the one before)
  times the three layers every tuple must pass through one after the other: a strict
  lower bound for any trainer that computes the logistic function with this exp.

It prints microseconds per tuple and what 3x FANN would need.
"""
import argparse
import os
import sys
import time

import numpy as np
from numba import njit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_peers  # noqa: E402  (the FANN and fastbp sessions, as that script runs them)

from fastbp._kernels.backprop import FASTMATH, fast_exp  # noqa: E402
from fastbp._kernels.fastmath import prefetch  # noqa: E402
from fastbp.datasets import load_workload  # noqa: E402

SIZES = (3, 8, 8, 1)


@njit(fastmath=FASTMATH, error_model="numpy")
def hand(W1, b1, W2, b2, w3, b3, X, Y, order, lr, width):
    """One epoch of case updating for 3-8-8-1, logistic units, squared error, plain SGD.
    `width` is 8, passed in so the activation loops have a run-time trip count: LLVM's loop
    vectoriser then runs them as vectors (a constant count is unrolled into scalar code)."""
    h1 = np.empty(8, np.float32)
    h2 = np.empty(8, np.float32)
    d1 = np.empty(8, np.float32)
    d2 = np.empty(8, np.float32)
    one = np.float32(1)
    loss = 0.0
    for p in range(order.shape[0]):
        t = order[p]
        if p + 8 < order.shape[0]:  # the rows of the tuple 8 on, as fastbp (steps.AHEAD)
            prefetch(X, order[p + 8], 0)
            prefetch(Y, order[p + 8], 0)
        x0, x1, x2 = X[t, 0], X[t, 1], X[t, 2]
        for j in range(8):
            h1[j] = b1[j] + x0 * W1[0, j] + x1 * W1[1, j] + x2 * W1[2, j]
        for j in range(width):
            h1[j] = one / (one + fast_exp(-h1[j]))
        for j in range(8):
            h2[j] = b2[j]
        for i in range(8):
            for j in range(8):
                h2[j] += h1[i] * W2[i, j]
        for j in range(width):
            h2[j] = one / (one + fast_exp(-h2[j]))
        z = b3[0]
        for i in range(8):
            z += h2[i] * w3[i]
        o = one / (one + fast_exp(-z))
        e = o - Y[t, 0]
        loss += 0.5 * e * e
        d3 = e * o * (one - o)
        for i in range(8):
            d2[i] = w3[i] * d3 * h2[i] * (one - h2[i])
            w3[i] -= lr * d3 * h2[i]
        b3[0] -= lr * d3
        for i in range(8):
            s = np.float32(0)
            for j in range(8):
                s += W2[i, j] * d2[j]
                W2[i, j] -= lr * h1[i] * d2[j]
            d1[i] = s * h1[i] * (one - h1[i])
        for j in range(8):
            b2[j] -= lr * d2[j]
        for j in range(8):
            W1[0, j] -= lr * x0 * d1[j]
            W1[1, j] -= lr * x1 * d1[j]
            W1[2, j] -= lr * x2 * d1[j]
            b1[j] -= lr * d1[j]
    return loss


@njit(fastmath=FASTMATH, error_model="numpy")
def logistic_chain(x, steps):
    """steps logistic evaluations, each on the result of the one before."""
    one, c = np.float32(1), np.float32(1.7)
    for _ in range(steps):
        x = one / (one + fast_exp(-(x * c - one)))
    return x


def hand_session(X, Y, learning_rate):
    rng = np.random.default_rng(0)
    W1, W2 = (rng.uniform(-0.5, 0.5, s).astype(np.float32) for s in ((3, 8), (8, 8)))
    w3 = rng.uniform(-0.5, 0.5, 8).astype(np.float32)
    b1, b2, b3 = (rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (8, 8, 1))
    lr, width = np.float32(learning_rate), np.uint64(8)
    perm = np.random.default_rng(1)

    def run(k):
        seconds = []
        for _ in range(k):
            order = perm.permutation(X.shape[0]).astype(np.int64)  # shuffled, as fastbp
            start = time.perf_counter()
            hand(W1, b1, W2, b2, w3, b3, X, Y, order, lr, width)
            seconds.append(time.perf_counter() - start)
        return seconds, None

    run(1)  # compile
    return run, lambda: None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: 5)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trainer and round (default: 2)")
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.epochs < 1 or not args.learning_rate > 0:
        parser.error("--rounds and --epochs must be >= 1 and --learning-rate > 0")

    X, Y = load_workload("tiny", dtype=np.float32)
    n = X.shape[0]
    sessions = {"fastbp": compare_peers.Fastbp(1, args.learning_rate).session("tiny", X, Y, "case"),
                "hand": hand_session(X, Y, args.learning_rate)}
    fann = compare_peers.Fann(args.learning_rate)
    try:
        fann.load()
        sessions["FANN"] = fann.session("tiny", X, Y, "case")
    except compare_peers.PeerMissing as missing:
        print(f"FANN not measured: {missing}")
    best = {name: float("inf") for name in sessions}
    names = list(sessions)
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds, _ = sessions[name][0](args.epochs)
            best[name] = min(best[name], min(seconds))
    for _, close in sessions.values():
        close()

    logistic_chain(np.float32(0.3), 10)
    steps = 10_000_000
    start = time.perf_counter()
    logistic_chain(np.float32(0.3), steps)
    step_us = (time.perf_counter() - start) / steps * 1e6

    us = {name: s / n * 1e6 for name, s in best.items()}
    print(f"tiny {'-'.join(map(str, SIZES))} float32, {n:,} tuples, case updating, "
          f"fastest epoch of {args.rounds} x {args.epochs}:")
    for name, value in us.items():
        extra = f"  (FANN / this: {us['FANN'] / value:.2f}x)" if "FANN" in us and name != "FANN" else ""
        print(f"  {name:8s} {value:.3f} us per tuple{extra}")
    print(f"  one logistic step, latency: {step_us * 1e3:.1f} ns; three in a row (the floor "
          f"of every tuple's forward pass alone): {3 * step_us:.3f} us")
    if "FANN" in us:
        print(f"  3x FANN needs {us['FANN'] / 3:.3f} us per tuple")


if __name__ == "__main__":
    main()
