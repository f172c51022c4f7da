"""The epoch driver: every training run of fastbp -- train(), the scikit-learn drop-ins, the
RNN estimators, the sweeps -- is a Run, trained in slices of many epochs, each slice ONE call
into a run kernel (fastbp._kernels.backprop, "training runs"), which draws the tuple orders,
sets the learning rate, passes, writes the history and applies every stop rule itself.

Python regains control between slices: after SLICE_SECONDS of work, at a checkpoint, or when a
rule stops the run; after every epoch only where the caller asks for Python every epoch (a
callback, a callable learning-rate schedule). There it does what needs Python: a progress
bar, a checkpoint, a callback, verbose output.

A Run holds everything the run carries from epoch to epoch: the network's weights (its params,
changed in place), the optimizer's state (the Trainer's), the settings and counters of the
rules and schedules (ctl, num), the history's buffer and the passes' scratch arrays. snapshot()
and restore() take it back to the start of a slice: that is how a diverged run returns to its
last finite epoch, without copying the weights every epoch. A KeyboardInterrupt reaches Python
between kernel calls, never inside one, so the epochs a kernel ran are always whole and booked.
"""
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from ._model import Model
from ._threads import compute_threads
from ._validation import check_choice, check_float, check_int, is_dask_array

MODES = ("case", "epoch", "minibatch")
# A slice's time budget: Python answers Ctrl-C, updates a progress bar, at least this often.
SLICE_SECONDS = 0.1
# The history holds this many epochs at first (or the run's epochs, if fewer: untouched
# columns cost no memory); it doubles when a run needs more, and a kernel call ends where the
# buffer does: a 5,000-epoch XOR run took two calls with room for 4,096 (20 us more of 1.4 ms).
HISTORY_CAPACITY = 1 << 16
# The most tuple orders drawn in Python for one slice (the drop-ins' scikit-learn shuffles).
ORDERS_BYTES = 1 << 24
# History's series, in the order of the kernels' H_* rows.
SERIES = ("loss", "accuracy", "seconds", "learning_rate", "weight_change", "val_loss",
          "val_accuracy")
STOP_NAMES = K.STOP_NAMES
# What a run carries that a checkpoint keeps, beyond the network and the optimizer's arrays:
# ctl and num slots by name.
CHECKPOINT_COUNTERS = {"seed": K.C_SEED, "no_improvement": K.C_NO_IMPROVEMENT, "stall": K.C_STALL,
                       "best_epoch": K.C_BEST_EPOCH}
CHECKPOINT_VALUES = {"best_loss": K.N_BEST_LOSS, "best_val": K.N_BEST_VAL}


class DivergenceWarning(RuntimeWarning):
    """Training produced a non-finite loss or weight and was stopped."""


class InterruptedWarning(UserWarning):
    """Training was interrupted (KeyboardInterrupt) and stopped after its last completed epoch."""


