"""Seconds per epoch of an Elman network (fastbp.RNN) trained through time: case updating
(an update per sequence), minibatch (32 sequences) and epoch updating, and predict.

The workload is the adding problem (fastbp.datasets.adding_problem) at RNN_WORKLOAD's size,
the one scripts/compare_rnn.py runs against PyTorch's nn.RNN. Each sample is one epoch run
as train() runs it (common.epoch_by_epoch); the JIT is warmed in setup.
"""
import numpy as np

from fastbp import RNN
from fastbp.datasets import adding_problem
from fastbp.driver import Trainer

from .common import SEED, THREADS, Benchmark, epoch_by_epoch

# sequences, steps, hidden units (2 inputs, 1 output per sequence)
RNN_WORKLOAD = (2000, 50, 32)
RNN_MINIBATCH = 32


class RNNSuite(Benchmark):
    params = (["case", "minibatch", "epoch"], ["float32", "float64"], list(THREADS))
    param_names = ["mode", "dtype", "n_jobs"]

    def setup_cache(self):
        n, T, _ = RNN_WORKLOAD
        return adding_problem(n, T, seed=SEED)

    def setup(self, data, mode, dtype, n_jobs):
        if mode == "case" and n_jobs != 1:
            raise NotImplementedError("case updating is serial: n_jobs does not apply")
        self.use_threads(n_jobs)
        def network():
            return RNN([2, RNN_WORKLOAD[2], 1], dtype=np.dtype(dtype), random_state=SEED)

        X, Y = network().check_XY(*data)
        warm = network()  # the same kernel on a few sequences: compiled (or loaded) here
        epoch_by_epoch(Trainer(warm, mode, batch_size=RNN_MINIBATCH, clip_norm=1.0),
                       X[:64], Y[:64], learning_rate=0.001)()
        self.epoch = epoch_by_epoch(Trainer(network(), mode, batch_size=RNN_MINIBATCH,
                                            clip_norm=1.0), X, Y, learning_rate=0.001)

    def time_epoch(self, data, mode, dtype, n_jobs):
        self.epoch()



class RNNPredictSuite(Benchmark):
    """The last step's output of every sequence, through the public RNN.predict."""
    params = (["float32", "float64"], list(THREADS))
    param_names = ["dtype", "n_jobs"]

    def setup_cache(self):
        n, T, _ = RNN_WORKLOAD
        return adding_problem(n, T, seed=SEED)

    def setup(self, data, dtype, n_jobs):
        self.use_threads(n_jobs)
        self.rnn = RNN([2, RNN_WORKLOAD[2], 1], dtype=np.dtype(dtype), random_state=SEED)
        self.X = data[0].astype(dtype)
        self.rnn.predict(self.X[:64])  # warm the JIT

    def time_predict(self, data, dtype, n_jobs):
        self.rnn.predict(self.X)
