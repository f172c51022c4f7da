"""Training runs: many epochs per kernel call. Each run kernel draws the tuple order of every
epoch, sets the learning rate, passes, writes the history and applies every stop rule
(see fastbp.driver, which calls them a slice of epochs at a time).
"""
import numpy as np
from numba import njit, prange

from ._jit import correct_of, loss_of, sk_correct_of, twin
from ._setup import INTERNAL, JIT, NO_REFCOUNT
from .batch_norm import bn_batches, bn_evaluate
from .blocks import split_workspace
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .fastmath import empty_array, monotonic_ns
from .optimizers import apply_mean_update
from .passes import (
    case_pass,
    evaluate_pass,
    gradient_pass,
    minibatch_pass,
    short_gradient,
    short_minibatch_pass,
)
from .rnn import rnn_batches, rnn_case_epoch, rnn_evaluate, rnn_evaluate_serial
from .shaped import case_pass_of
from .steps import forward, geometry, hashed_order, splitmix, squared_weights, weight_of

# -- training runs: many epochs per kernel call -------------------------------------------------


# The bookkeeping kernels round as Python does: no fastmath (a reciprocal or a fused
# multiply-add would move a learning rate or a loss by an ulp from what the rules promise).
# Said explicitly: a kernel that leaves fastmath unset inherits its first caller's (Numba's
# CPUTargetOptions.finalize), and record_validation compiled inside run_minibatch, inlined
# there, divided by the tuple count as a multiplication by its reciprocal (a validation
# accuracy of 0.47000000000000003 for 47 right of 100).
PLAIN_JIT = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


@njit(inline="always", **JIT)
def copy_into(dst, src):
    """dst[:] = src for two arrays of one length, as a loop: the slice assignment compiles a
    shape check whose error message alone took 2 s to compile."""
    for k in range(dst.shape[0]):
        dst[k] = src[k]


@njit(**PLAIN_JIT, **NO_REFCOUNT, **INTERNAL)
def begin_epoch(ctl, num, hist, hyper, e):
    """Epoch e's learning rate: into hyper (for the pass) and the history."""
    schedule = ctl[C_SCHEDULE]
    if schedule == SCHED_INV_T:
        num[N_LR] = num[N_LR0] / e
    elif schedule == SCHED_INVSCALING:
        num[N_LR] = num[N_LR0] / np.float64(e) ** num[N_POWER_T]
    hyper[LR] = num[N_LR]
    hist[H_LEARNING_RATE, e - 1] = num[N_LR]


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def set_drop_seed(layout, seed, e):
    """The dropout masks of the pass serving epoch e's updates (a no-op without dropout)."""
    if layout.shape[1] > DROP:
        key = splitmix(np.uint64(seed) ^ DROPOUT_KEY ^ splitmix(np.uint64(e)))
        for l in range(layout.shape[0]):
            layout[l, DROP_SEED] = np.int64(key >> np.uint64(1))


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def epoch_order(ctl, order, given, hashing, e):
    """Put the tuple order of epoch e (see C_ORDER) in `order`, the run's own buffer (copied
    element by element: a view of `given` would cost a reference count per epoch). given:
    the orders drawn in Python (ORDER_GIVEN: the drop-ins' scikit-learn shuffles) or None;
    hashing: None where orders are given (train() passes True). Numba prunes a branch on an
    argument that is None (and only then), so a kernel compiles the copy or the generator,
    as its run needs (the generator: 0.2 s of the digits drop-in program's compile)."""
    kind = ctl[C_ORDER]
    if given is not None:
        if kind == ORDER_GIVEN:
            row = e - ctl[C_ORDERS_FIRST]
            for p in range(order.shape[0]):
                order[p] = given[row, p]
    if hashing is not None:
        if kind == ORDER_HASHED:
            hashed_order(order, ctl[C_SEED], e)


@njit(**PLAIN_JIT, **NO_REFCOUNT, **INTERNAL)
def record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct):
    """The loss and accuracy of a pass (see "whole passes") into the history: the mean over
    its n tuples, with scikit-learn's scale of the data term and its L2 term where asked."""
    loss = num[N_DATA_SCALE] * loss_sum
    if ctl[C_PENALTY]:
        loss += penalty_sum
    hist[H_LOSS, col] = loss / n
    if ctl[C_CLASSIFIER]:
        hist[H_ACCURACY, col] = n_correct / n


