"""Whole train() and fit() calls on small problems, as a user pays them: building the
network, checking the arguments, every epoch (the compiled loop runs many per kernel call),
the history and the stop rules, with every setting at its default apart from those named.

These are where per-epoch overhead shows: the seeds' XOR for 5,000 epochs (four tuples) and
tables of 256 and 4,096 tuples. The kernels are compiled (or loaded from Numba's cache) in
`setup`, outside the timing; first-run compile time is bench_startup.py's.
"""
import warnings

import numpy as np

import fastbp
from fastbp.datasets import teacher, xor

# name: (X, y) builder, train()'s network sizes, train()'s epochs and learning rate
PROBLEMS = {
    "xor": (xor, [2, 2, 1], 5000, 0.5),
    "256": (lambda: teacher(256, 8, n_classes=2, seed=0), [8, 32, 1], 200, 0.1),
    "4096": (lambda: teacher(4096, 8, n_classes=2, seed=0), [8, 32, 1], 20, 0.1),
}


def data(problem):
    X, y = PROBLEMS[problem][0]()
    return np.asarray(X, np.float64), np.asarray(y).reshape(-1, 1).astype(np.float64)


class SmallTrainSuite:
    """Network(sizes) + fastbp.train(X, Y, mode=..., epochs=..., learning_rate=...)."""
    number = 1
    warmup_time = 0
    repeat = (5, 20, 10.0)
    params = (list(PROBLEMS), ["case", "minibatch", "epoch"])
    param_names = ["problem", "mode"]

    def setup(self, problem, mode):
        self.X, self.Y = data(problem)
        _, self.sizes, self.epochs, self.learning_rate = PROBLEMS[problem]
        self.time_train(problem, mode)  # compile or load the kernels outside the timing

    def time_train(self, problem, mode):
        net = fastbp.Network(self.sizes)
        fastbp.train(net, self.X, self.Y, mode=mode, learning_rate=self.learning_rate,
                     epochs=self.epochs)


class SmallFitSuite:
    """A drop-in's whole fit() with scikit-learn's defaults (adam, batch 200, relu, up to 200
    epochs with its stop rule); on XOR a 2-unit logistic network trained by SGD for 5,000
    epochs, as the seeds do."""
    number = 1
    warmup_time = 0
    repeat = (3, 10, 20.0)
    params = (list(PROBLEMS), ["classifier", "regressor"])
    param_names = ["problem", "estimator"]

    def setup(self, problem, estimator):
        X, Y = data(problem)
        self.X, self.y = X, Y.ravel()
        kind = fastbp.MLPClassifier if estimator == "classifier" else fastbp.MLPRegressor
        if problem == "xor":
            self.make = lambda: kind(hidden_layer_sizes=(2,), activation="logistic",
                                     solver="sgd", learning_rate_init=0.5, momentum=0.0,
                                     max_iter=5000, tol=0.0, n_iter_no_change=5000,
                                     random_state=0)
        else:
            self.make = lambda: kind(random_state=0)
        self.time_fit(problem, estimator)

    def time_fit(self, problem, estimator):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning, as scikit-learn's would say
            self.make().fit(self.X, self.y)
