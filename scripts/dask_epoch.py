"""Epoch updating on a Dask cluster against the same fit on this machine: seconds per epoch of
both, and what the cluster adds per epoch.

    python scripts/dask_epoch.py                          # mid and wide, a loopback cluster
    python scripts/dask_epoch.py --workloads wide --epochs 5
    python scripts/dask_epoch.py --scheduler tcp://host:8786   # a running cluster

Without --scheduler it starts a loopback cluster of its own: a `dask scheduler` process and
--workers `dask worker` processes of --threads threads each (default: 2 workers of one
thread, this machine's two cores), and stops them at the end.

Each workload (fastbp.datasets.WORKLOADS; float32, logistic units, squared error) is fitted
twice with train(mode="epoch", track="pass"): locally on --local-threads Numba threads, and
on the cluster, its rows cut into the local fit's chunks (fastbp.dask_arrays.local_chunks) and
persisted in the workers' memory first (the data go there once, before the timing). A first
fit on a slice of the data compiles the kernels, here and on every worker. Rows: the median
of --epochs epochs (History.seconds), the ratio, the cluster's cost per epoch beyond the local
fit's, whether the two fits' weights agree bit for bit, and the size of one row of n_params
numbers: the weights each worker receives once an epoch, each block's gradient row on its way
into the tree, the summed row the client receives. ("same bits" can say False in the run that
compiles the kernels: a process runs the code Numba has just built in memory, which can round
a fused multiply-add differently from the cached code; see the README's "First run".)
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys

import numpy as np

import fastbp
from fastbp.dask_arrays import local_chunks
from fastbp.datasets import WORKLOADS, load_workload


def fit(name, X, Y, epochs, n_jobs=None):
    net = fastbp.Network(WORKLOADS[name].sizes, dtype=np.float32, random_state=0)
    history = fastbp.train(net, X, Y, mode="epoch", epochs=epochs, learning_rate=0.1,
                           track="pass", random_state=0, n_jobs=n_jobs)
    return net, statistics.median(history.seconds)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(workers, threads):
    """A loopback cluster of separate processes: (scheduler address, the processes)."""
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    if dask is None:
        sys.exit("the `dask` command is missing: pip install 'fastbp[dask]'")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], **quiet)]
    for _ in range(workers):
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", str(threads),
                                       "--nworkers", "1", "--no-nanny",
                                       "--dashboard-address", ":0"], **quiet))
    return address, procs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="mid,wide",
                        help="comma-separated names from fastbp.datasets.WORKLOADS (default: mid,wide)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per fit (default: 5)")
    parser.add_argument("--rows", type=int, help="the first ROWS tuples of each workload (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="loopback workers (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (default: 1)")
    parser.add_argument("--local-threads", type=int, default=2,
                        help="Numba threads of the local fit (default: 2)")
    parser.add_argument("--scheduler", help="a running cluster's scheduler address instead")
    args = parser.parse_args(argv)
    names = args.workloads.split(",")
    for name in names:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {sorted(WORKLOADS)}")
    if min(args.epochs, args.workers, args.threads, args.local_threads) < 1:
        parser.error("--epochs, --workers, --threads and --local-threads must be >= 1")
    if args.rows is not None and args.rows < 100:
        parser.error(f"--rows must be >= 100, got {args.rows}")

    import dask.array as da
    from distributed import Client

    procs = []
    address = args.scheduler
    if address is None:
        address, procs = start_cluster(args.workers, args.threads)
    try:
        with Client(address, timeout=60) as client:
            if procs:
                client.wait_for_workers(args.workers, timeout=60)
            n_workers = len(client.scheduler_info()["workers"])
            print(f"fastbp {fastbp.__version__}; cluster {address}: {n_workers} workers; "
                  f"local fit: {args.local_threads} threads; median of {args.epochs} epochs")
            print(f"{'workload':8} {'rows':>8} {'blocks':>6} {'local s':>8} {'cluster s':>9} "
                  f"{'ratio':>6} {'+s/epoch':>8} {'same bits':>9} {'row KB':>7}")
            for name in names:
                X, Y = load_workload(name, n_samples=args.rows)
                chunks = local_chunks(X.shape[0])
                Xd = da.from_array(X, chunks=(chunks, X.shape[1])).persist()
                Yd = da.from_array(Y, chunks=(chunks, Y.shape[1])).persist()
                client.wait_for_workers(n_workers)
                warm = min(X.shape[0], 2000)  # compile (or load) the kernels everywhere
                fit(name, X[:warm], Y[:warm], 1, args.local_threads)
                fit(name, Xd[:warm].rechunk((local_chunks(warm), X.shape[1])),
                    Yd[:warm].rechunk((local_chunks(warm), Y.shape[1])), 1)
                local, local_s = fit(name, X, Y, args.epochs, args.local_threads)
                remote, cluster_s = fit(name, Xd, Yd, args.epochs)
                same = np.array_equal(local.params, remote.params)
                traffic = local.n_params * local.dtype.itemsize / 1e3
                print(f"{name:8} {X.shape[0]:>8} {len(chunks):>6} {local_s:>8.4f} {cluster_s:>9.4f} "
                      f"{cluster_s / local_s:>6.2f} {cluster_s - local_s:>8.4f} {str(same):>9} "
                      f"{traffic:>7.1f}", flush=True)
                del Xd, Yd
    finally:
        for proc in reversed(procs):
            proc.kill()  # (a worker without a nanny can take long to close on SIGTERM)
            proc.wait()


if __name__ == "__main__":
    main()
