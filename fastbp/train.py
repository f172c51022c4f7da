"""train(): check the arguments, make a Run (fastbp.driver), drive it slice by slice, and
answer for the faults: divergence, Ctrl-C, checkpoints and resuming."""
import os
import warnings

import numpy as np

from . import _kernels as K
from ._validation import (
    as_sample_weight,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_n_jobs,
    is_dask_array,
)
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
from .io.checkpoint import check_same_run, read_checkpoint, save_checkpoint, stop_rule_changed
from .network import Network, check_random_state, draw_seed

SCHEDULES = {"constant": K.SCHED_CONSTANT, "1/t": K.SCHED_INV_T, "invscaling": K.SCHED_INVSCALING}
TRACKS = ("end", "pass")


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

    The whole run is compiled code: many epochs per kernel call, Python regaining control
    every 0.1 s or so (and after every epoch only with a callback or a callable schedule).

    Parameters
    ----------
    net : Network or RNN
        Trained in place: its `params` change.
    X : array of shape (n_samples, n_inputs)
        For an RNN, (n_sequences, n_steps, n_inputs). Converted once to the network's dtype;
        a memory-mapped array of that dtype is read in place. A dask.array chunked by rows
        trains a Network in mode="epoch" across a Dask cluster, each block's gradient
        computed where it lives (fastbp.dask_arrays; Y and sample_weight are then cut into
        X's blocks).
    Y : array of shape (n_samples, n_outputs)
        Targets (a 1-D array for one output). For an RNN, one per sequence
        (n_sequences, n_outputs) or one per step (n_sequences, n_steps, n_outputs).
    mode : {"case", "epoch", "minibatch"}, default "case"
        "case" updates after every tuple (the textbook's case updating); "epoch" once per
        pass with the mean gradient over all tuples (epoch updating); "minibatch" once per
        run of batch_size tuples of the epoch's order.
    batch_size : int, optional
        Minibatch size; default min(200, n_samples) (scikit-learn's "auto").
    learning_rate : float, default 0.1
        l in the textbook's Δw_ij = l·Err_j·O_i (on the mean gradient of an update's tuples).
    epochs : int, default 100
        The most epochs to run (in all, when resuming from a checkpoint).
    shuffle : bool, default True
        Case and minibatch updating visit the tuples in a new order every epoch; else 0..n-1.
    random_state : None, int, RandomState or Generator
        None continues the network's generator (``net.random_state_``; numpy's global one for
        a network made with random_state=None): each call draws one number from it, the
        run's seed; the tuple order of epoch e is a permutation keyed by (seed, e) (as are
        dropout's masks), the same on any number of threads.
    n_jobs : int, optional
        Numba threads for the parallel kernels (as in joblib: -1 all), restored on return.
    schedule : {"constant", "1/t", "invscaling"} or callable, default "constant"
        The learning rate of epoch e: learning_rate, learning_rate / e, learning_rate /
        e**power_t, or schedule(e) (a callable is asked every epoch).
    power_t : float, default 0.5
    momentum : float, default 0.0
    nesterov : bool, default False
    alpha : float, default 0.0
        L2 penalty: each update over B tuples follows the mean gradient + alpha * w / B on
        the weights (biases are not penalised), as scikit-learn does.
    optimizer : {"sgd", "adam", "rprop", "quickprop"}, default "sgd"
        SGD with momentum/Nesterov momentum, or Adam (beta_1, beta_2, epsilon), in any
        mode; FANN's batch algorithms in epoch mode: RPROP (iRPROP-, FANN's default;
        rprop_increase_factor, rprop_decrease_factor, rprop_delta_min, rprop_delta_max,
        rprop_delta_zero) and Quickprop (learning_rate, quickprop_decay, quickprop_mu), with
        FANN's names and defaults.
    beta_1, beta_2, epsilon : float
    tol : float, optional
        With n_iter_no_change: stop once the loss has not improved by tol for more than
        n_iter_no_change epochs (scikit-learn's rule). None: no such rule.
    n_iter_no_change : int, default 10
    max_misclassified : float, optional
        Stop once the fraction of tuples misclassified is at most this (classifiers).
    min_weight_change : float, optional
        Stop once every weight moved less than this over an epoch.
    callback : callable, optional
        callback(net, history) after every epoch; returning True stops training.
    progress : bool, default False
        A tqdm progress bar.
    track : {"pass", "end"}, default "pass"
        What History.loss/accuracy report: the epoch's pass as the tuples went by (as FANN
        and scikit-learn report them), or the network after the epoch, at the cost of one
        more forward pass per epoch in case and minibatch updating.
    sample_weight : array of shape (n_samples,), optional
        Weighs each tuple's error as scikit-learn does: an update over a batch moves against
        sum_t w_t grad E_t / S, S the batch's weight sum; History.loss is then the weighted mean.
    checkpoint : path, optional
        Save the network, the optimizer's state, the run's seed and counters and the history
        there (fastbp.io's format, written atomically) every `checkpoint_every` epochs, when
        training stops and when it is interrupted; fastbp.load(path) reads the network back.
    checkpoint_every : int, default 1
    resume : bool, default False
        With a checkpoint at `checkpoint`: continue from it up to `epochs` epochs in all (the
        same arguments and data give bit for bit the params of an uninterrupted run), also a
        run that had ended at a smaller `epochs`; without one, start anew. Any other setting
        that differs from the checkpoint's run (learning rate, schedule, momentum, validation,
        ...) is refused with a ValueError naming it, except the stop rules' thresholds: a run
        a rule stopped goes on when its threshold changed, and otherwise (or when it already
        has `epochs` epochs) is not trained further, a UserWarning saying why.
    bptt_steps : int, optional
        RNN only: truncate backpropagation through time to this many steps.
    clip_norm : float, optional
        RNN only: scale each update's gradient down to this Euclidean norm when longer.
    validation : (X_val, Y_val), optional
        Evaluated after every epoch (History.val_loss, val_accuracy).
    early_stopping : bool, default False
        With validation: stop once the validation loss has not improved by `tol` (default
        1e-4) for n_iter_no_change epochs; the network gets its best epoch's weights back.
    dropout : float or list of float, optional
        Drop each hidden unit's output with this probability (one rate, or one per hidden
        layer) in every training pass, scaling the others by 1/(1-rate) (inverted dropout);
        predict and evaluate use the whole network.

    Returns
    -------
    History
        Per-epoch loss, accuracy, seconds, learning rate (and validation numbers), and
        stopped_by: which rule ended training.

    Warns
    -----
    DivergenceWarning
        A non-finite loss or weight: training stops at once and the network keeps the
        weights of the last finite epoch (stopped_by="diverged").
    InterruptedWarning
        KeyboardInterrupt (Ctrl-C) stops training within one slice of epochs (a kernel call
        is never cut short): the network keeps the weights of the last completed epoch,
        stopped_by is "interrupted", and train() returns the history so far.

    Raises
    ------
    ValueError, TypeError
        Bad input, named (before anything changes).

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> Y = np.array([[0], [1], [1], [0]])
    >>> net = fastbp.Network([2, 4, 1], random_state=0)
    >>> history = fastbp.train(net, X, Y, mode="epoch", learning_rate=2.0, momentum=0.9,
    ...                        epochs=2000)
    >>> history.stopped_by
    'epochs'
    >>> bool((np.round(net.predict(X)) == Y).all())
    True
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
    n_iter_no_change = check_int(n_iter_no_change, "n_iter_no_change", minimum=1)  # also early stopping's
    if tol is not None:
        tol = check_float(tol, "tol", minimum=0.0)
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
    if any(is_dask_array(a) for a in (X, Y, sample_weight)):
        X, Y, weights = _dask_data(trainer, X, Y, sample_weight)
    else:
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
    rng_before = _rng_state(rng) if rate else None  # (a copy of 624 words: only if needed)
    resumed = read_checkpoint(checkpoint, net, trainer, X.shape[0]) if resume and \
        os.path.exists(checkpoint) else None
    seed = resumed["seed"] if resumed else draw_seed(rng)
    run = Run(trainer, X, Y, weights, rules, learning_rate=learning_rate, schedule=schedule_code,
              power_t=power_t, seed=seed, shuffle=shuffle, validation=validation,
              history=resumed["history"] if resumed else None)
    if resumed:
        check_same_run(checkpoint, run, resumed)  # before anything changes
        run.resume(resumed)
        done, status = run.epoch, run.status
        if done >= epochs:
            warnings.warn(f"checkpoint {checkpoint} already holds {done} epochs, epochs={epochs}: "
                          "nothing left to train (pass a larger `epochs` to go on)", UserWarning,
                          stacklevel=2)
            run.history.stopped_by = status or "epochs"
            return run.history
        if status == "epochs" or stop_rule_changed(run, resumed):
            run.stop(K.RUNNING)  # the old limit or threshold stopped it: go on under the new
        elif status:
            warnings.warn(f"the run in checkpoint {checkpoint} stopped by {status!r} after epoch "
                          f"{done}, and resuming it as it was would stop it again: nothing "
                          "trained. Start anew (resume=False), or change the threshold of the "
                          "rule that stopped it (tol, n_iter_no_change, max_misclassified, "
                          "min_weight_change) to train further.", UserWarning, stacklevel=2)
            run.history.stopped_by = status
            return run.history
    call_start = (net.params.copy(), rng_before) if rate else None
    return _drive(run, callback, rate, call_start, rng, progress, checkpoint, checkpoint_every,
                  n_jobs)


def _dask_data(trainer, X, Y, sample_weight):
    """Training data on Dask arrays, checked (fastbp.dask_arrays): epoch updating of a Network
    runs its passes on the cluster; nothing else can."""
    from .dask_arrays import check_training_data
    net = trainer.net
    if not isinstance(net, Network):
        raise TypeError(f"Dask arrays train a fastbp.Network; a {type(net).__name__} trains on "
                        "numpy arrays")
    if trainer.mode != "epoch":
        raise ValueError(f"on Dask arrays only mode='epoch' trains, got mode={trainer.mode!r}: "
                         "case and minibatch updating change the weights after every tuple or "
                         "batch, each update needing the one before, so the blocks cannot pass "
                         "at once where they live")
    if trainer.dropout is not None:
        raise ValueError("dropout is not supported on Dask arrays (its masks follow the tuples' "
                         "places in a local X)")
    return check_training_data(net, X, Y, sample_weight)  # (values too: before anything changes)


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