class History:
    """What happened in each epoch of a training run (what train() returns).

    Attributes
    ----------
    loss : list of float
        loss[k] is the mean loss over the training tuples in epoch k+1, as they were passed
        (track="pass", the default), or of the network after the epoch (track="end").
    accuracy : list of float
        The fraction classified right, likewise (empty for regression outputs).
    seconds : list of float
        Wall time of each epoch in the run kernel (its pass and its bookkeeping). Epochs
        shorter than 4 us (XOR's, say) are timed 16 at a time, each booked at their mean:
        reading the clock would cost a tenth of such an epoch.
    learning_rate : list of float
        The rate each epoch used.
    weight_change : list of float
        The largest |change| of any weight or bias over each epoch (recorded when a rule
        needs it, e.g. min_weight_change).
    val_loss, val_accuracy : list of float
        With validation=(Xv, Yv): the mean loss (without the L2 term) and the fraction
        right on the validation data after each epoch.
    n_epochs : int
        Epochs done.
    n_samples : int
        Training tuples per epoch.
    stopped_by : str
        The rule that ended training: "epochs", "misclassified", "weight_change",
        "no_improvement", "callback", "early_stopping" (the validation loss stopped
        improving; the network gets the weights of its best epoch back), "diverged" (a
        non-finite loss or weight: the network keeps the weights of the last finite epoch,
        and a DivergenceWarning is issued) or "interrupted" (KeyboardInterrupt, e.g.
        Ctrl-C: the network keeps the weights of the last completed epoch, an
        InterruptedWarning is issued and train() returns normally).
    tuples_per_second : float
        Training throughput over all epochs.

    The per-epoch series are lists, made from the run's buffer when first read; repr()
    is a one-line summary.

    Examples
    --------
    >>> import fastbp
    >>> X, y = fastbp.datasets.xor()
    >>> net = fastbp.Network([2, 4, 1], random_state=0)
    >>> history = fastbp.train(net, X, y.reshape(-1, 1), epochs=10)
    >>> history.n_epochs, len(history.loss), history.stopped_by
    (10, 10, 'epochs')
    """

    def __init__(self, n_samples=0, *, accuracy=True, validation=False):
        self.n_samples = n_samples
        self.n_epochs = 0
        self.stopped_by = ""
        self._kept = {"accuracy": accuracy, "val_loss": validation,
                      "val_accuracy": validation and accuracy}
        self._buffer = np.empty((K.H_ROWS, 0))
        self._lists = {}

    def _series(self, name):
        if not self._kept.get(name, True):
            return []
        values = self._lists.setdefault(name, [])
        n = self.n_epochs
        if len(values) > n:
            del values[n:]
        elif len(values) < n:
            values.extend(self._buffer[SERIES.index(name), len(values):n].tolist())
        return values

    loss = property(lambda self: self._series("loss"))
    accuracy = property(lambda self: self._series("accuracy"))
    seconds = property(lambda self: self._series("seconds"))
    learning_rate = property(lambda self: self._series("learning_rate"))
    weight_change = property(lambda self: self._series("weight_change"))
    val_loss = property(lambda self: self._series("val_loss"))
    val_accuracy = property(lambda self: self._series("val_accuracy"))

    def _reserve(self, n_epochs):
        """Room in the buffer for n_epochs epochs (doubling); the buffer the kernels write."""
        if self._buffer.shape[1] < n_epochs:
            grown = np.empty((K.H_ROWS, max(n_epochs, 2 * self._buffer.shape[1])))
            grown[:, :self.n_epochs] = self._buffer[:, :self.n_epochs]
            self._buffer = grown
        return self._buffer

    def _set(self, series):
        """Fill the history from lists of per-epoch numbers (a checkpoint's)."""
        n = len(series["loss"])
        buffer = self._reserve(n)
        for name, values in series.items():
            if values:
                buffer[SERIES.index(name), :n] = values
        self.n_epochs = n
        self._lists = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_buffer"] = self._buffer[:, :self.n_epochs].copy()
        state["_lists"] = {}
        return state

    @property
    def tuples_per_second(self):
        """Training throughput over all epochs."""
        total = sum(self.seconds)
        return self.n_samples * self.n_epochs / total if total > 0 else float("nan")

    def __repr__(self):
        parts = [f"n_epochs={self.n_epochs}", f"stopped_by={self.stopped_by!r}"]
        if self.n_epochs:
            parts.append(f"loss={self.loss[-1]:.6g}")
            if self.accuracy:
                parts.append(f"accuracy={self.accuracy[-1]:.4g}")
            if self.val_loss:
                parts.append(f"val_loss={self.val_loss[-1]:.6g}")
            parts.append(f"seconds={sum(self.seconds):.4g}")
        return f"History({', '.join(parts)})"


