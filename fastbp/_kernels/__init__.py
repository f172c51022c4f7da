"""fastbp's compiled code and the codes it shares with Python.

`codes` (the constants) is plain Python and loads with fastbp; the compiled functions
(`backprop`) load, with Numba, on first use: `fastbp._kernels.run_case` imports backprop,
so `import fastbp` does not pay for Numba until a call needs a kernel.
"""
import importlib

from .codes import *  # noqa: F401,F403

# The kernels the Python layer calls (fastbp.network, .train, .driver, .estimators, .rnn,
# .dask_arrays): served by _native.Kernel, which runs a copy of the machine code kept in the
# cache where one fits, without importing Numba, and Numba's dispatcher otherwise.
CALLED_FROM_PYTHON = frozenset({
    "run_case", "run_case_parallel", "run_full_batch", "run_full_batch_parallel",
    "run_minibatch", "run_minibatch_parallel", "run_batch_norm", "run_rnn", "run_rnn_parallel",
    "predict", "predict_serial", "evaluate", "evaluate_serial", "squared_weights",
    "bn_evaluate", "bn_loss_gradient", "batch_gradient", "batch_gradient_serial",
    "update_given", "pend_given", "book_given", "rnn_predict", "rnn_predict_serial",
    "rnn_evaluate", "rnn_evaluate_serial", "rnn_gradient", "rnn_squared_weights",
})


def __getattr__(name):
    if name in CALLED_FROM_PYTHON:
        from ._native import kernel
        return kernel(name)
    if name.startswith("_"):  # a private submodule (_cache, _jit, _setup): the import system's
        raise AttributeError(name)  # to load, even before backprop (which imports them)
    backprop = importlib.import_module(".backprop", __name__)
    try:
        return getattr(backprop, name)
    except AttributeError:
        raise AttributeError(f"module 'fastbp._kernels' has no attribute {name!r}") from None
