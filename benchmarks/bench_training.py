"""Seconds per epoch of case, epoch and minibatch updating, and of predict, on the
BENCHMARKS.md workloads, over dtype and thread count.

Each sample is one epoch over the whole workload, timed at the kernel call `train()` makes
per epoch, without its history, shuffling and bookkeeping. The network keeps training from
sample to sample; the cost of an epoch does not depend on the weights.
"""
import numpy as np

from fastbp.train import Trainer

from .common import (BENCH_WORKLOADS, DTYPES, LEARNING_RATE, MINIBATCH, SEED, THREADS,
                     WARMUP_TUPLES, Benchmark, make_network)


class EpochSuite(Benchmark):
    """One epoch of case updating (an update per tuple), minibatch updating (one per 200
    tuples) or epoch updating (one mean-gradient update)."""
    params = (list(BENCH_WORKLOADS), ["case", "minibatch", "epoch"], list(DTYPES), list(THREADS))
    param_names = ["workload", "mode", "dtype", "n_jobs"]

    def setup(self, data, workload, mode, dtype, n_jobs):
        if mode == "case" and n_jobs != 1:
            raise NotImplementedError("case updating is serial: n_jobs does not apply")
        self.use_threads(n_jobs)
        net = make_network(workload, dtype)
        self.X, self.Y = net.check_XY(*data[workload])  # converted once, as train() does
        self.trainer = Trainer(net, mode, batch_size=MINIBATCH)
        self.weights = np.empty(0, dtype=self.X.dtype)  # unweighted
        n = self.X.shape[0]
        if mode == "epoch":
            self.order = np.arange(n, dtype=np.int64)
        else:
            self.order = np.random.RandomState(SEED).permutation(n).astype(np.int64)
        # Same kernel, dtypes and chunk count on the first tuples: timings exclude compilation.
        self.run_epoch(self.order[:WARMUP_TUPLES])

    def run_epoch(self, order):
        """What train() does per epoch, for the tuples X[order]."""
        self.trainer.run_epoch(self.X, self.Y, self.weights, order, LEARNING_RATE)

    def time_epoch(self, data, workload, mode, dtype, n_jobs):
        self.run_epoch(self.order)


class PredictSuite(Benchmark):
    """Output activations of the whole workload through the public Network.predict."""
    params = (list(BENCH_WORKLOADS), list(DTYPES), list(THREADS))
    param_names = ["workload", "dtype", "n_jobs"]

    def setup(self, data, workload, dtype, n_jobs):
        self.use_threads(n_jobs)
        self.net = make_network(workload, dtype)
        self.X = data[workload][0].astype(dtype)
        self.net.predict(self.X[:WARMUP_TUPLES])  # compile or load the kernel outside the timing

    def time_predict(self, data, workload, dtype, n_jobs):
        self.net.predict(self.X)