class Trainer:
    """The optimizer a network is trained with: mode, batch size, the optimizer's scalars
    (`hyper`) and its state arrays in the params layout (`state`: SGD's velocity / Adam's
    moments / RPROP's and Quickprop's steps and slopes), and dropout.

    Kept between calls by the estimators' partial_fit and warm_start, so that momentum and
    Adam's moments carry over.
    """

    def __init__(self, net, mode="case", batch_size=None, momentum=0.0, nesterov=False, alpha=0.0,
                 optimizer="sgd", beta_1=0.9, beta_2=0.999, epsilon=1e-8, bptt_steps=None,
                 clip_norm=None, rprop_increase_factor=1.2, rprop_decrease_factor=0.5,
                 rprop_delta_min=0.0, rprop_delta_max=50.0, rprop_delta_zero=0.1,
                 quickprop_decay=-0.0001, quickprop_mu=1.75, dropout=None):
        from ._validation import check_bool
        if not isinstance(net, Model):
            raise TypeError(f"net must be a fastbp.Network or fastbp.RNN, got {type(net).__name__}")
        self.net = net
        self.mode = check_choice(mode, "mode", MODES)
        # None in minibatch mode: scikit-learn's "auto", min(200, n_samples).
        self.batch_size = 200 if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
        self.optimizer = check_choice(optimizer, "optimizer", tuple(K.OPTIMIZERS))
        self.hyper = np.zeros(K.N_HYPER)
        self.hyper[K.MOMENTUM] = check_float(momentum, "momentum", 0.0, 1.0)
        self.hyper[K.NESTEROV] = float(check_bool(nesterov, "nesterov"))
        self.hyper[K.ALPHA] = check_float(alpha, "alpha", minimum=0.0)
        self.hyper[K.BETA_1] = check_float(beta_1, "beta_1", 0.0, 1.0, strict_max=True)
        self.hyper[K.BETA_2] = check_float(beta_2, "beta_2", 0.0, 1.0, strict_max=True)
        self.hyper[K.EPSILON] = check_float(epsilon, "epsilon", minimum=0.0, strict_min=True)
        # FANN's batch algorithms, with FANN's parameter names and defaults
        self.hyper[K.RPROP_INCREASE] = check_float(rprop_increase_factor, "rprop_increase_factor",
                                                   minimum=1.0)
        self.hyper[K.RPROP_DECREASE] = check_float(rprop_decrease_factor, "rprop_decrease_factor",
                                                   0.0, 1.0, strict_min=True, strict_max=True)
        self.hyper[K.RPROP_DELTA_MIN] = check_float(rprop_delta_min, "rprop_delta_min", minimum=0.0)
        self.hyper[K.RPROP_DELTA_MAX] = check_float(rprop_delta_max, "rprop_delta_max",
                                                    minimum=self.hyper[K.RPROP_DELTA_MIN],
                                                    strict_min=True)
        delta_zero = check_float(rprop_delta_zero, "rprop_delta_zero", minimum=0.0, strict_min=True)
        self.hyper[K.QUICKPROP_DECAY] = check_float(quickprop_decay, "quickprop_decay", maximum=0.0)
        self.hyper[K.QUICKPROP_MU] = check_float(quickprop_mu, "quickprop_mu", minimum=0.0,
                                                 strict_min=True)
        if K.OPTIMIZERS[self.optimizer] in K.BATCH_ONLY and self.mode != "epoch":
            raise ValueError(f"optimizer={self.optimizer!r} is a batch algorithm (FANN's "
                             f"{'FANN_TRAIN_RPROP' if self.optimizer == 'rprop' else 'FANN_TRAIN_QUICKPROP'}): "
                             f"it needs mode='epoch', got mode={self.mode!r}")
        self.state = np.zeros((K.STATE_ROWS[K.OPTIMIZERS[self.optimizer]], net.n_params),
                              dtype=net.dtype)
        if self.optimizer == "rprop":
            self.state[0] = delta_zero
        net.check_training(self.mode, dropout, bptt_steps, clip_norm)
        # recurrent networks only: truncated BPTT length (0: none), gradient-norm clipping (0: none)
        self.bptt = 0 if bptt_steps is None else check_int(bptt_steps, "bptt_steps", minimum=1)
        self.max_norm = 0.0 if clip_norm is None else check_float(clip_norm, "clip_norm", minimum=0.0,
                                                                  strict_min=True)
        self.dropout = self._dropout_rates(dropout)

    def _dropout_rates(self, dropout):
        """Per weight layer, the rate its outputs are dropped at (the output layer: 0)."""
        net = self.net
        if dropout is None:
            return None
        n_hidden = len(net.sizes) - 2
        if n_hidden == 0:
            raise ValueError("dropout needs a hidden layer; this network has none")
        rates = [dropout] * n_hidden if not isinstance(dropout, (list, tuple, np.ndarray)) else list(dropout)
        if len(rates) != n_hidden:
            raise ValueError(f"dropout must be one rate or one per hidden layer ({n_hidden}), "
                             f"got {len(rates)}")
        rates = [check_float(r, f"dropout[{i}]", 0.0, 1.0, strict_max=True) for i, r in enumerate(rates)]
        return rates if any(rates) else None

    def training_layout(self):
        """The layout the run kernels get: the network's, or a copy with the dropout columns
        (the rates; the kernels write each pass's seed)."""
        net = self.net
        if self.dropout is None:
            return net.layout
        table = np.zeros((net.layout.shape[0], K.TRAIN_LAYOUT_COLUMNS), dtype=np.int64)
        table[:, :K.LAYOUT_COLUMNS] = net.layout
        table[:-1, K.DROP] = [round(r * K.DROP_ONE) for r in self.dropout]
        return table


