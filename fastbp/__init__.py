"""fastbp: fast backpropagation on the CPU.

Multilayer feed-forward networks trained with the classic backpropagation algorithm
(Han & Kamber, Data Mining, ch. 9) in Numba-compiled kernels, over one contiguous
weight buffer per network: case updating, epoch updating and minibatches between them.
"""
from . import datasets, io
from ._version import __version__
from .io import ModelFileError, load, save
from .network import Network
from .rnn import RNN
from .train import DivergenceWarning, History, InterruptedWarning, train

__all__ = ["Network", "RNN", "History", "DivergenceWarning", "InterruptedWarning", "train",
           "datasets", "save", "load", "ModelFileError", "MLPClassifier", "MLPRegressor",
           "RNNClassifier", "RNNRegressor", "plot_history", "__version__"]

_ESTIMATORS = ("MLPClassifier", "MLPRegressor")
_RNN_ESTIMATORS = ("RNNClassifier", "RNNRegressor")


def __getattr__(name):
    """The scikit-learn drop-ins load on first use, so `import fastbp` stays quick."""
    if name in _ESTIMATORS:
        from . import estimators
        return getattr(estimators, name)
    if name == "plot_history":
        from .plots import plot_history
        return plot_history
    if name in _RNN_ESTIMATORS:
        from . import rnn_estimators
        return getattr(rnn_estimators, name)
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")


# fastbp.load reads a saved drop-in in a process that has not used the drop-ins yet: the
# estimator codec (below the estimators in the package's layers) asks here for the class.
io.estimator.find_class = __getattr__
