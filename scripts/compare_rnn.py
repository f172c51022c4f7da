"""fastbp.RNN against PyTorch's nn.RNN: seconds per epoch of backpropagation through time.

    python scripts/compare_rnn.py [--sequences 2000] [--steps 50] [--hidden 32] [--threads 2]

The data is the adding problem (fastbp.datasets.adding_problem, float32): 2 inputs per step,
one target per sequence. Both trainers run an Elman network with tanh units and a linear
output, squared error, plain SGD, in the same process, alternating, each block after an
untimed epoch:

- per-sequence SGD (fastbp's case updating): PyTorch as a Python loop, forward, backward
  and optimizer.step() on one sequence at a time (timed on --case-subset sequences and
  scaled to the whole epoch, as compare_peers.py does for its case updating);
- full batch (fastbp's epoch updating): one forward/backward/step over all sequences.

A missing PyTorch is reported, not a crash. Prints a Markdown table of seconds per epoch
and PyTorch's time / fastbp's.
"""
import argparse
import platform
import statistics
import sys
import time

import numba
import numpy as np

import fastbp
from fastbp.datasets import adding_problem


def fastbp_session(X, y, hidden, mode, threads, lr):
    rnn = fastbp.RNN([X.shape[2], hidden, 1], dtype=np.float32, random_state=0)
    options = dict(mode=mode, learning_rate=lr, track="pass", n_jobs=threads, shuffle=False)
    fastbp.train(rnn.copy(), X[:64], y[:64], epochs=1, **options)  # compile or load the kernels

    def run(k):
        return fastbp.train(rnn, X, y, epochs=k, **options).seconds
    return run


def torch_session(X, y, hidden, mode, threads, lr, subset):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rnn = torch.nn.RNN(X.shape[2], hidden, nonlinearity="tanh", batch_first=True)
    out = torch.nn.Linear(hidden, 1)
    params = list(rnn.parameters()) + list(out.parameters())
    optimizer = torch.optim.SGD(params, lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    loss_fn = torch.nn.MSELoss()

    def step(xb, yb):
        optimizer.zero_grad()
        states, _ = rnn(xb)
        loss = loss_fn(out(states[:, -1]), yb)
        loss.backward()
        optimizer.step()

    n = X.shape[0]

    def run(k):
        seconds = []
        for _ in range(k):
            start = time.perf_counter()
            if mode == "case":
                for s in range(subset):
                    step(Xt[s:s + 1], yt[s:s + 1])
                seconds.append((time.perf_counter() - start) * n / subset)
            else:
                step(Xt, yt)
                seconds.append(time.perf_counter() - start)
        return seconds

    run(1)  # untimed: first calls allocate and pick kernels
    return run, torch.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="fastbp's n_jobs and PyTorch's threads")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per trainer and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case-subset", type=int, default=200,
                        help="sequences PyTorch's per-sequence loop is timed on (scaled up)")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    args = parser.parse_args(argv)
    if min(args.sequences, args.steps, args.hidden, args.threads, args.epochs, args.rounds,
           args.case_subset) < 1 or not args.learning_rate > 0:
        parser.error("sizes, --threads, --epochs, --rounds and --case-subset must be >= 1, "
                     "--learning-rate > 0")
    X, y = adding_problem(args.sequences, args.steps, seed=0, dtype=np.float32)
    subset = min(args.case_subset, args.sequences)
    rows = []
    torch_version = None
    for mode, label in (("case", "per-sequence SGD (case updating)"), ("epoch", "full batch (epoch updating)")):
        sessions = {"fastbp": fastbp_session(X, y, args.hidden, mode, args.threads, args.learning_rate)}
        try:
            sessions["pytorch"], torch_version = torch_session(X, y, args.hidden, mode, args.threads,
                                                               args.learning_rate, subset)
        except ImportError as error:
            print(f"PyTorch not measured: {error}", file=sys.stderr)
        times = {name: [] for name in sessions}
        names = list(sessions)
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                sessions[name](1)  # an untimed epoch before each block
                times[name] += sessions[name](args.epochs)
        med = {name: statistics.median(t) for name, t in times.items()}
        rows.append((label, med.get("fastbp"), med.get("pytorch")))

    print(f"`python scripts/compare_rnn.py --sequences {args.sequences} --steps {args.steps} "
          f"--hidden {args.hidden} --threads {args.threads}`\n")
    print(f"- {platform.platform()}, {platform.processor() or platform.machine()}; fastbp "
          f"{fastbp.__version__} (Numba {numba.__version__}, threading layer "
          f"{numba.threading_layer()}), PyTorch {torch_version or 'not installed'}")
    print(f"- adding problem, {args.sequences} sequences x {args.steps} steps x 2 inputs, float32; "
          f"Elman network 2-{args.hidden}-1, tanh, squared error, SGD; median of {args.rounds} x "
          f"{args.epochs} epochs, alternating; PyTorch's per-sequence loop timed on {subset} "
          f"sequences and scaled\n")
    print("| training | fastbp s/epoch | PyTorch s/epoch | PyTorch / fastbp |")
    print("|---|---:|---:|---:|")
    for label, ours, theirs in rows:
        ratio = f"{theirs / ours:.1f}x" if theirs else "—"
        print(f"| {label} | {ours:.4g} | {theirs:.4g} | {ratio} |" if theirs else
              f"| {label} | {ours:.4g} | not measured | — |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