@dataclass
class Rules:
    """When a run stops, and what its history reports (the kernels' end_epoch applies them).

    epochs: the run's last epoch. tol / n_iter_no_change: stop once the loss has not improved
    by tol for more than n_iter_no_change epochs (None: no such rule). max_misclassified,
    min_weight_change: stop once the fraction misclassified is at most the first, or every
    weight moved less than the second over an epoch. early_stopping: stop once the
    validation loss has not improved by val_tol for more than n_iter_no_change epochs, with
    the best epoch's weights back. track_end: the history's loss and accuracy are those of
    the network after each epoch rather than of the pass. weight_change: keep
    History.weight_change.

    sklearn: scikit-learn's MLP instead (its _fit_stochastic): always a tol rule, on the
    validation score (accuracy or R^2, higher is better) under early stopping, and answered
    by the "adaptive" schedule; the loss scaled by data_scale with the L2 term in it; the best
    weights kept but not restored (the estimator restores them when the fit ends).
    """
    epochs: int
    tol: float = None
    n_iter_no_change: int = 10
    max_misclassified: float = None
    min_weight_change: float = None
    early_stopping: bool = False
    val_tol: float = 1e-4
    track_end: bool = False
    weight_change: bool = True
    sklearn: bool = False
    data_scale: float = 1.0


@dataclass
class Validation:
    """Validation data of a run: X and Y as the network takes them (its dtype) for the loss
    and accuracy; for scikit-learn's score also `score` (K.SCORE_ACCURACY or K.SCORE_R2),
    Y_score (float64: the binarized labels, or y as given) and their sample weights."""
    X: np.ndarray
    Y: np.ndarray
    score: int = K.SCORE_NONE
    Y_score: np.ndarray = None
    weights: np.ndarray = None