@njit(**PLAIN_JIT, **NO_REFCOUNT, **INTERNAL)
def record_evaluation(ctl, hist, col, n, loss_sum, weight_sum, n_correct):
    """The loss and accuracy of the network after the epoch (track="end") into the history,
    as Network.evaluate states them: sum w E / sum w, the fraction right."""
    hist[H_LOSS, col] = loss_sum / weight_sum
    if ctl[C_CLASSIFIER]:
        hist[H_ACCURACY, col] = n_correct / n


@njit(**PLAIN_JIT, **NO_REFCOUNT, **INTERNAL)
def record_validation(ctl, hist, col, n, total, r2_denominator):
    """The validation numbers of one epoch from the chunks' sums (V_* columns): the mean loss,
    the fraction right, and scikit-learn's score: its accuracy, or its R^2 (uniform over the
    outputs, 1 for a perfect fit of a constant, 0 for any other fit of one; NaN when a
    prediction is not finite), as its MLP's _score computes them."""
    hist[H_VAL_LOSS, col] = total[V_LOSS] / total[V_WEIGHT]
    if ctl[C_CLASSIFIER]:
        hist[H_VAL_ACCURACY, col] = total[V_RIGHT] / n
    kind = ctl[C_SCORE]
    score = np.nan
    if kind == SCORE_ACCURACY:
        score = total[V_SK_RIGHT] / total[V_SK_WEIGHT]
    elif kind == SCORE_R2 and total[V_NONFINITE] == 0.0:
        n_out = r2_denominator.shape[0]
        score = 0.0
        for k in range(n_out):
            numerator, denominator = total[V_SQUARED + k], r2_denominator[k]
            if numerator != 0.0 and denominator != 0.0:
                score += 1.0 - numerator / denominator
            elif numerator == 0.0:
                score += 1.0
        score /= n_out
    hist[H_VAL_SCORE, col] = score


@njit(**PLAIN_JIT, **NO_REFCOUNT, **INTERNAL)
def pend(params, layout, ctl, num, alpha, n, loss_sum, weight_sum, n_correct):
    """Keep a full-batch pass's numbers for the epoch whose update follows its gradient:
    n/S sum w E, the L2 term at the weights it ran at, the count right and S."""
    penalty = 0.5 * alpha * squared_weights(params, layout) if alpha != 0.0 else 0.0
    num[N_PEND_LOSS] = n / weight_sum * loss_sum
    num[N_PEND_PENALTY] = n / weight_sum * penalty
    num[N_PEND_CORRECT] = n_correct
    num[N_PEND_WEIGHT] = weight_sum
    ctl[C_PENDING] = 1


@njit(inline="always", **PLAIN_JIT)
def scan_weights(params, prev, record):
    """(every weight finite, the largest |change| since prev); with `record`, prev catches up
    with params (the weight-change history), in the same pass. Inlined into close_epoch."""
    finite = True
    change = 0.0
    if record:
        for k in range(params.shape[0]):
            w = params[k]
            finite = finite and np.isfinite(w)
            change = max(change, np.float64(abs(w - prev[k])))
            prev[k] = w
    else:
        for k in range(params.shape[0]):
            finite = finite and np.isfinite(params[k])
    return finite, change


