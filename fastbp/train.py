"""train(): the epoch driver. One kernel call per epoch; between epochs only the cheap
things: learning-rate schedule, termination rules, history, callback, progress bar."""
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np


from ._kernels import backprop as K
from ._threads import compute_threads
from ._validation import as_sample_weight, check_bool, check_choice, check_float, check_int
from .network import Network, check_random_state, n_chunks_for
from .rnn import RNN

MODES = ("case", "epoch", "minibatch")
SCHEDULES = ("constant", "1/t", "invscaling")
TRACKS = ("end", "pass")


class DivergenceWarning(RuntimeWarning):
    """Training produced a non-finite loss or weight and was stopped."""


class InterruptedWarning(UserWarning):
    """Training was interrupted (KeyboardInterrupt) and stopped after its last completed epoch."""

HISTORY_LISTS = ("loss", "accuracy", "seconds", "learning_rate", "weight_change", "val_loss",
                 "val_accuracy")


@dataclass
class History:
    """What happened in each epoch of a train() call.

    loss[k]     mean loss over the training tuples after epoch k+1 (track="end"), or as they
                were passed during it (track="pass")
    accuracy[k] fraction classified right, likewise (empty for regression outputs)
    seconds[k]  wall time of the epoch's training (the kernel call; not the extra forward
                pass of track="end"), learning_rate[k] the rate it used,
    weight_change[k]  the largest |change| of any weight or bias over the epoch
    val_loss[k], val_accuracy[k]  with validation=(Xv, Yv): the mean loss (without the L2
                term) and the fraction right on the validation data after epoch k+1
    stopped_by  the rule that ended training: "epochs", "misclassified", "weight_change",
                "no_improvement", "callback", "early_stopping" (the validation loss stopped
                improving; the network gets the weights of its best epoch back),
                "diverged" (a non-finite loss or weight: the
                network keeps the weights of the last finite epoch, and a DivergenceWarning
                is issued) or "interrupted" (KeyboardInterrupt, e.g. Ctrl-C: the network
                keeps the weights of the last completed epoch, an InterruptedWarning is
                issued and train() returns normally)
    """
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    learning_rate: list = field(default_factory=list)
    weight_change: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    n_samples: int = 0
    stopped_by: str = ""

    @property
    def n_epochs(self):
        return len(self.loss)

    @property
    def tuples_per_second(self):
        """Training throughput over all epochs."""
        total = sum(self.seconds)
        return self.n_samples * self.n_epochs / total if total > 0 else float("nan")


