"""train(): check the arguments, make a Run (fastbp.driver), drive it slice by slice, and
answer for the faults: divergence, Ctrl-C, checkpoints and resuming."""
import os
import warnings

import numpy as np

from . import _kernels as K
from ._validation import as_sample_weight, check_bool, check_choice, check_float, check_int, check_n_jobs
from .driver import (  # noqa: F401
    MODES,
    SERIES,
    DivergenceWarning,
    History,
    InterruptedWarning,
    Rules,
    Run,  # (re-exported)
    Trainer,
    Validation,
)
from .io.checkpoint import read_checkpoint, save_checkpoint
from .network import check_random_state, draw_seed

SCHEDULES = {"constant": K.SCHED_CONSTANT, "1/t": K.SCHED_INV_T, "invscaling": K.SCHED_INVSCALING}
TRACKS = ("end", "pass")
HISTORY_LISTS = SERIES


def train(net, X, Y, mode="case", batch_size=None, learning_rate=0.1, epochs=100, shuffle=True,
          random_state=None, n_jobs=None, *, schedule="constant", power_t=0.5, momentum=0.0,
          nesterov=False, alpha=0.0, optimizer="sgd", beta_1=0.9, beta_2=0.999, epsilon=1e-8,
          tol=None, n_iter_no_change=10, max_misclassified=None, min_weight_change=None,
          callback=None, progress=False, track="pass", sample_weight=None, checkpoint=None,
          checkpoint_every=1, resume=False, bptt_steps=None, clip_norm=None,
          rprop_increase_factor=1.2, rprop_decrease_factor=0.5, rprop_delta_min=0.0,
          rprop_delta_max=50.0, rprop_delta_zero=0.1, quickprop_decay=-0.0001, quickprop_mu=1.75,
          validation=None, early_stopping=False, dropout=None):
    """Train `net` on (X, Y) with backpropagation; returns a History.

    mode "case" updates after every tuple (the order a new permutation every epoch when
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

    The whole run is compiled code: many epochs per kernel call, Python regaining control
    every 0.1 s or so (and after every epoch only with a callback or a callable schedule).
    track="pass" (the default) records the loss and accuracy of each epoch's pass as the
    tuples went by, as FANN and scikit-learn report them (and the textbook's "tuples
    misclassified in the previous epoch"); track="end" those of the network after the
    epoch, at the cost of one more forward pass per epoch in case and minibatch updating.

    random_state None continues the network's own generator: each call draws one number
    from it, the run's seed, and the tuple order of epoch e is a permutation keyed by (seed,
    e) (as are dropout's masks), the same on any number of threads. n_jobs sets Numba's
    thread count for the parallel kernels, restored on return. sample_weight weighs each
    tuple's error as scikit-learn does (an update over a batch moves against sum_t w_t grad
    E_t / S, S the batch's weight sum; History.loss is then the weighted mean).

    `net` may also be a fastbp.RNN, with X of shape (n_sequences, n_steps, n_in): case updating
    is one update per sequence (backpropagation through time), epoch and minibatch updating
    follow the mean gradient over all / batch_size sequences; bptt_steps truncates
    backpropagation through time (errors flow back at most that many steps) and clip_norm
    scales each update's gradient down to that Euclidean norm when it is longer.

    dropout=rate (or one rate per hidden layer) drops each hidden unit's output with that
    probability in every training pass and scales the others by 1/(1-rate) (inverted
    dropout), in every mode; which units a pass drops follows from the run's seed, so runs
    repeat bit for bit. Predict and evaluate (and track="end") use the whole network.

    validation=(Xv, Yv) evaluates the network on that data after every epoch (History.val_loss,
    val_accuracy); with early_stopping=True training stops once the validation loss has not
    improved by `tol` (default 1e-4) for n_iter_no_change epochs, and the network gets the
    weights of its best epoch back (stopped_by="early_stopping").

    KeyboardInterrupt (Ctrl-C) stops training within one slice of epochs (a kernel call is
    never cut short): the network keeps the weights of the last completed epoch,
    History.stopped_by is "interrupted", an InterruptedWarning is issued, and train()
    returns the history so far instead of raising.

    checkpoint=path saves the network, the optimizer's state, the run's seed and counters
    and the history there (fastbp.io's format, written atomically) every `checkpoint_every`
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
    rate = _callable_schedule(schedule) if callable(schedule) else None
    schedule_code = K.SCHED_GIVEN if rate else SCHEDULES[check_choice(schedule, "schedule", tuple(SCHEDULES))]
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
    n_jobs = check_n_jobs(n_jobs)
    rng = net.random_state_ if random_state is None else check_random_state(random_state)
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
        validation = Validation(X_val, Y_val)
    elif early_stopping:
        raise ValueError("early_stopping=True needs validation=(X_val, Y_val)")
    net.note_targets(Y)
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a file path, got {checkpoint!r}")
        checkpoint = os.fspath(checkpoint)
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    resume = check_bool(resume, "resume")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=path, the file to resume from")

    rules = Rules(epochs=epochs, tol=tol, n_iter_no_change=n_iter_no_change,
                  max_misclassified=max_misclassified, min_weight_change=min_weight_change,
                  early_stopping=early_stopping, val_tol=1e-4 if tol is None else tol,
                  track_end=track == "end")
    rng_before = _rng_state(rng)
    resumed = read_checkpoint(checkpoint, net, trainer, X.shape[0]) if resume and \
        os.path.exists(checkpoint) else None
    seed = resumed["seed"] if resumed else draw_seed(rng)
    run = Run(trainer, X, Y, weights, rules, learning_rate=learning_rate, schedule=schedule_code,
              power_t=power_t, seed=seed, shuffle=shuffle, validation=validation,
              history=resumed["history"] if resumed else None)
    if resumed:
        run.resume(resumed)
        if run.status or run.epoch >= epochs:
            run.history.stopped_by = run.status or "epochs"
            return run.history
    call_start = (net.params.copy(), rng_before) if rate else None
    return _drive(run, callback, rate, call_start, rng, progress, checkpoint, checkpoint_every,
                  n_jobs)


def _callable_schedule(schedule):
    def rate(epoch):
        return check_float(schedule(epoch), "schedule(epoch)", minimum=0.0)
    return rate


def _drive(run, callback, rate, call_start, rng, progress, checkpoint, checkpoint_every, n_jobs):
    """Slices until the run stops; Python's part of each: the progress bar, a callable
    schedule's rate, the callback, checkpoints, and the answer to faults."""
    net, history = run.net, run.history
    bar = _progress_bar(run.rules.epochs, progress)
    if bar is not None and run.epoch:
        bar.update(run.epoch)
    per_epoch = callback is not None or rate is not None
    try:
        with run.threads(n_jobs):
            while not run.status:
                first = run.epoch + 1
                if rate is not None:
                    try:
                        run.num[K.N_LR] = rate(first)
                    except (ValueError, TypeError):
                        # a bad rate from a callable schedule: refuse the whole call, leaving
                        # the network (weights and generator) as it came in
                        net.params[:] = call_start[0]
                        _set_rng_state(rng, call_start[1])
                        raise
                run.run_slice(run.next_end(per_epoch, checkpoint_every if checkpoint else None))
                if bar is not None:
                    bar.update(run.epoch - bar.n)
                    if run.epoch:
                        bar.set_postfix(_postfix(history), refresh=False)
                if callback is not None and run.epoch == first:
                    trained = net.params.copy()
                    if callback(net, history):
                        run.stop(K.STOP_CALLBACK)
                    if not np.array_equal(trained, net.params):
                        run.weights_changed()
                if checkpoint is not None and (run.status or run.epoch % checkpoint_every == 0):
                    save_checkpoint(checkpoint, run)
    except KeyboardInterrupt:
        # Python raises it between bytecodes, never inside a kernel call: every epoch the
        # kernels ran is whole and booked.
        history.n_epochs = run.epoch
        history.stopped_by = "interrupted"
        warnings.warn(f"training interrupted; the network keeps its weights after epoch "
                      f"{run.epoch}", InterruptedWarning, stacklevel=3)
        if checkpoint is not None:
            save_checkpoint(checkpoint, run)
        return history
    finally:
        if bar is not None:
            bar.close()
    history.stopped_by = run.status
    if run.status == "diverged":
        e = int(run.ctl[K.C_DIVERGED_AT])
        warnings.warn(f"training diverged in epoch {e} (loss {history._buffer[K.H_LOSS, e - 1]}); "
                      f"the network keeps its weights after epoch {e - 1}. Lower learning_rate "
                      "or scale the data.", DivergenceWarning, stacklevel=3)
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


def _rng_state(rng):
    return rng.bit_generator.state if isinstance(rng, np.random.Generator) else rng.get_state()


def _set_rng_state(rng, state):
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)