@njit(inline="always", **PLAIN_JIT)
def end_epoch(ctl, num, hist, e, n, finite, change):
    """Book epoch e, whose history column the run kernel has filled (learning rate, loss,
    accuracy, validation, seconds), and apply the rules: divergence, then the stop rules in
    train()'s order of precedence, then scikit-learn's schedules that follow the loss.
    Returns (whether the run stops here, whether this epoch's weights become the best kept,
    whether the best kept come back), the weights' part left to close_epoch, into which it
    is inlined; ctl[C_STATUS] says why it stops. `finite`: the epoch did not diverge (its
    weights, and under train()'s rule its loss, all finite; see close_epoch); `change`: the
    largest weight change.

    A diverged epoch is not booked (C_EPOCH stays e - 1 and C_DIVERGED_AT says e; Python
    goes back to the last finite epoch), except under scikit-learn's early stopping with a
    best epoch to go back to: it books the epoch (a NaN score, as scikit-learn records) and
    stops, and Python restores the best weights (scikit-learn's issue 29504)."""
    col = e - 1
    loss = hist[H_LOSS, col]
    es = ctl[C_ES_RULE]
    diverged = not finite
    if diverged:
        ctl[C_DIVERGED_AT] = e
        score = hist[H_VAL_SCORE, col]
        if not (es == RULE_SKLEARN and (num[N_BEST_VAL] > -np.inf or score > num[N_BEST_VAL])):
            ctl[C_STATUS] = STOP_DIVERGED
            return True, False, False
    save = restore = False
    ctl[C_EPOCH] = e
    ctl[C_SAMPLES] += n
    if ctl[C_WEIGHT_CHANGE]:
        hist[H_WEIGHT_CHANGE, col] = change
    stop, event = RUNNING, EVENT_NONE
    patience, tol, tol_rule = ctl[C_PATIENCE], num[N_TOL], ctl[C_TOL_RULE]
    if tol_rule == RULE_TRAIN or (tol_rule == RULE_SKLEARN and es != RULE_SKLEARN):
        # no improvement of the training loss by tol (under scikit-learn's early stopping the
        # validation score feeds the counter instead)
        if loss > num[N_BEST_LOSS] - tol:
            ctl[C_NO_IMPROVEMENT] += 1
        else:
            ctl[C_NO_IMPROVEMENT] = 0
        if loss < num[N_BEST_LOSS]:
            num[N_BEST_LOSS] = loss
        if tol_rule == RULE_TRAIN and ctl[C_NO_IMPROVEMENT] > patience:
            stop = STOP_NO_IMPROVEMENT
    if num[N_MIN_WEIGHT_CHANGE] >= 0.0 and change < num[N_MIN_WEIGHT_CHANGE]:
        stop = STOP_WEIGHT_CHANGE
    if num[N_MAX_MISCLASSIFIED] >= 0.0 and 1.0 - hist[H_ACCURACY, col] <= num[N_MAX_MISCLASSIFIED]:
        stop = STOP_MISCLASSIFIED
    if es == RULE_TRAIN:  # the validation loss has not improved by val_tol for `patience` epochs
        val_loss = hist[H_VAL_LOSS, col]
        if val_loss < num[N_BEST_VAL] - num[N_VAL_TOL]:
            ctl[C_STALL] = 0
        else:
            ctl[C_STALL] += 1
        if val_loss < num[N_BEST_VAL]:
            num[N_BEST_VAL] = val_loss
            save = True
            ctl[C_BEST_EPOCH] = e
        if ctl[C_STALL] > patience:
            stop = STOP_EARLY_STOPPING
            restore = True  # the best epoch's weights come back
            ctl[C_PENDING] = 0
    elif es == RULE_SKLEARN:  # the validation score has not improved by tol
        score = hist[H_VAL_SCORE, col]
        if score < num[N_BEST_VAL] + tol:
            ctl[C_NO_IMPROVEMENT] += 1
        else:
            ctl[C_NO_IMPROVEMENT] = 0
        if score > num[N_BEST_VAL]:
            num[N_BEST_VAL] = score
            save = True
            ctl[C_BEST_EPOCH] = e
    if tol_rule == RULE_SKLEARN:  # scikit-learn's iteration_ends, then trigger_stopping
        schedule = ctl[C_SCHEDULE]
        if schedule == SCHED_SAMPLES_INVSCALING:
            num[N_LR] = num[N_LR0] / np.float64(ctl[C_SAMPLES] + 1) ** num[N_POWER_T]
        if ctl[C_NO_IMPROVEMENT] > patience:
            if schedule != SCHED_ADAPTIVE:
                stop, event = STOP_NO_IMPROVEMENT, EVENT_STOP
            elif num[N_LR] <= MIN_ADAPTIVE_RATE:
                stop, event = STOP_NO_IMPROVEMENT, EVENT_LR_TOO_SMALL
            else:
                num[N_LR] /= ADAPTIVE_DIVISOR
                ctl[C_NO_IMPROVEMENT] = 0
                event = EVENT_LR_LOWERED
    hist[H_EVENT, col] = event
    if stop == RUNNING and e >= ctl[C_LAST]:
        stop = STOP_EPOCHS
    if diverged:
        stop = STOP_DIVERGED
    ctl[C_STATUS] = stop
    return stop != RUNNING, save, restore


