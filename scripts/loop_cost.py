"""What fastbp's compiled epoch loop costs per epoch, on the smallest problem there is.

    python scripts/loop_cost.py
    python scripts/loop_cost.py --epochs 20000 --rounds 3

fastbp runs many epochs per compiled call: the tuple order, the learning rate, the pass, the
history and every stop rule of an epoch happen in compiled code, and Python regains control
about every 0.1 s. This script times whole `Network([2, 2, 1])` + `train()` calls on the
seeds' XOR (4 tuples), with default settings but a learning rate of 0.5 (and batches of 2
in minibatch mode), for 1 epoch and for --epochs epochs, in every mode, and prints

- the fixed cost of a call (the 1-epoch call: checks, set-up, one kernel call), and
- the cost of one more epoch, (T(epochs) - T(1)) / (epochs - 1): the loop's own cost
  (order, learning rate, history, rules, clock) plus the 4 tuples' work, so an upper bound
  on what the loop adds to an epoch.

Each figure is the median of --rounds calls, in one process, the kernels compiled first.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402

import fastbp  # noqa: E402


def call_seconds(X, Y, mode, epochs, rounds):
    """The median time of `rounds` whole calls (a new network each, default settings)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        net = fastbp.Network([2, 2, 1])
        fastbp.train(net, X, Y, mode=mode, epochs=epochs, learning_rate=0.5, batch_size=2)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=_report.int_at_least(2), default=100_000,
                        help="epochs of the long call (default: 100000)")
    parser.add_argument("--rounds", type=_report.int_at_least(1), default=5,
                        help="calls per figure, their median taken (default: 5)")
    parser.add_argument("--modes", type=_report.comma_list(("case", "epoch", "minibatch"), "mode"),
                        default=["case", "epoch", "minibatch"],
                        help="comma-separated, from case, epoch, minibatch (batches of 2) "
                             "(default: all)")
    args = parser.parse_args(argv)
    X, y = fastbp.datasets.xor()
    Y = y.reshape(-1, 1).astype(np.float64)
    print(_report.cpu_line())
    print(f"- fastbp {fastbp.__version__}, XOR 2-2-1 (4 tuples), float64, default settings but "
          f"learning_rate=0.5 (minibatch: batch_size=2), median of {args.rounds} calls\n")
    print("| mode | whole call, 1 epoch | whole call, "
          f"{args.epochs:,} epochs | each epoch after the first |")
    print("|---|---:|---:|---:|")
    for mode in args.modes:
        call_seconds(X, Y, mode, 2, 1)  # compile or load the kernels
        one = call_seconds(X, Y, mode, 1, args.rounds)
        many = call_seconds(X, Y, mode, args.epochs, args.rounds)
        per_epoch = (many - one) / (args.epochs - 1)
        print(f"| {mode} | {_report.sig3(one * 1e3)} ms | {_report.sig3(many * 1e3)} ms | "
              f"{_report.sig3(per_epoch * 1e9)} ns |")
    print("\nEach epoch after the first: the loop's own cost (tuple order, learning rate, "
          "history, stop rules, clock) and the 4 tuples' forward and backward passes.")


if __name__ == "__main__":
    main()
