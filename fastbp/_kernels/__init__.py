"""Every @njit function of fastbp, and nothing else: no validation, no Python objects."""
from . import config
from .epochs import (batch_gradient, case_epoch, evaluate, mean_update, minibatch_epoch,
                     new_state, predict)

__all__ = ["config", "batch_gradient", "case_epoch", "evaluate", "mean_update",
           "minibatch_epoch", "new_state", "predict"]