class Trainer:
    """The kernel-facing state of one training run: mode, optimizer scalars and state arrays.

    Kept between epochs (and between calls, by the estimators' partial_fit) so momentum
    and Adam's moments carry over.
    """

    def __init__(self, net, mode="case", batch_size=None, momentum=0.0, nesterov=False, alpha=0.0,
                 optimizer="sgd", beta_1=0.9, beta_2=0.999, epsilon=1e-8, bptt_steps=None,
                 clip_norm=None, rprop_increase_factor=1.2, rprop_decrease_factor=0.5,
                 rprop_delta_min=0.0, rprop_delta_max=50.0, rprop_delta_zero=0.1,
                 quickprop_decay=-0.0001, quickprop_mu=1.75, dropout=None):
        if not isinstance(net, (Network, RNN)):
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
        # Optimizer state in the params layout: SGD velocity / Adam's first moment, Adam's
        # second; RPROP's and Quickprop's last steps and gradients.
        self.state = np.zeros((K.STATE_ROWS[K.OPTIMIZERS[self.optimizer]], net.n_params),
                              dtype=net.dtype)
        if self.optimizer == "rprop":
            self.state[0] = delta_zero
        # recurrent networks only: truncated BPTT length (0: none), gradient-norm clipping (0: none)
        if not isinstance(net, RNN) and (bptt_steps is not None or clip_norm is not None):
            raise ValueError("bptt_steps and clip_norm apply to recurrent networks (fastbp.RNN)")
        self.bptt = 0 if bptt_steps is None else check_int(bptt_steps, "bptt_steps", minimum=1)
        self.max_norm = 0.0 if clip_norm is None else check_float(clip_norm, "clip_norm", minimum=0.0,
                                                                  strict_min=True)
        self._buffers = {}
        self.dropout = self._dropout_rates(dropout)
        if isinstance(net, Network) and net.batch_norm:
            if self.mode == "case":
                raise ValueError("batch_norm normalises over a batch: it needs mode='minibatch' "
                                 "or 'epoch', got mode='case'")
            if self.dropout is not None:
                raise ValueError("dropout with batch_norm is not supported")
        self.dropout_seed = 0  # set per train() call from its generator; one more per pass
        self.passes = 0
        self._pending = None  # epoch mode: (stats, weight sum) of the pass whose gradient is in the buffer

    def _dropout_rates(self, dropout):
        """Per weight layer, the rate its outputs are dropped at (the output layer: 0)."""
        net = self.net
        if dropout is None:
            return None
        if isinstance(net, RNN):
            raise ValueError("dropout: not supported for fastbp.RNN (feed-forward Networks only)")
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
        """The layout the training kernels get: the network's, plus the dropout columns
        (with this pass's seed) when dropout is on."""
        net = self.net
        if self.dropout is None:
            return net.layout
        self.passes += 1
        table = np.zeros((net.layout.shape[0], K.TRAIN_LAYOUT_COLUMNS), dtype=np.int64)
        table[:, :K.LAYOUT_COLUMNS] = net.layout
        table[:-1, K.DROP] = [round(r * K.DROP_ONE) for r in self.dropout]
        table[:, K.DROP_SEED] = np.int64((self.dropout_seed + self.passes * 0x9E3779B97F4A7C15) % 2 ** 63)
        return table

    def _gradient_buffers(self, n_tuples):
        """Per-chunk gradient rows and the summed gradient, allocated once per pass size."""
        n_chunks = n_chunks_for(n_tuples)
        if n_chunks not in self._buffers:
            self._buffers[n_chunks] = (np.empty((n_chunks, self.net.n_params), self.net.dtype),
                                       np.empty(self.net.n_params, self.net.dtype))
        return self._buffers[n_chunks]

    def run_epoch(self, X, Y, weights, order, learning_rate):
        """One epoch over X[order] in the trainer's mode: ONE kernel call.

        `weights` are the tuples' sample weights (an empty array: all 1). Returns (passed,
        after): the (loss_sum, penalty_sum, n_correct) of the pass the updates came from (see
        the kernels' definition), and in epoch mode the same at the new weights, which the
        call computes with the next epoch's gradient (None in the other modes).
        """
        net = self.net
        self.hyper[K.LR] = learning_rate
        self.n_tuples = order.shape[0]
        loss_code, opt = K.LOSSES[net.loss], K.OPTIMIZERS[self.optimizer]
        if isinstance(net, RNN):
            return self._run_rnn_epoch(X, Y, weights, order, loss_code, opt), None
        if net.batch_norm:  # the batch's statistics: whole batches, one kernel call per epoch
            batch = order.shape[0] if self.mode == "epoch" else min(self.batch_size, order.shape[0])
            grad = self._gradient_buffers(batch)[1]
            return K.bn_batches(net.params, net.layout, net.bn_layout, net.bn_stats, X, Y, weights,
                                order, batch, loss_code, opt, self.hyper, self.state, grad,
                                net.bn_momentum, net.bn_eps, int(net.layout[-1, K.B_OFF]
                                                                 + net.layout[-1, K.FAN_OUT])), None
        layout = self.training_layout()
        if self.mode == "case":
            return K.case_epoch(net.params, layout, X, Y, weights, order, loss_code, opt,
                                self.hyper, self.state), None
        if self.mode == "minibatch":
            batch_size = min(self.batch_size, order.shape[0])  # also keeps it within int64
            rows, grad = self._gradient_buffers(batch_size)
            return K.minibatch_epoch(net.params, layout, X, Y, weights, order, batch_size,
                                     loss_code, opt, self.hyper, self.state, rows, grad), None
        rows, grad = self._gradient_buffers(order.shape[0])
        if self._pending is None:  # first epoch, or the weights changed since the last pass
            self._pending = self._pass_stats(K.batch_gradient(
                net.params, layout, X, Y, weights, order, 0, order.shape[0], loss_code, rows, grad))
            layout = self.training_layout()  # the next pass drops other units
        passed, weight_sum = self._pending
        self._pending = self._pass_stats(K.epoch_step(
            net.params, layout, X, Y, weights, order, weight_sum, loss_code, opt, self.hyper,
            self.state, rows, grad))
        return passed, self._pending[0]

    def _run_rnn_epoch(self, X, Y, weights, order, loss_code, opt):
        """One epoch of an Elman network: ONE kernel call, as for feed-forward networks."""
        net = self.net
        X2, Y2, T, per_step = net._flat(X, Y)
        bptt = np.int64(self.bptt)
        if self.mode == "case":
            return K.rnn_case_epoch(net.params, net.layout, X2, Y2, weights, order, T, per_step,
                                    bptt, self.max_norm, loss_code, opt, self.hyper, self.state)
        n = order.shape[0]
        batch = n if self.mode == "epoch" else min(self.batch_size, n)
        rows, grad = self._gradient_buffers(batch)
        return K.rnn_batches(net.params, net.layout, X2, Y2, weights, order, batch, T, per_step,
                             bptt, self.max_norm, loss_code, opt, self.hyper, self.state, rows, grad)

    def _pass_stats(self, raw):
        """A full-batch pass's (sum w E, S, n_correct) as ((loss_sum, penalty_sum, n_correct), S),
        the penalty at the current weights: those the pass ran at."""
        weighted_loss, weight_sum, n_correct = raw
        n = self.n_tuples
        alpha = self.hyper[K.ALPHA]
        # (not 0 * sum: with weights overflowing to inf that is NaN, and a warning)
        penalty = 0.5 * alpha * K.squared_weights(self.net.params, self.net.layout) if alpha else 0.0
        return (n / weight_sum * weighted_loss, n / weight_sum * penalty, n_correct), weight_sum

    def weights_changed(self):
        """Say the weights were changed from outside (or the data will be): epoch mode's
        gradient left from the last pass no longer holds."""
        self._pending = None


