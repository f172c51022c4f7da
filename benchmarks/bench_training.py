"""Seconds per epoch of case and epoch updating, and of predict, on the BENCHMARKS.md workloads.

Each sample is one epoch over the whole workload (100,000 tuples), timed at the kernel
calls `train()` makes per epoch, without its validation, shuffling and bookkeeping.
The network keeps training from sample to sample; the cost of an epoch does not depend
on the weights.
"""
import numpy as np

from fastbp.train import Trainer

from .common import BENCH_WORKLOADS, LEARNING_RATE, SEED, WARMUP_TUPLES, Benchmark, make_network


class EpochSuite(Benchmark):
    """One epoch of case updating (an update per tuple) or of epoch updating (one mean-gradient update)."""
    params = (list(BENCH_WORKLOADS), ["case", "epoch"], [1, 2])
    param_names = ["workload", "mode", "n_jobs"]

    def setup(self, data, workload, mode, n_jobs):
        if mode == "case" and n_jobs != 1:
            raise NotImplementedError("case updating is serial: n_jobs does not apply")
        self.use_threads(n_jobs)
        net = make_network(workload)
        self.X, self.Y = net.check_XY(*data[workload])
        self.trainer = Trainer(net, mode)
        self.weights = np.empty(0, dtype=self.X.dtype)  # unweighted
        n = self.X.shape[0]
        if mode == "case":
            self.order = np.random.RandomState(SEED).permutation(n).astype(np.int64)
        else:
            self.order = np.arange(n, dtype=np.int64)
        # Same kernel, dtypes and chunk count on the first tuples: timings exclude compilation.
        self.run_epoch(self.order[:WARMUP_TUPLES])

    def run_epoch(self, order):
        """What train() does per epoch, for the tuples X[order]."""
        self.trainer.run_epoch(self.X, self.Y, self.weights, order, LEARNING_RATE)

    def time_epoch(self, data, workload, mode, n_jobs):
        self.run_epoch(self.order)


class PredictSuite(Benchmark):
    """Output activations of the whole workload through the public Network.predict."""
    params = (["mid"], [1, 2])
    param_names = ["workload", "n_jobs"]

    def setup(self, data, workload, n_jobs):
        self.use_threads(n_jobs)
        self.net = make_network(workload)
        self.X, _ = data[workload]
        self.net.predict(self.X[:WARMUP_TUPLES])  # compile or load the kernel outside the timing

    def time_predict(self, data, workload, n_jobs):
        self.net.predict(self.X)
