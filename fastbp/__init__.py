"""fastbp: fast backpropagation on the CPU.

Multilayer feed-forward networks trained with the classic backpropagation algorithm
(Han & Kamber, Data Mining, ch. 9) in Numba-compiled kernels, over one contiguous
weight buffer per network: case updating, epoch updating and minibatches between them.
"""
from . import datasets
from .network import Network
from .train import DivergenceWarning, History, train

__version__ = "0.1.0"
__all__ = ["Network", "History", "DivergenceWarning", "train", "datasets", "__version__"]
