"""fastbp's compiled code: every @njit function lives in `backprop` (see its docstring for why)."""
from . import backprop

__all__ = ["backprop"]