class GivenOrders:
    """Tuple orders drawn in Python, a slice of epochs at a time: scikit-learn's shuffle
    stream (sklearn.utils.shuffle of the previous order with the estimator's generator), so
    that the drop-ins keep scikit-learn's weights for a random_state. `settle(epochs)` leaves
    the generator as if exactly that many epochs had been drawn."""

    def __init__(self, rng, n, shuffle):
        self.rng, self.shuffle = rng, shuffle
        self.current = np.arange(n, dtype=np.int64)  # the order of the last epoch drawn
        self.max_epochs = max(1, ORDERS_BYTES // (8 * n))
        self.array = np.empty((1, n), dtype=np.int64)
        self.first, self.drawn = 1, 0
        self._start = None

    def draw(self, first, count):
        """Orders for epochs first .. first + count - 1 (count within max_epochs) into
        `array` (it grows, so a run kernel's arguments are made anew when it does)."""
        self._start = (self.rng.get_state(), self.current.copy())
        if self.array.shape[0] < count:
            self.array = np.empty((count, self.current.shape[0]), dtype=np.int64)
        for i in range(count):
            if self.shuffle:
                self.current = self.current[self.rng.permutation(self.current.shape[0])]
            self.array[i] = self.current
        self.first, self.drawn = first, count

    def settle(self, used):
        """Only the first `used` orders drawn were trained on: draw again up to there."""
        if self._start is not None and used < self.drawn:
            state, self.current = self._start
            self.rng.set_state(state)
            if used:
                self.draw(self.first, used)
        self._start = None


class Run:
    """One training run (see the module's docstring).

    trainer: the network and its optimizer; X, Y, weights: checked training data (weights
    empty: all 1); rules: a Rules; learning_rate, schedule (K.SCHED_*), power_t: the rate of
    each epoch; seed: the run's seed (tuple orders and dropout masks); shuffle: a new order
    every epoch (case and minibatch updating), else 0..n-1; orders: a GivenOrders instead;
    validation: a Validation (X, Y checked by the network); history: a
    History to go on with (a resumed run), else a new one.

    What the model's training_kernel and training_arguments read and set (its kernel's
    arguments): scratch (the kernel's scratch arrays), val_arguments (the validation data as
    the kernel takes it), batch_size, evaluation (a Network's track="end" buffers, or None),
    grad.
    """

    def __init__(self, trainer, X, Y, weights, rules, *, learning_rate, schedule=K.SCHED_CONSTANT,
                 power_t=0.5, seed=0, shuffle=True, orders=None, validation=None, history=None):
        net = trainer.net
        self.trainer, self.net, self.rules = trainer, net, rules
        self.X, self.Y, self.weights, self.validation = X, Y, weights, validation
        self.orders = orders
        self.n = n = X.shape[0]
        self.ctl = ctl = np.zeros(K.N_CTL, dtype=np.int64)
        self.num = num = np.zeros(K.N_NUM)
        ctl[K.C_LAST] = rules.epochs
        ctl[K.C_SEED] = seed
        if orders is not None:
            ctl[K.C_ORDER] = K.ORDER_GIVEN
        elif shuffle and trainer.mode != "epoch":
            ctl[K.C_ORDER] = K.ORDER_HASHED
        ctl[K.C_SCHEDULE] = schedule
        ctl[K.C_TRACK_END] = rules.track_end
        ctl[K.C_TOL_RULE] = K.RULE_SKLEARN if rules.sklearn else \
            K.RULE_TRAIN if rules.tol is not None else K.RULE_OFF
        ctl[K.C_PATIENCE] = rules.n_iter_no_change
        ctl[K.C_ES_RULE] = K.RULE_OFF if not rules.early_stopping else \
            K.RULE_SKLEARN if rules.sklearn else K.RULE_TRAIN
        ctl[K.C_WEIGHT_CHANGE] = rules.weight_change or rules.min_weight_change is not None
        # (orders drawn in Python size their slices themselves: the budget is only a backstop)
        ctl[K.C_BUDGET_NS] = int(SLICE_SECONDS * 1e9) * (1 if orders is None else 4)
        ctl[K.C_CLASSIFIER] = net.is_classifier
        ctl[K.C_PENALTY] = rules.sklearn
        ctl[K.C_LOSS_DIVERGES] = not rules.sklearn
        ctl[K.C_SCORE] = K.SCORE_NONE if validation is None else validation.score
        num[K.N_LR0] = num[K.N_LR] = learning_rate
        num[K.N_POWER_T] = power_t
        num[K.N_TOL] = 0.0 if rules.tol is None else rules.tol
        num[K.N_VAL_TOL] = rules.val_tol
        num[K.N_MAX_MISCLASSIFIED] = -1.0 if rules.max_misclassified is None else rules.max_misclassified
        num[K.N_MIN_WEIGHT_CHANGE] = -1.0 if rules.min_weight_change is None else rules.min_weight_change
        num[K.N_BEST_LOSS] = np.inf
        num[K.N_BEST_VAL] = -np.inf if rules.sklearn else np.inf
        num[K.N_DATA_SCALE] = rules.data_scale
        self.history = history if history is not None else History(
            n, accuracy=net.is_classifier, validation=validation is not None)
        self.history.n_samples = n
        ctl[K.C_EPOCH] = self.history.n_epochs
        self.history._reserve(min(rules.epochs, HISTORY_CAPACITY))
        # (Dask arrays: each block passes in its own order, 0..rows-1)
        self.order = np.arange(0 if is_dask_array(X) else n, dtype=np.int64)
        dt = net.dtype
        self.prev = np.empty(net.n_params if ctl[K.C_WEIGHT_CHANGE] else 0, dtype=dt)
        self.best = np.empty(net.n_params if rules.early_stopping else 0, dtype=dt)
        self.layout = trainer.training_layout()
        self.blas = False  # the kernel's passes are matrix products (training_kernel says so)
        self._kernel, self.scratch, self.parallel = self._choose_kernel()
        self.val_arguments = self._validation_args()
        self._bound = None  # (history buffer, orders array) the kernel's arguments were made for

    # -- the kernel and its arguments ------------------------------------------------------------
    def _choose_kernel(self):
        """(run kernel, its scratch arrays, whether it runs parallel regions): the network's
        to say (Network.training_kernel, RNN.training_kernel)."""
        return self.net.training_kernel(self)

    def _validation_args(self):
        return None if self.validation is None else self.net.validation_arguments(self.validation)

    def _arguments(self):
        """The run kernel's arguments (they hold the history's buffer: made anew when it grows,
        or when momentum is switched on or off, which selects the compiled update code)."""
        trainer = self.trainer
        optim = K.Pack((K.Optimizer.of(trainer.optimizer), trainer.hyper, trainer.state))
        # (given, hashing) as runs.epoch_order takes them: None where unused, so that the
        # kernel compiles the copy of orders drawn in Python or its own generator, not both
        # (the generator with or without shuffling: one kernel serves both)
        orders = (self.orders.array, None) if self.orders is not None else (None, True)
        run = (self.ctl, self.num, self.history._buffer, self.order, orders, self.prev, self.best)
        return self.net.training_arguments(self, optim, run)

    # -- state --------------------------------------------------------------------------------
    @property
    def epoch(self):
        """Epochs done (booked in the history)."""
        return int(self.ctl[K.C_EPOCH])

    @property
    def status(self):
        """Why the run stopped ("" while it goes on): one of K.STOP_NAMES."""
        return STOP_NAMES[self.ctl[K.C_STATUS]]

    def stop(self, code):
        self.ctl[K.C_STATUS] = code

    def resume(self, resumed):
        """Load a checked checkpoint (fastbp.io.checkpoint.read_checkpoint's dict) into the
        run: the network's weights (and batch-norm statistics), the optimizer's state, the
        counters of the rules."""
        for mine, saved in zip(self.net.trained_arrays(), resumed["saved"].trained_arrays()):
            mine[:] = saved
        self.trainer.hyper[:], self.trainer.state[:] = resumed["hyper"], resumed["state"]
        for name, slot in CHECKPOINT_COUNTERS.items():
            self.ctl[slot] = resumed["counters"][name]
        for name, slot in CHECKPOINT_VALUES.items():
            self.num[slot] = resumed["values"][name]
        if resumed["best"] is not None and self.best.size:
            self.best[:] = resumed["best"]
        self.ctl[K.C_STATUS] = K.STOP_NAMES.index(resumed["stopped_by"])
        self.weights_changed()

    def weights_changed(self):
        """The weights were changed from outside: epoch updating's gradient no longer holds."""
        self.ctl[K.C_PENDING] = 0

    def snapshot(self):
        """Everything a slice changes, copied (see restore)."""
        net, trainer = self.net, self.trainer
        grad = getattr(self, "grad", None)
        return (tuple(a.copy() for a in net.trained_arrays()), trainer.state.copy(),
                trainer.hyper.copy(), self.ctl.copy(), self.num.copy(),
                None if grad is None else grad.copy(), self.best.copy())

    def restore(self, snapshot):
        """Back to the snapshot, in place (the kernels' arrays stay the same objects)."""
        arrays, state, hyper, ctl, num, grad, best = snapshot
        for mine, saved in zip(self.net.trained_arrays(), arrays):
            mine[:] = saved
        self.trainer.state[:], self.trainer.hyper[:] = state, hyper
        self.ctl[:], self.num[:], self.best[:] = ctl, num, best
        if grad is not None:
            self.grad[:] = grad
        self.history.n_epochs = self.epoch

    # -- running ------------------------------------------------------------------------------
    def run_slice(self, end):
        """Train from the next epoch up to epoch `end` at most, in one kernel call (it stops
        sooner on its time budget or a rule); returns the epochs done. A diverged epoch is
        taken back: the run returns to the slice's start and trains again up to the epoch
        before it (the kernels are deterministic: the same weights, bit for bit)."""
        ctl = self.ctl
        if self.orders is not None:  # scikit-learn's shuffles for the epochs the budget allows
            count = min(end - self.epoch, self.orders.max_epochs, self._epochs_in_budget())
            self.orders.draw(self.epoch + 1, count)
            ctl[K.C_ORDERS_FIRST], end = self.epoch + 1, self.epoch + count
        bound = (self.history._reserve(end),
                 self.orders.array if self.orders is not None else None,
                 bool(self.trainer.hyper[K.MOMENTUM] == 0.0))  # (see _arguments: `general`)
        if self._bound is None or any(a is not b for a, b in zip(bound, self._bound)):
            self._args, self._bound = self._arguments(), bound
        snapshot = self.snapshot()
        ctl[K.C_END] = end
        self._kernel(*self._args)
        diverged_at = ctl[K.C_DIVERGED_AT]
        if ctl[K.C_STATUS] == K.STOP_DIVERGED and self.epoch < diverged_at:
            self.restore(snapshot)
            if diverged_at - 1 > self.epoch:
                budget, ctl[K.C_BUDGET_NS] = ctl[K.C_BUDGET_NS], np.iinfo(np.int64).max
                ctl[K.C_END] = diverged_at - 1
                self._kernel(*self._args)
                ctl[K.C_BUDGET_NS] = budget
            ctl[K.C_STATUS], ctl[K.C_DIVERGED_AT] = K.STOP_DIVERGED, diverged_at
        self.history.n_epochs = self.epoch
        if self.orders is not None:
            self.orders.settle(self.epoch - int(ctl[K.C_ORDERS_FIRST]) + 1)
        return self.epoch

    def _epochs_in_budget(self):
        """About how many epochs fit in a slice's budget, from the epochs run so far (one
        while there are none): orders drawn in Python are drawn for that many."""
        done = self.history.n_epochs
        if done == 0:
            return 1
        recent = self.history._buffer[K.H_SECONDS, max(0, done - 64):done]
        return max(1, int(SLICE_SECONDS / max(float(recent.mean()), 1e-9)))

    def next_end(self, per_epoch=False, every=None):
        """The last epoch the next slice may reach: one epoch where Python is wanted every
        epoch, up to the next multiple of `every` (checkpoints), within what the drawn orders
        and the history's growth allow."""
        first = self.epoch + 1
        if per_epoch:
            return first
        end = min(int(self.ctl[K.C_LAST]), max(self.history._buffer.shape[1], 2 * first))
        if every:
            end = min(end, (first + every - 1) // every * every)
        return end

    def threads(self, n_jobs):
        """compute_threads for this run's kernel: Numba's threads only where the kernel runs
        parallel regions, BLAS pinned to one there and where its passes are matrix products."""
        return compute_threads(n_jobs, parallel=self.parallel, blas=self.blas)
