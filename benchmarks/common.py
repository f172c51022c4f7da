"""What every fastbp benchmark shares: the timing policy, the workload data and the JIT warm-up.

The workloads are read from `fastbp.datasets` (WORKLOADS, the one list of
them): teacher data, networks of logistic units with squared error.
"""
import timeit
from contextlib import ExitStack

import numba
import numpy as np

from fastbp import Network
from fastbp._threads import compute_threads
from fastbp.datasets import WORKLOADS, load_workload
from fastbp.driver import Rules, Run
from fastbp.network import MAX_CHUNKS, MIN_CHUNK_TUPLES

# Every workload; "wide" takes seconds per epoch.
BENCH_WORKLOADS = tuple(WORKLOADS)
DTYPES = ("float32", "float64")
THREADS = (1, 2)
SEED = 0
LEARNING_RATE = 0.1
MINIBATCH = 200  # the estimators' default batch ("auto" = min(200, n_samples))
# The warm-up call passes this many tuples: the fewest that are cut into as many parallel
# chunks as a full workload, so it compiles (or loads) the very kernel and allocates the
# very gradient buffers the timed call uses.
WARMUP_TUPLES = MAX_CHUNKS * MIN_CHUNK_TUPLES


class Benchmark:
    """Base of every fastbp suite, as scikit-learn's asv suite has it.

    One sample is one call of the benchmark (`number = 1`): one epoch, or one predict.
    The suites warm the JIT themselves in `setup`, so asv's own warm-up would only run
    extra epochs; it is off.
    """
    timer = timeit.default_timer  # wall time: the parallel kernels run on several cores
    processes = 1
    timeout = 600
    number = 1
    warmup_time = 0
    repeat = (3, 10, 20.0)  # at least 3 samples, at most 10 or 20 s

    def setup_cache(self):
        """The float32 data of every workload, built once per `asv run` and shared by all
        suites (a float64 benchmark converts it in its setup)."""
        return {name: load_workload(name, dtype=np.float32, seed=SEED) for name in BENCH_WORKLOADS}

    def use_threads(self, n_jobs):
        """Run the timed calls with n_jobs Numba threads; `teardown` restores the count."""
        if n_jobs > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError(f"only {numba.config.NUMBA_NUM_THREADS} Numba threads here")
        self._threads = ExitStack()
        self._threads.enter_context(compute_threads(n_jobs))

    def teardown(self, *args):
        if hasattr(self, "_threads"):
            self._threads.close()


def make_network(workload, dtype="float32"):
    """The network a workload trains: its layer sizes, logistic units, squared error."""
    return Network(WORKLOADS[workload].sizes, activation="logistic",
                   output_activation="logistic", loss="squared_error", dtype=np.dtype(dtype),
                   random_state=SEED)


def epoch_by_epoch(trainer, X, Y, learning_rate=LEARNING_RATE):
    """A function that trains `trainer`'s network one more epoch on (X, Y) per call, as
    train() runs an epoch (its run kernel: order, pass, history, rules), without train()'s
    argument checks: the kernel's work per epoch."""
    run = Run(trainer, X, Y, np.empty(0, dtype=X.dtype), Rules(epochs=2 ** 40, weight_change=False),
              learning_rate=learning_rate, seed=SEED)
    return lambda: run.run_slice(run.epoch + 1)