def _schedule(schedule, learning_rate, power_t):
    """epoch (1-based) -> learning rate."""
    if callable(schedule):
        def rate(epoch):
            return check_float(schedule(epoch), "schedule(epoch)", minimum=0.0)
        return rate
    schedule = check_choice(schedule, "schedule", SCHEDULES)
    if schedule == "1/t":
        return lambda epoch: learning_rate / epoch
    if schedule == "invscaling":
        return lambda epoch: learning_rate / epoch ** power_t
    return lambda epoch: learning_rate


def train(net, X, Y, mode="case", batch_size=None, learning_rate=0.1, epochs=100, shuffle=True,
          random_state=None, n_jobs=None, *, schedule="constant", power_t=0.5, momentum=0.0,
          nesterov=False, alpha=0.0, optimizer="sgd", beta_1=0.9, beta_2=0.999, epsilon=1e-8,
          tol=None, n_iter_no_change=10, max_misclassified=None, min_weight_change=None,
          callback=None, progress=False, track="end", sample_weight=None, checkpoint=None,
          checkpoint_every=1, resume=False, bptt_steps=None, clip_norm=None,
          rprop_increase_factor=1.2, rprop_decrease_factor=0.5, rprop_delta_min=0.0,
          rprop_delta_max=50.0, rprop_delta_zero=0.1, quickprop_decay=-0.0001, quickprop_mu=1.75,
          validation=None, early_stopping=False, dropout=None):
    """Train `net` on (X, Y) with backpropagation; returns a History.

    mode "case" updates after every tuple (the order a permutation drawn per epoch when
    shuffle, else 0..n-1); "epoch" once per pass with the mean gradient over all tuples;
    "minibatch" once per run of batch_size tuples of the epoch's order (default min(200, n),
    scikit-learn's "auto"). Each update over B
    tuples moves params against g = mean gradient + alpha * w / B on weights, with plain
    SGD, momentum/Nesterov momentum, or optimizer="adam", as scikit-learn does; in epoch mode
    also FANN's batch algorithms: optimizer="rprop" (iRPROP-, FANN's default:
    rprop_increase_factor, rprop_decrease_factor, rprop_delta_min, rprop_delta_max,
    rprop_delta_zero) and optimizer="quickprop" (learning_rate, quickprop_decay, quickprop_mu),
    with FANN's names and defaults.

    Training stops after `epochs` epochs, or earlier by any rule that is set:
    max_misclassified (fraction of tuples misclassified <= it), min_weight_change (every
    weight moved less than it over the epoch), tol with n_iter_no_change (scikit-learn's
    no-improvement rule on the loss), or callback(net, history) returning True.
    History.stopped_by says which. A non-finite loss or weight stops training at once with
    the weights of the last finite epoch (stopped_by="diverged", a DivergenceWarning).

    random_state None continues the network's own generator; n_jobs sets Numba's thread
    count for the parallel kernels, restored on return. sample_weight weighs each tuple's
    error as scikit-learn does (an update over a batch moves against sum_t w_t grad E_t / S,
    S the batch's weight sum; History.loss is then the weighted mean).

    `net` may also be a fastbp.RNN, with X of shape (n_sequences, n_steps, n_in): case updating
    is one update per sequence (backpropagation through time), epoch and minibatch updating
    follow the mean gradient over all / batch_size sequences; bptt_steps truncates
    backpropagation through time (errors flow back at most that many steps) and clip_norm
    scales each update's gradient down to that Euclidean norm when it is longer.

    dropout=rate (or one rate per hidden layer) drops each hidden unit's output with that
    probability in every training pass and scales the others by 1/(1-rate) (inverted
    dropout), in every mode; which units a pass drops follows from the generator, so runs
    repeat bit for bit. Predict and evaluate (and track="end") use the whole network.

    validation=(Xv, Yv) evaluates the network on that data after every epoch (History.val_loss,
    val_accuracy); with early_stopping=True training stops once the validation loss has not
    improved by `tol` (default 1e-4) for n_iter_no_change epochs, and the network gets the
    weights of its best epoch back (stopped_by="early_stopping").

    KeyboardInterrupt (Ctrl-C) stops training after the epoch that is running (a kernel
    call is never cut short): the network keeps the weights of the last completed epoch,
    History.stopped_by is "interrupted", an InterruptedWarning is issued, and train()
    returns the history so far instead of raising.

    checkpoint=path saves the network, the optimizer's state, the shuffling generator and
    the history there (fastbp.io's format, written atomically) every `checkpoint_every`
    epochs, when training stops and when it is interrupted; fastbp.load(path) reads the
    network back. With resume=True and a checkpoint at `path`, training continues from it
    up to `epochs` epochs in all (the same arguments as the interrupted call, and the same
    data, give bit for bit the params of an uninterrupted run); without one it starts anew.
    """
    trainer = Trainer(net, mode, batch_size, momentum, nesterov, alpha, optimizer, beta_1,
                      beta_2, epsilon, bptt_steps, clip_norm, rprop_increase_factor,
                      rprop_decrease_factor, rprop_delta_min, rprop_delta_max, rprop_delta_zero,
                      quickprop_decay, quickprop_mu, dropout)
    learning_rate = check_float(learning_rate, "learning_rate", minimum=0.0, strict_min=True)
    power_t = check_float(power_t, "power_t", minimum=0.0)
    rate = _schedule(schedule, learning_rate, power_t)
    epochs = check_int(epochs, "epochs", minimum=1)
    track = check_choice(track, "track", TRACKS)
    if tol is not None:
        tol = check_float(tol, "tol", minimum=0.0)
        n_iter_no_change = check_int(n_iter_no_change, "n_iter_no_change", minimum=1)
    if max_misclassified is not None:
        max_misclassified = check_float(max_misclassified, "max_misclassified", 0.0, 1.0)
        if not net.is_classifier:
            raise ValueError("max_misclassified needs a classifying output (logistic or softmax)")
    if min_weight_change is not None:
        min_weight_change = check_float(min_weight_change, "min_weight_change", minimum=0.0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    shuffle = check_bool(shuffle, "shuffle")
    rng = net.random_state_ if random_state is None else check_random_state(random_state)
    if trainer.dropout is not None:  # drawn only with dropout on: other runs keep their shuffles
        trainer.dropout_seed = int(rng.randint(0, 2 ** 62) if isinstance(rng, np.random.RandomState)
                                   else rng.integers(0, 2 ** 62))
    X, Y = net.check_XY(X, Y)
    weights = as_sample_weight(sample_weight, X.shape[0], net.dtype)
    early_stopping = check_bool(early_stopping, "early_stopping")
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (X_val, Y_val)")
        try:
            X_val, Y_val = net.check_XY(*validation)
        except (ValueError, TypeError) as error:
            raise type(error)(f"validation: {error}") from None
        val_weights = np.empty(0, dtype=net.dtype)
    elif early_stopping:
        raise ValueError("early_stopping=True needs validation=(X_val, Y_val)")
    val_tol = 1e-4 if tol is None else tol
    best_val, best_params, val_stall = np.inf, None, 0
    if isinstance(net, RNN):
        if checkpoint is not None:
            raise ValueError("checkpoint: not supported for fastbp.RNN yet (Network only)")
        net.targets_ = "step" if Y.ndim == 3 else "sequence"

    n = X.shape[0]
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a file path, got {checkpoint!r}")
        checkpoint = os.fspath(checkpoint)
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    resume = check_bool(resume, "resume")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=path, the file to resume from")
    history = History(n_samples=n)
    natural = np.arange(n, dtype=np.int64)
    progress_state = {"best_loss": np.inf, "no_improvement": 0}
    first = 1
    if resume and os.path.exists(checkpoint):
        first = _resume(checkpoint, net, trainer, rng, history, progress_state)
        if history.stopped_by or first > epochs:
            history.stopped_by = history.stopped_by or "epochs"
            return history
    best_loss, no_improvement = progress_state["best_loss"], progress_state["no_improvement"]
    done = history.n_epochs  # epochs whose weights and history entries are complete

    def save_checkpoint(epoch):
        _save_checkpoint(checkpoint, net, trainer, rng, history, epoch,
                         dict(best_loss=best_loss, no_improvement=no_improvement))

    bar = _progress_bar(epochs, progress)
    if bar is not None and first > 1:
        bar.update(first - 1)
    before = net.params.copy()
    state_before, hyper_before = trainer.state.copy(), trainer.hyper.copy()
    call_start = (net.params.copy(), _rng_state(rng)) if callable(schedule) else None
    epoch = first - 1
    try:
        with compute_threads(n_jobs):
            for epoch in range(first, epochs + 1):
                try:
                    lr = rate(epoch)
                except (ValueError, TypeError):
                    # A bad rate from a callable schedule: refuse the whole call, leaving the
                    # network (weights and generator) as it came in.
                    net.params[:] = call_start[0]
                    _set_rng_state(rng, call_start[1])
                    raise
                before[:] = net.params
                state_before[:], hyper_before[:] = trainer.state, trainer.hyper
                order = rng.permutation(n) if shuffle and trainer.mode != "epoch" else natural
                start = time.perf_counter()
                passed, after = trainer.run_epoch(X, Y, weights, order, lr)
                history.seconds.append(time.perf_counter() - start)
                if track == "pass" or after is not None:
                    loss_sum, _, n_correct = passed if track == "pass" else after
                    loss = loss_sum / n
                else:
                    loss_sum, weight_sum, n_correct = net._evaluate_sums(X, Y, weights)
                    loss = loss_sum / weight_sum
                if not (np.isfinite(loss) and np.isfinite(net.params).all()
                        and (after is None or np.isfinite(after[0]))):
                    # Go back to the last finite epoch rather than return a model predicting
                    # NaN (epoch updating knows the loss at the new weights too: it counts).
                    history.seconds.pop()
                    net.params[:] = before
                    trainer.state[:], trainer.hyper[:] = state_before, hyper_before
                    trainer.weights_changed()
                    history.stopped_by = "diverged"
                    if checkpoint is not None:
                        save_checkpoint(epoch - 1)
                    warnings.warn(f"training diverged in epoch {epoch} (loss {loss}); the network "
                                  f"keeps its weights after epoch {epoch - 1}. Lower learning_rate "
                                  "or scale the data.", DivergenceWarning, stacklevel=2)
                    break
                history.learning_rate.append(lr)
                history.loss.append(loss)
                history.weight_change.append(float(np.max(np.abs(net.params - before))))
                if net.is_classifier:
                    history.accuracy.append(n_correct / n)
                if validation is not None:
                    v_sum, v_weight, v_correct = net._evaluate_sums(X_val, Y_val, val_weights)
                    history.val_loss.append(v_sum / v_weight)
                    if net.is_classifier:
                        history.val_accuracy.append(v_correct / X_val.shape[0])
                done = history.n_epochs
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(_postfix(history), refresh=False)

                stop = None
                if tol is not None:
                    no_improvement = no_improvement + 1 if loss > best_loss - tol else 0
                    best_loss = min(best_loss, loss)
                    if no_improvement > n_iter_no_change:
                        stop = "no_improvement"
                if min_weight_change is not None and history.weight_change[-1] < min_weight_change:
                    stop = "weight_change"
                if max_misclassified is not None and 1.0 - history.accuracy[-1] <= max_misclassified:
                    stop = "misclassified"
                if early_stopping:
                    if history.val_loss[-1] < best_val - val_tol:
                        val_stall = 0
                    else:
                        val_stall += 1
                    if history.val_loss[-1] < best_val:
                        best_val, best_params = history.val_loss[-1], net.params.copy()
                    if val_stall > n_iter_no_change:
                        stop = "early_stopping"
                        net.params[:] = best_params
                        trainer.weights_changed()
                if callback is not None:
                    trained = net.params.copy()
                    if callback(net, history):
                        stop = "callback"
                    if not np.array_equal(trained, net.params):
                        trainer.weights_changed()
                if stop is not None or epoch == epochs:
                    history.stopped_by = stop or "epochs"
                if checkpoint is not None and (history.stopped_by or epoch % checkpoint_every == 0):
                    save_checkpoint(epoch)
                if history.stopped_by:
                    break
    except KeyboardInterrupt:
        # Python raises it between bytecodes, never inside a kernel call, so the epoch that
        # was running finished; keep the last epoch whose weights AND history are complete.
        if done < epoch:  # the running epoch's weights are not in the history: undo them
            net.params[:] = before
            trainer.state[:], trainer.hyper[:] = state_before, hyper_before
            trainer.weights_changed()
        for name in HISTORY_LISTS:
            del getattr(history, name)[done:]
        history.stopped_by = "interrupted"
        warnings.warn(f"training interrupted; the network keeps its weights after epoch {done}",
                      InterruptedWarning, stacklevel=2)
        if checkpoint is not None:
            save_checkpoint(done)
    finally:
        if bar is not None:
            bar.close()
    return history


def _postfix(history):
    post = {"loss": f"{history.loss[-1]:.4g}"}
    if history.accuracy:
        post["acc"] = f"{history.accuracy[-1]:.3f}"
    return post


def _progress_bar(epochs, progress):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=epochs, unit="epoch", desc="training", leave=True)