@njit(inline="always", **JIT)
def predicted_right(act, out, n_out, Y, t, code):
    """1 if scikit-learn's predict gets tuple t right: the first largest softmax output (a NaN
    counts as largest, as in numpy's argmax), or every logistic output above 0.5 exactly
    where its 0/1 target is 1."""
    if code == SOFTMAX:
        best_o = best_t = np.uint64(0)
        for k in range(n_out):
            if act[out + k] != act[out + k]:
                best_o = k
                break
            if act[out + k] > act[out + best_o]:
                best_o = k
        for k in range(n_out):
            if Y[t, k] > Y[t, best_t]:
                best_t = k
        return 1 if best_o == best_t else 0
    half = act.dtype.type(0.5)
    for k in range(n_out):
        if (act[out + k] > half) != (Y[t, k] > 0.5):
            return 0
    return 1


@njit(inline="always", **JIT)
def validate(params, layout, geo, val, codes, ctl, hist, col):
    """Forward passes over the validation tuples, in fixed chunks (prange, inlined as
    gradient_pass is), into history column col (see record_validation).

    val = (X, Y, Y_score, weights, r2_denominator, acts, sums): Y in the network's dtype for
    the loss, Y_score (float64) and weights (empty: all 1) for scikit-learn's score, acts one
    unit buffer per chunk, sums (chunks + 1, V_SQUARED + outputs) float64 scratch."""
    X, Y, Y_score, weights, r2_denominator, acts, sums = val
    n = X.shape[0]
    n_chunks = acts.shape[0]
    last = geo.shape[0] - 1
    out, n_out = geo[last, G_A_OUT], geo[last, G_OUT]
    kind = ctl[C_SCORE]
    for c in prange(n_chunks):
        act = acts[c]
        s = sums[c]
        s[:] = 0.0
        for t in range(n * c // n_chunks, n * (c + 1) // n_chunks):
            for i in range(geo[0, G_IN]):
                act[i] = X[t, i]
            forward(params, layout, geo, act, codes, ZERO, ZERO, ZERO, ZERO)
            s[V_LOSS] += loss_of(act, out, n_out, Y, t, codes, layout)
            s[V_WEIGHT] += 1.0
            s[V_RIGHT] += correct_of(act, out, n_out, Y, t, codes, layout)
            for k in range(n_out):
                if not np.isfinite(act[out + k]):
                    s[V_NONFINITE] = 1.0
            if kind == SCORE_ACCURACY:
                weight = weight_of(weights, t)
                s[V_SK_RIGHT] += weight * sk_correct_of(act, out, n_out, Y_score, t, codes, layout)
                s[V_SK_WEIGHT] += weight
            elif kind == SCORE_R2:
                weight = weight_of(weights, t)
                for k in range(n_out):
                    d = Y_score[t, k] - np.float64(act[out + k])
                    s[V_SQUARED + k] += weight * d * d
    total = sums[n_chunks]
    total[:] = 0.0
    for c in range(n_chunks):  # in chunk order: the same bits on any number of threads
        for k in range(total.shape[0]):
            total[k] += sums[c, k]
    record_validation(ctl, hist, col, n, total, r2_denominator)


@njit(**PLAIN_JIT, **NO_REFCOUNT, **INTERNAL)
def close_epoch(params, ctl, num, hist, prev, best, e, n, also_finite, clock, start):
    """The end of every run kernel's epoch e: the weights checked for finiteness (and the
    weight-change history fed), the rules (end_epoch), the epoch's seconds and the slice's
    time budget (epochs under CLOCK_GROUP_BELOW_NS are timed CLOCK_GROUP at a time).
    also_finite: ONE, or ZERO when something else the epoch needs is not finite (a uint64: a
    literal True would be a signature of its own). Returns (whether the slice stops here, the
    clock at the last reading).

    scan_weights and end_epoch are inlined (so all of it rounds as Python does, PLAIN_JIT):
    as calls, with their arrays' fields passed on the stack, they cost XOR's case updating
    about 13 ns an epoch of 270, and compiled apart they took the digits drop-in 0.2 s longer
    to compile (end_epoch is now compiled once per dtype, with close_epoch, not once for
    all)."""
    finite, change = scan_weights(params, prev, ctl[C_WEIGHT_CHANGE] != 0)
    if ctl[C_LOSS_DIVERGES]:  # train()'s rule: the epoch's loss must be finite too
        finite = finite and also_finite != ZERO and np.isfinite(hist[H_LOSS, e - 1])
    stop, save, restore = end_epoch(ctl, num, hist, e, n, finite, change)
    if save:  # (before restore: an epoch may be kept and stop the run at once)
        copy_into(best, params)
    if restore:
        copy_into(params, best)
    since = ctl[C_CLOCK_FROM]
    if not (stop or e - since >= ctl[C_CLOCK_GROUP] or e >= ctl[C_END]):
        return False, clock  # a short epoch: timed with the next ones (see CLOCK_GROUP)
    now = monotonic_ns()
    each = (now - clock) / (e - since)
    for k in range(since, e):
        hist[H_SECONDS, k] = each * 1e-9
    ctl[C_CLOCK_FROM] = e
    ctl[C_CLOCK_GROUP] = CLOCK_GROUP if each < CLOCK_GROUP_BELOW_NS else 1
    return stop or now - start >= ctl[C_BUDGET_NS], now


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def begin_slice(params, ctl, prev):
    """The weight-change history measures from the weights as the slice finds them (Python
    may have changed them since the last slice: a callback, a restored best epoch); the
    clock is read after the slice's first epoch (see close_epoch)."""
    if ctl[C_WEIGHT_CHANGE]:
        copy_into(prev, params)
    ctl[C_CLOCK_FROM] = ctl[C_EPOCH]
    ctl[C_CLOCK_GROUP] = 1


@njit(**JIT)
def run_case(params, layout, X, Y, weights, codes, optim, run, work, val, evaluation,
             general, dropout, small, large):
    """Case updating, epoch after epoch (see "training runs"). optim = (opt, hyper, state);
    run = (ctl, num, hist, order, orders, prev, best), orders = (given, hashing) as
    epoch_order takes them; work = (act, delta), the pass's unit buffers (act with room for
    the turned output weights, passes.turned_output);
    evaluation: None, or (acts, sums), the track="end" evaluation's. small, large: one is
    set, the other None: the pass is case_pass_small (small True) or its twin compiled for
    the network's shape (small a Shape, see shaped.py), or case_pass (large True: a network
    past SMALL_NETWORK, or dropout).

    Numba prunes a branch guarded by `arg is None` when the argument is None (and only then:
    `True is None` is not pruned), so what is off costs no compile time: a kernel compiles
    only the pass it runs, the evaluation (track="end"), validation, optimizers other than
    plain SGD (general) and dropout only when they are on."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    act, delta = work
    geo = geometry(layout)
    n = X.shape[0]
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        set_drop_seed(layout, ctl[C_SEED], e)
        epoch_order(ctl, order, orders[0], orders[1], e)
        if large is not None:
            loss_sum, penalty_sum, n_correct = case_pass(
                params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                state, general, dropout)
        if small is not None:
            loss_sum, penalty_sum, n_correct = case_pass_of(
                params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                state, general, small)
        if evaluation is not None:  # track="end"
            acts, sums = evaluation
            s, w, c = evaluate_pass(params, layout, geo, X, Y, weights, codes, acts, sums)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            validate(params, layout, geo, val, codes, ctl, hist, col)
        stop, clock = close_epoch(params, ctl, num, hist, prev, best, e, n, ONE, clock, start)
        if stop:
            break


run_case_parallel = twin(run_case, "run_case_parallel", parallel=True, **JIT)


@njit(**JIT)
def run_minibatch(params, layout, X, Y, weights, codes, batch_size, optim, run, work,
                  val, evaluation, dropout, tuples, blocks):
    """Minibatch updating, epoch after epoch. work = (rows, grad, chunk_work, sums): a batch's
    gradient rows and workspaces; evaluation and dropout as in run_case. tuples, blocks: one
    is set, the other None (as run_case's small and large): each batch's gradient tuple by
    tuple (tuples True or a Shape, see gradient_pass) or a block at a time (blocks True)."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    rows, grad, chunk_work, sums = work
    geo = geometry(layout)
    act1, delta1, _ = split_workspace(chunk_work[0], layout)
    n = X.shape[0]
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        set_drop_seed(layout, ctl[C_SEED], e)
        epoch_order(ctl, order, orders[0], orders[1], e)
        if tuples is not None:
            loss_sum, penalty_sum, n_correct = short_minibatch_pass(
                params, layout, geo, act1, delta1, X, Y, weights, order, batch_size, codes, opt,
                hyper, state, grad, dropout, tuples)
        if blocks is not None:
            loss_sum, penalty_sum, n_correct = minibatch_pass(
                params, layout, geo, X, Y, weights, order, batch_size, codes, opt, hyper, state,
                rows, grad, chunk_work, sums, tuples, act1, delta1, dropout)
        if evaluation is not None:  # track="end"
            acts, eval_sums = evaluation
            s, w, c = evaluate_pass(params, layout, geo, X, Y, weights, codes, acts,
                                    eval_sums)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            validate(params, layout, geo, val, codes, ctl, hist, col)
        stop, clock = close_epoch(params, ctl, num, hist, prev, best, e, n, ONE, clock, start)
        if stop:
            break


run_minibatch_parallel = twin(run_minibatch, "run_minibatch_parallel", parallel=True, **JIT)


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def update_from_pending(params, geo, grad, opt, hyper, state, ctl, num, hist, e):
    """Epoch updating's epoch e, first half: the learning rate, and the update along the
    gradient the last pass left in grad (see pend). Returns what that pass reported (its
    loss, L2 term and count right): the epoch's history under track="pass". A call without
    reference counts (see book_full_batch)."""
    begin_epoch(ctl, num, hist, hyper, e)
    passed = (num[N_PEND_LOSS], num[N_PEND_PENALTY], num[N_PEND_CORRECT])
    apply_mean_update(params, grad, state, geo, num[N_PEND_WEIGHT], opt, hyper)
    return passed


@njit(**JIT, **NO_REFCOUNT, **INTERNAL)
def book_full_batch(params, layout, ctl, num, hist, alpha, e, n, passed, s, w, c):
    """Epoch updating's epoch e, second half, after the pass at the new weights, which gave
    (s, w, c) and the next gradient: pend it, and the history (the pass's numbers under
    track="end", the last pass's, `passed`, otherwise). Returns whether the loss at the new
    weights is finite, ONE or ZERO (close_epoch's also_finite: a network that predicts NaN is
    not kept).
    Validation and close_epoch follow in the caller: validate's loop must be a parallel
    kernel's own, and an inlined helper that took the run's arrays counted references to
    them every epoch (a tenth of an XOR epoch)."""
    col = e - 1
    pend(params, layout, ctl, num, alpha, n, s, w, c)
    if ctl[C_TRACK_END]:
        record_pass(ctl, num, hist, col, n, num[N_PEND_LOSS], num[N_PEND_PENALTY],
                    num[N_PEND_CORRECT])
    else:
        record_pass(ctl, num, hist, col, n, passed[0], passed[1], passed[2])
    # (Each term on its own: under fastmath, isfinite(a + b) may fold to True.)
    return ONE if np.isfinite(num[N_PEND_LOSS]) and np.isfinite(num[N_PEND_PENALTY]) else ZERO


@njit(**JIT)
def run_full_batch(params, layout, X, Y, weights, codes, optim, run, work, val, dropout,
                   tuples, blocks):
    """Epoch updating, epoch after epoch: each epoch applies the gradient the previous pass
    left in grad (a first pass makes one when C_PENDING is 0), then passes at the new weights,
    which gives the loss after the epoch (track="end", for free) and the next gradient.
    work = (rows, grad, chunk_work, sums), tuples and blocks as run_minibatch's."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    rows, grad, chunk_work, sums = work
    geo = geometry(layout)
    act1, delta1, _ = split_workspace(chunk_work[0], layout)
    n = X.shape[0]
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        if ctl[C_PENDING] == 0:  # the gradient at the current weights
            set_drop_seed(layout, ctl[C_SEED], e)
            if tuples is not None:
                s, w, c = short_gradient(params, layout, geo, act1, delta1, X, Y, weights,
                                         order, 0, n, codes, grad, dropout, tuples)
            if blocks is not None:
                s, w, c = gradient_pass(params, layout, geo, X, Y, weights, order, 0, n, codes,
                                        rows, grad, chunk_work, sums, tuples, act1, delta1,
                                        dropout)
            pend(params, layout, ctl, num, hyper[ALPHA], n, s, w, c)
        passed = update_from_pending(params, geo, grad, opt, hyper, state, ctl, num, hist, e)
        set_drop_seed(layout, ctl[C_SEED], e + 1)  # this pass serves the next epoch's update
        if tuples is not None:
            s, w, c = short_gradient(params, layout, geo, act1, delta1, X, Y, weights, order, 0,
                                     n, codes, grad, dropout, tuples)
        if blocks is not None:
            s, w, c = gradient_pass(params, layout, geo, X, Y, weights, order, 0, n, codes,
                                    rows, grad, chunk_work, sums, tuples, act1, delta1, dropout)
        also_finite = book_full_batch(params, layout, ctl, num, hist, hyper[ALPHA], e, n, passed,
                                      s, w, c)
        if val is not None:
            validate(params, layout, geo, val, codes, ctl, hist, e - 1)
        stop, clock = close_epoch(params, ctl, num, hist, prev, best, e, n, also_finite, clock,
                                  start)
        if stop:
            break


run_full_batch_parallel = twin(run_full_batch, "run_full_batch_parallel", parallel=True, **JIT)


# -- epoch updating with the passes elsewhere (fastbp.dask_arrays: on a Dask cluster) -------------
# Python runs the epoch loop and the passes; these kernels run the rest of each epoch, with
# run_full_batch's own code, so that a fit on a cluster takes the same steps.

@njit(**JIT)
def pend_given(params, layout, hyper, run, n, s, w, c):
    """Keep a pass's numbers (see pend), for a run whose first pass was made elsewhere."""
    ctl, num = run[0], run[1]
    pend(params, layout, ctl, num, hyper[ALPHA], n, s, w, c)


@njit(**JIT)
def update_given(params, layout, optim, run, grad, e, first):
    """Epoch e's first half (update_from_pending); `first`: the slice starts here (see
    begin_slice). Returns what the last pass reported."""
    ctl, num, hist, _, _, prev, _ = run
    if first:
        begin_slice(params, ctl, prev)
    opt, hyper, state = optim
    return update_from_pending(params, geometry(layout), grad, opt, hyper, state, ctl, num, hist,
                               e)


@njit(**JIT)
def book_given(params, layout, codes, hyper, run, val, e, n, passed, s, w, c, clock, start):
    """Epoch e's second half (book_full_batch), after the pass at the new weights gave
    (s, w, c) and the gradient. Returns (stop, clock)."""
    ctl, num, hist, _, _, prev, best = run
    also_finite = book_full_batch(params, layout, ctl, num, hist, hyper[ALPHA], e, n, passed, s,
                                  w, c)
    if val is not None:
        validate(params, layout, geometry(layout), val, codes, ctl, hist, e - 1)
    return close_epoch(params, ctl, num, hist, prev, best, e, n, also_finite, clock, start)


@njit(**JIT)
def run_rnn(params, rl, X2, Y2, weights, shape, loss_code, batch_size, optim, run, rows, grad,
            val, evaluation):
    """An Elman network's epochs: case updating (batch_size None) or batches of batch_size
    sequences (all of them: epoch updating). shape = (T, per_step, bptt, max_norm): the
    sequences and backpropagation through time; val = (X2, Y2, T, per_step, chunks) or None;
    evaluation: the track="end" evaluation's chunk count, or None.

    As run_case's, what is off is None and compiles nothing: the batch code (and its parallel
    gradient) in case updating, validation, the evaluation. The evaluations run in fixed
    chunks, on threads in the twin run_rnn_parallel (which calls rnn_evaluate instead), which
    runs for large data only (RNN.training_kernel)."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    T, per_step, bptt, max_norm = shape
    n = X2.shape[0] // T
    empty = empty_array(0, weights.dtype)
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        epoch_order(ctl, order, orders[0], orders[1], e)
        if batch_size is None:
            loss_sum, penalty_sum, n_correct = rnn_case_epoch(
                params, rl, X2, Y2, weights, order, T, per_step, bptt, max_norm, loss_code, opt,
                hyper, state)
        if batch_size is not None:
            loss_sum, penalty_sum, n_correct = rnn_batches(
                params, rl, X2, Y2, weights, order, batch_size, T, per_step, bptt, max_norm,
                loss_code, opt, hyper, state, rows, grad)
        if evaluation is not None:  # track="end"
            s, w, c = rnn_evaluate_serial(params, rl, X2, Y2, weights, T, per_step, loss_code,
                                          evaluation)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            Xv, Yv, Tv, per_step_v, val_chunks = val
            nv = Xv.shape[0] // Tv
            s, w, c = rnn_evaluate_serial(params, rl, Xv, Yv, empty, Tv, per_step_v, loss_code,
                                          val_chunks)
            hist[H_VAL_LOSS, col] = s / w
            if ctl[C_CLASSIFIER]:
                hist[H_VAL_ACCURACY, col] = c / nv
        stop, clock = close_epoch(params, ctl, num, hist, prev, best, e, n, ONE, clock, start)
        if stop:
            break


run_rnn_parallel = twin(run_rnn, "run_rnn_parallel", calls={"rnn_evaluate_serial": rnn_evaluate},
                        **JIT)


@njit(**JIT)
def run_batch_norm(params, layout, X, Y, weights, loss_code, batch_size, norm, optim, run, grad,
                   val):
    """A batch-normalised network's epochs in batches of batch_size (all tuples: epoch
    updating). norm = (bn, stats, momentum, eps, bn_off, empty_result); val = (X, Y) or None,
    both evaluated with the running statistics (inference mode)."""
    opt, hyper, state = optim
    ctl, num, hist, order, orders, prev, best = run
    bn, stats, momentum, eps, bn_off, no_result = norm
    n = X.shape[0]
    empty = empty_array(0, weights.dtype)
    begin_slice(params, ctl, prev)
    clock = start = monotonic_ns()
    while ctl[C_EPOCH] < ctl[C_END]:
        e = ctl[C_EPOCH] + 1
        col = e - 1
        begin_epoch(ctl, num, hist, hyper, e)
        epoch_order(ctl, order, orders[0], orders[1], e)
        loss_sum, penalty_sum, n_correct = bn_batches(
            params, layout, bn, stats, X, Y, weights, order, batch_size, loss_code, opt, hyper,
            state, grad, momentum, eps, bn_off)
        if ctl[C_TRACK_END]:
            s, w, c = bn_evaluate(params, layout, bn, stats, X, Y, weights, loss_code, eps,
                                  no_result)
            record_evaluation(ctl, hist, col, n, s, w, c)
        else:
            record_pass(ctl, num, hist, col, n, loss_sum, penalty_sum, n_correct)
        if val is not None:
            Xv, Yv = val
            s, w, c = bn_evaluate(params, layout, bn, stats, Xv, Yv, empty, loss_code, eps,
                                  no_result)
            hist[H_VAL_LOSS, col] = s / w
            if ctl[C_CLASSIFIER]:
                hist[H_VAL_ACCURACY, col] = c / Xv.shape[0]
        stop, clock = close_epoch(params, ctl, num, hist, prev, best, e, n, ONE, clock, start)
        if stop:
            break
