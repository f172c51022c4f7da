"""Train on data larger than memory: X generated in chunks to .npy, trained memory-mapped.

    python scripts/memmap_peak.py --rows 100000000 --features 64 --dir /var/tmp/fastbp-big

Writes teacher data (fastbp.datasets.write_teacher_npy: X one chunk at a time, never whole
in memory) unless the files are there already, then, in a fresh process, opens X with
np.load(mmap_mode="r") and runs fastbp.train(mode="epoch") on it. While training, a thread
samples the process's anonymous (private) resident memory, RssAnon: what the process itself
allocated. The pages of X that the kernel maps in are file-backed and evictable; they count
in the resident size (VmRSS/VmHWM) while they stay in the page cache, which is why both are
printed. X is never copied: fastbp reads a C-contiguous X of the network's dtype in place.
"""
import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

MB = 2 ** 20


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def train_mapped(x_path, y_path, hidden, epochs, n_jobs):
    """The child: train on the mapped X; print the measurements."""
    import fastbp
    peak_anon, stop = [status("RssAnon")], threading.Event()

    def sample():
        while not stop.wait(0.01):
            peak_anon[0] = max(peak_anon[0], status("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    X = np.load(x_path, mmap_mode="r")
    y = np.load(y_path, mmap_mode="r")
    Y = np.asarray(y, dtype=X.dtype).reshape(-1, 1)  # the targets: one number per row, in memory
    net = fastbp.Network([X.shape[1], hidden, 1], output_activation="logistic", loss="log_loss",
                         dtype=X.dtype, random_state=0)
    start = time.perf_counter()
    history = fastbp.train(net, X, Y, mode="epoch", epochs=epochs, learning_rate=0.5,
                           n_jobs=n_jobs, track="pass")
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    peak_anon[0] = max(peak_anon[0], status("RssAnon"))
    print(f"trained {history.n_epochs} epoch(s) in {seconds:.1f} s, loss {history.loss[-1]:.4f}")
    print(f"X: {X.shape[0]:,} x {X.shape[1]} {X.dtype}, {X.nbytes / MB:,.0f} MB on disk; "
          f"targets in memory: {Y.nbytes / MB:,.0f} MB")
    print(f"peak anonymous memory (RssAnon, sampled every 10 ms): {peak_anon[0] / MB:,.0f} MB")
    print(f"peak resident memory (VmHWM, with the file pages X's map kept resident): "
          f"{status('VmHWM') / MB:,.0f} MB")
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    print(f"this machine's memory: {total / MB:,.0f} MB; X is {X.nbytes / total:.2f}x of it")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--dir", default="/var/tmp/fastbp-big", help="where the .npy files go")
    parser.add_argument("--child", nargs=2, metavar=("X", "Y"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.rows, args.features, args.hidden, args.epochs) < 1 or args.n_jobs == 0:
        parser.error("--rows, --features, --hidden and --epochs must be >= 1; --n-jobs non-zero")
    if args.child:
        train_mapped(*args.child, args.hidden, args.epochs, args.n_jobs)
        return 0
    import fastbp
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"teacher_{args.rows}x{args.features}"
    x_path, y_path = Path(f"{base}_X.npy"), Path(f"{base}_y.npy")
    if not (x_path.exists() and y_path.exists()):
        start = time.perf_counter()
        fastbp.datasets.write_teacher_npy(base, args.rows, args.features, seed=0)
        print(f"wrote {x_path} ({x_path.stat().st_size / MB:,.0f} MB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    command = [sys.executable, os.path.abspath(__file__), "--child", str(x_path), str(y_path),
               "--hidden", str(args.hidden), "--epochs", str(args.epochs), "--n-jobs", str(args.n_jobs)]
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
