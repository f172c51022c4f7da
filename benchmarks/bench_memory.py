"""Peak resident memory of an epoch-updating fit: no copy of X per epoch.

asv's peakmem is the benchmark process's maximum resident set size, so it holds the
interpreter, Numba, scikit-learn, the data X generated in setup, and what training adds.
fastbp's memory target (issue 4) is judged against it: at most 1.5 x the size of X plus
300 MB on 1,000,000 x 64 float32 (X: 256 MB).
"""
import numpy as np

import fastbp
from fastbp.datasets import teacher

from .common import SEED


class EpochFitMemorySuite:
    """fastbp.train in epoch mode, 3 epochs, on n x 64 float32 teacher data, 64-64-1 logistic."""
    processes = 1
    timeout = 600
    params = ([100_000, 1_000_000],)
    param_names = ["n_samples"]

    def setup(self, n_samples):
        self.X, y = teacher(n_samples, 64, n_classes=2, seed=SEED, dtype=np.float32)
        self.Y = y.astype(np.float32).reshape(-1, 1)
        # compile or load the kernels outside the measured call (same dtypes, chunk count)
        warm = fastbp.Network([64, 64, 1], dtype=np.float32, random_state=SEED)
        fastbp.train(warm, self.X[:3200], self.Y[:3200], mode="epoch", epochs=1)

    def peakmem_fit(self, n_samples):
        net = fastbp.Network([64, 64, 1], dtype=np.float32, random_state=SEED)
        fastbp.train(net, self.X, self.Y, mode="epoch", epochs=3)
