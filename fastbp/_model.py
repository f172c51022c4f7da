"""What every model of fastbp shares (Network, RNN): the checks of sizes, activations, loss
and dtype, the random generators, the chunking of passes, and the base class."""
import numbers

import numpy as np

from ._threads import compute_threads
from ._validation import as_sample_weight, check_choice, check_dtype, check_int

HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "softplus")
OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax", "exp")
ACTIVATION_ALIASES = {"sigmoid": "logistic"}
# The output activations each loss is defined for.
LOSS_OUTPUTS = {"squared_error": ("identity", "logistic", "softmax", "exp"),
                "log_loss": ("logistic", "softmax"),
                "poisson": ("exp",)}
INITS = ("uniform", "glorot")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MAX_SIZE = 2 ** 31 - 1  # units in one layer

# Tuples per parallel chunk and the most chunks a pass is cut into. The chunk count depends
# on the number of tuples only, never on the thread count, so results do not either.
MIN_CHUNK_TUPLES = 100
MAX_CHUNKS = 32


def n_chunks_for(n_tuples):
    """How many fixed chunks a pass over n_tuples tuples is cut into."""
    return int(max(1, min(MAX_CHUNKS, n_tuples // MIN_CHUNK_TUPLES)))


# A forward-only pass (predict, evaluate, validation, track="end") runs its chunks on several
# threads when its tuples times the network's weights (multiply-adds) reach this: about 10 ms
# on one core here. Below it threads saved under a millisecond (predict on digits, 1,797 x
# 64-100-10: 1.1 -> 0.6 ms) while the parallel kernel cost a new environment 1.5-2 s of
# compiling (the demo's validated digits fit, 4 s).
PARALLEL_FORWARD_WORK = 2 ** 27


# Minibatch and epoch updating run their gradient passes' chunks on threads (the parallel run
# kernel) when a pass is long (PARALLEL_FORWARD_WORK: single-epoch calls such as partial_fit on
# large data) or the whole run is: its multiply-adds, tuples x weights x epochs, reach this.
# Below it two threads save a few tens of milliseconds a fit at most, while the parallel
# kernel costs a new environment about 2 s more compiling than the serial one:
# MLPClassifier(max_iter=20) on digits (1,797 tuples, 7,510 weights) runs serially, about
# 35 ms a fit against 25 on threads once cached, and its first run in a new environment
# takes 11-11.5 s instead of 13-14 s. The chunks, and so the numbers, are the same either
# way (BLAS is pinned to one thread in both, driver.Run.threads).
# Data of at least PARALLEL_RUN_TUPLES tuples always run on threads: there the passes of
# small networks are slow per multiply-add (`tiny`, 100,000 x 3-8-8-1: an epoch of epoch
# updating 11 ms on one thread, 5.6 ms on two), and such data is rarely trained briefly.
PARALLEL_RUN_WORK = 2 ** 31
PARALLEL_RUN_TUPLES = 10_000


def parallel_gradient(pass_tuples, n_tuples, n_params, epochs):
    """Whether a run's gradient passes of pass_tuples tuples (a batch, or all n_tuples) go on
    threads: more than one chunk, and large data, a long pass or a long run."""
    work = n_tuples * n_params
    return n_chunks_for(pass_tuples) > 1 and (
        n_tuples >= PARALLEL_RUN_TUPLES or work >= PARALLEL_FORWARD_WORK
        or work * epochs >= PARALLEL_RUN_WORK)


def parallel_forward(n_tuples, n_params, steps=1):
    """Whether a forward-only pass over n_tuples tuples (sequences of `steps` steps, for a
    recurrent network) runs on several threads. Its chunks (n_chunks_for) are the same
    either way, and so are its numbers."""
    return n_chunks_for(n_tuples) > 1 and n_tuples * steps * n_params >= PARALLEL_FORWARD_WORK


def check_random_state(seed):
    """A numpy generator, as scikit-learn's check_random_state makes one: from None numpy's
    global RandomState (np.random.seed seeds it; no new generator, whose seeding from the
    OS alone took 60 us here), from an int a new RandomState, a RandomState or a Generator
    used as it is."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= seed < 2 ** 32:
            raise ValueError(f"random_state must be in 0..2**32-1 as an int seed, got {seed}")
        return np.random.RandomState(int(seed))
    raise TypeError(f"random_state must be None, an int, a numpy RandomState or Generator, got {seed!r}")


def draw_seed(rng):
    """One draw from a generator, 0 .. 2**63-1: a training run's seed, from which the tuple
    order of every epoch and every dropout mask follow (train() draws one per call)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2 ** 63, dtype=np.int64))
    return int(rng.randint(0, 2 ** 63, dtype=np.int64))


def check_units(model, sizes, activation, output_activation, loss, dtype):
    """Check and set what a Network and an RNN share: sizes (a checked sequence), the
    hidden and output activations, the loss (paired with the output) and the dtype."""
    model.sizes = tuple(check_int(s, f"sizes[{i}]", minimum=1, maximum=MAX_SIZE)
                        for i, s in enumerate(sizes))
    model.activation = check_choice(activation, "activation", HIDDEN_ACTIVATIONS, ACTIVATION_ALIASES)
    model.output_activation = check_choice(output_activation, "output_activation",
                                           OUTPUT_ACTIVATIONS, ACTIVATION_ALIASES)
    model.loss = check_choice(loss, "loss", tuple(LOSS_OUTPUTS))
    if model.output_activation not in LOSS_OUTPUTS[model.loss]:
        raise ValueError(f"loss={model.loss!r} needs output_activation in {LOSS_OUTPUTS[model.loss]}, "
                         f"got {model.output_activation!r}")
    if model.output_activation == "softmax" and model.sizes[-1] < 2:
        raise ValueError("output_activation='softmax' needs at least 2 output units")
    model.dtype = check_dtype(dtype, "dtype", DTYPES)


def check_target_range(Y, loss, output_activation):
    """Targets the loss is defined for: probabilities for log loss, counts for Poisson
    (ValueError otherwise). Y: a non-empty 2-D array."""
    if loss == "log_loss" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError("Y must lie in [0, 1] for loss='log_loss' (class probabilities or 0/1 labels)")
    if loss == "log_loss" and output_activation == "softmax" and \
            not np.allclose(Y.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("Y rows must sum to 1 for softmax with loss='log_loss' (one-hot labels "
                         "or class probabilities)")
    if loss == "poisson" and Y.min() < 0:
        raise ValueError("Y must be >= 0 for loss='poisson'")


class Model:
    """What a Network and an RNN share: sizes, activations, loss and dtype (check_units),
    one params buffer, and the answers that follow from them."""

    @property
    def n_params(self):
        return self.params.shape[0]

    @property
    def n_inputs(self):
        return self.sizes[0]

    @property
    def n_outputs(self):
        return self.sizes[-1]

    @property
    def is_classifier(self):
        """Whether outputs are class scores (logistic or softmax), so accuracy means something."""
        return self.output_activation in ("logistic", "softmax")

    def trained_arrays(self):
        """The arrays training changes in place (a run's snapshots and checkpoints keep them):
        params, and whatever else the model learns (a Network's batch statistics)."""
        return (self.params,)

    def evaluate(self, X, Y, sample_weight=None):
        """(mean loss, accuracy) of the model on (X, Y) at the current weights; accuracy (the
        fraction of tuples, or sequences, classified right) is None for non-class outputs.

        With sample_weight the loss is the weighted mean; accuracy stays the fraction of tuples.
        """
        X, Y = self.check_XY(X, Y)
        weights = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        with compute_threads(parallel=self._parallel_forward(X)):
            loss_sum, weight_sum, n_correct = self._evaluate_sums(X, Y, weights)
        return loss_sum / weight_sum, (n_correct / X.shape[0] if self.is_classifier else None)

    def _parallel_forward(self, X):
        """Whether a forward pass over X runs on threads (parallel_forward's rule)."""
        raise NotImplementedError

    def _evaluate_sums(self, X, Y, weights):
        """(sum w E, sum w, n_correct) at the current weights, on checked input."""
        raise NotImplementedError

    def __repr__(self):
        extra = ", batch_norm=True" if getattr(self, "batch_norm", False) else ""
        return (f"{type(self).__name__}({list(self.sizes)}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}, loss={self.loss!r}, "
                f"dtype={self.dtype.name}{extra})")

    # -- what a training run needs from its model (fastbp.driver.Run asks; each model knows
    # its own kernels) ---------------------------------------------------------------------
    def check_training(self, mode, dropout, bptt_steps, clip_norm):
        """Refuse training settings this kind of model has no kernel for (ValueError)."""
        raise NotImplementedError

    def training_kernel(self, run):
        """(run kernel, its scratch arrays, whether it runs parallel regions) for `run`, a
        fastbp.driver.Run of this model."""
        raise NotImplementedError

    def training_arguments(self, run, optim, state):
        """The run kernel's arguments: optim = (K.Optimizer, hyper, state), state = the
        run's (ctl, num, history buffer, order, orders, prev, best)."""
        raise NotImplementedError

    def validation_arguments(self, validation):
        """What the run kernel takes for a fastbp.driver.Validation of this model's data."""
        raise NotImplementedError

    def note_targets(self, Y):
        """Remember what a training's targets were like (an RNN: per sequence or per step)."""

    def check_target_range(self, Y):
        """Targets the loss is defined for (check_target_range)."""
        check_target_range(Y, self.loss, self.output_activation)
