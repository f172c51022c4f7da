"""Seconds per epoch of case, epoch and minibatch updating, and of predict, on the
workloads of fastbp.datasets.WORKLOADS, over dtype and thread count.

Each sample is one epoch over the whole workload, run as train() runs it (its run kernel:
the tuple order, the pass, the history and the rules) without train()'s argument checks.
The network keeps training from sample to sample; the cost of an epoch does not depend on
the weights. Whole train() and fit() calls on small problems: bench_small.py.
"""

from fastbp.driver import Trainer

from .common import BENCH_WORKLOADS, DTYPES, MINIBATCH, THREADS, WARMUP_TUPLES, Benchmark, epoch_by_epoch, make_network


class EpochSuite(Benchmark):
    """One epoch of case updating (an update per tuple), minibatch updating (one per 200
    tuples) or epoch updating (one mean-gradient update)."""
    params = (list(BENCH_WORKLOADS), ["case", "minibatch", "epoch"], list(DTYPES), list(THREADS))
    param_names = ["workload", "mode", "dtype", "n_jobs"]

    def setup(self, data, workload, mode, dtype, n_jobs):
        if mode == "case" and n_jobs != 1:
            raise NotImplementedError("case updating is serial: n_jobs does not apply")
        self.use_threads(n_jobs)
        X, Y = make_network(workload, dtype).check_XY(*data[workload])  # converted once, as train() does
        # Same kernel, dtypes and chunk count on the first tuples: timings exclude compilation.
        epoch_by_epoch(Trainer(make_network(workload, dtype), mode, batch_size=MINIBATCH),
                       X[:WARMUP_TUPLES], Y[:WARMUP_TUPLES])()
        self.epoch = epoch_by_epoch(Trainer(make_network(workload, dtype), mode,
                                            batch_size=MINIBATCH), X, Y)

    def time_epoch(self, data, workload, mode, dtype, n_jobs):
        self.epoch()


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