# -- checkpoints ---------------------------------------------------------------------------------
def _save_checkpoint(path, net, trainer, rng, history, epoch, progress_state):
    """The network after `epoch` epochs, with all train() needs to go on from there."""
    from . import io
    fields, arrays = io.encode_network(net)
    stopped_by = "" if history.stopped_by == "interrupted" else history.stopped_by
    fields["checkpoint"] = {
        "epoch": epoch, "mode": trainer.mode, "optimizer": trainer.optimizer,
        "batch_size": trainer.batch_size, "n_samples": history.n_samples,
        "stopped_by": stopped_by, "shuffle_rng": io.encode_rng(rng),
        "best_loss": progress_state["best_loss"], "no_improvement": progress_state["no_improvement"],
        "history": {name: [float(v) for v in getattr(history, name)] for name in HISTORY_LISTS}}
    arrays["trainer.hyper"] = trainer.hyper
    arrays["trainer.state"] = trainer.state
    io.write_archive(path, io._header("checkpoint", **fields), arrays)


def _resume(path, net, trainer, rng, history, progress_state):
    """Load the checkpoint at `path` into net, trainer, rng and history, after checking it
    belongs to this training; returns the first epoch still to run."""
    from . import io
    header, arrays = io.read_archive(path, kinds=("checkpoint",))
    check = io._Checker(path)
    saved = io.decode_network(header, arrays, check)
    if (saved.sizes, saved.activation, saved.output_activation, saved.loss, saved.dtype,
            saved.batch_norm) != (net.sizes, net.activation, net.output_activation, net.loss,
                                  net.dtype, net.batch_norm):
        raise ValueError(f"checkpoint {path} holds {saved!r}, which is not this network {net!r}")
    info = check.field(header, "checkpoint", lambda v: isinstance(v, dict), "an object")
    for key, value in (("mode", trainer.mode), ("optimizer", trainer.optimizer),
                       ("batch_size", trainer.batch_size), ("n_samples", history.n_samples)):
        if info.get(key) != value:
            raise ValueError(f"checkpoint {path} was written with {key}={info.get(key)!r}; this "
                             f"call has {key}={value!r}")
    epoch = check.field(info, "epoch", lambda v: io._is_int(v) and v >= 0, "an integer >= 0", "checkpoint")
    lists = check.field(info, "history", lambda v: isinstance(v, dict), "an object", "checkpoint")
    for name in HISTORY_LISTS:
        values = check.field(lists, name, lambda v: isinstance(v, list) and all(
            io._is_number(x) for x in v), "a list of numbers", "checkpoint history")
        optional = name.startswith("val_") or (name == "accuracy" and not net.is_classifier)
        if len(values) != epoch and not (optional and not values):
            check.fail(f"checkpoint history {name!r} has {len(values)} entries for {epoch} epochs")
        setattr(history, name, [float(v) for v in values])
    stopped_by = check.field(info, "stopped_by", lambda v: isinstance(v, str), "a string", "checkpoint")
    for key in ("best_loss", "no_improvement"):
        progress_state[key] = check.field(info, key, io._is_number, "a number", "checkpoint")
    hyper = check.array(arrays, "trainer.hyper", "f", shape=trainer.hyper.shape)
    state = check.array(arrays, "trainer.state", "f", shape=trainer.state.shape)
    shuffle = io.decode_rng(info.get("shuffle_rng"), check, "shuffle_rng")
    if type(shuffle) is not type(rng):
        raise ValueError(f"checkpoint {path} shuffled with a {type(shuffle).__name__}; this call "
                         f"with a {type(rng).__name__}")
    if arrays:
        check.fail(f"unexpected arrays {sorted(arrays)}")
    # all checked: now change the caller's objects
    net.params[:] = saved.params
    net.bn_stats[:] = saved.bn_stats
    trainer.hyper[:], trainer.state[:] = hyper, state
    trainer.weights_changed()
    _set_rng_state(rng, _rng_state(shuffle))
    history.stopped_by = stopped_by
    return epoch + 1


def _rng_state(rng):
    return rng.bit_generator.state if isinstance(rng, np.random.Generator) else rng.get_state()


def _set_rng_state(rng, state):
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)
