"""The checkpoint codec: a training run's state (the network, the optimizer's arrays, the
run's seed and rule counters, the history) as an archive train() can resume from bit for bit.
fastbp.load reads a checkpoint's network like a saved one."""
from .. import _kernels as K
from .._validation import is_int, is_number
from ..driver import CHECKPOINT_COUNTERS, CHECKPOINT_VALUES, SERIES, History
from . import models
from .archive import Checker, header, read_archive, write_archive

CHECKPOINT_VERSION = 2  # 2: runs keyed by a seed (tuple orders from (seed, epoch)), not a generator


def save_checkpoint(path, run):
    """The network after the run's last booked epoch, with all train() needs to go on."""
    net, trainer, history = run.net, run.trainer, run.history
    fields, arrays = encode_model(net)
    stopped_by = "" if history.stopped_by == "interrupted" else run.status
    fields["checkpoint"] = {
        "version": CHECKPOINT_VERSION, "epoch": run.epoch, "mode": trainer.mode,
        "optimizer": trainer.optimizer, "batch_size": trainer.batch_size,
        "n_samples": history.n_samples, "stopped_by": stopped_by, "settings": run_settings(run),
        **{name: int(run.ctl[slot]) for name, slot in CHECKPOINT_COUNTERS.items()},
        **{name: float(run.num[slot]) for name, slot in CHECKPOINT_VALUES.items()},
        "history": encode_history(history)}
    arrays["trainer.hyper"] = trainer.hyper
    arrays["trainer.state"] = trainer.state
    if run.best.size:
        arrays["run.best"] = run.best
    write_archive(path, header("checkpoint", **fields), arrays)


def read_checkpoint(path, net, trainer, n_samples):
    """The checkpoint at `path`, checked against this network and call (nothing changed yet):
    a dict of what Run.resume needs."""
    head, arrays = read_archive(path, kinds=("checkpoint",))
    check = Checker(path)
    saved = decode_model(head, arrays, check)
    if _described(saved) != _described(net):
        raise ValueError(f"checkpoint {path} holds {saved!r}, which is not this network {net!r}")
    info = check.field(head, "checkpoint", lambda v: isinstance(v, dict), "an object")
    if info.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} was written by an older fastbp, whose shuffles "
                         "this version does not repeat; start the training anew")
    for key, value in (("mode", trainer.mode), ("optimizer", trainer.optimizer),
                       ("batch_size", trainer.batch_size), ("n_samples", n_samples)):
        if info.get(key) != value:
            raise ValueError(f"checkpoint {path} was written with {key}={info.get(key)!r}; this "
                             f"call has {key}={value!r}")
    epoch = check.field(info, "epoch", lambda v: is_int(v) and v >= 0, "an integer >= 0", "checkpoint")
    counters = {name: check.field(info, name, lambda v: is_int(v) and 0 <= v < 2 ** 63,
                                  "an integer in 0 .. 2**63-1", "checkpoint")
                for name in CHECKPOINT_COUNTERS}
    values = {name: check.field(info, name, is_number, "a number", "checkpoint")
              for name in CHECKPOINT_VALUES}
    lists = check.field(info, "history", lambda v: isinstance(v, dict), "an object", "checkpoint")
    history = decode_history(lists, epoch, n_samples, net.is_classifier, check, "checkpoint history")
    stopped_by = check.field(info, "stopped_by", lambda v: v in K.STOP_NAMES, "a stop rule's name",
                             "checkpoint")
    hyper = check.array(arrays, "trainer.hyper", "f", shape=trainer.hyper.shape)
    state = check.array(arrays, "trainer.state", "f", shape=trainer.state.shape)
    best = check.array(arrays, "run.best", "f", shape=(net.n_params,)) if "run.best" in arrays else None
    if arrays:
        check.fail(f"unexpected arrays {sorted(arrays)}")
    settings = info.get("settings")
    if settings is not None and not isinstance(settings, dict):
        check.fail("checkpoint settings must be an object")
    return dict(saved=saved, hyper=hyper, state=state, best=best, counters=counters,
                settings=settings,
                values=values, stopped_by=stopped_by, history=history, seed=counters["seed"])


def encode_history(history):
    """A history's per-epoch series as JSON lists (what the run did not keep: empty)."""
    return {name: [float(v) for v in getattr(history, name)] for name in SERIES}


def decode_history(lists, n_epochs, n_samples, is_classifier, check, where):
    """The History of encode_history's lists, each checked: n_epochs numbers, or none for
    what such a run does not keep (a regressor's accuracy, validation without validation
    data), so that no series is read from an unwritten buffer."""
    series = {name: check.field(lists, name, lambda v: isinstance(v, list) and all(
        is_number(x) for x in v), "a list of numbers", where) for name in SERIES}
    validated = bool(series["val_loss"])
    for name, values in series.items():
        kept = (validated or not name.startswith("val_")) and (is_classifier or "accuracy" not in name)
        if len(values) != (n_epochs if kept else 0):
            check.fail(f"{where} {name!r} has {len(values)} entries for {n_epochs} epochs")
    history = History(n_samples, accuracy=is_classifier, validation=validated)
    history._set({name: [float(x) for x in values] for name, values in series.items()})
    return history


def encode_model(net):
    """(header fields, arrays) of the network a checkpoint holds, its kind in the field
    "model" (a checkpoint without one holds a Network)."""
    kind, fields, arrays = models.encode_model(net)
    return dict(fields, model=kind), arrays


def decode_model(head, arrays, check):
    """The network of a checkpoint's header and arrays (see encode_model)."""
    kind = check.field(head, "model", lambda v: v in models.CODECS, f"one of {list(models.CODECS)}") \
        if "model" in head else "Network"
    return models.decode_model(kind, head, arrays, check)


def _described(net):
    return (type(net).__name__, net.sizes, net.activation, net.output_activation, net.loss,
            net.dtype, getattr(net, "batch_norm", False))


# The optimizer's settings a resumed run must share with the checkpoint's (hyper's slots,
# by train()'s names; the learning rate and Adam's step are the run's own state).
_HYPER_SETTINGS = {"momentum": K.MOMENTUM, "nesterov": K.NESTEROV, "alpha": K.ALPHA,
                   "beta_1": K.BETA_1, "beta_2": K.BETA_2, "epsilon": K.EPSILON,
                   "rprop_increase_factor": K.RPROP_INCREASE,
                   "rprop_decrease_factor": K.RPROP_DECREASE, "rprop_delta_min": K.RPROP_DELTA_MIN,
                   "rprop_delta_max": K.RPROP_DELTA_MAX, "quickprop_decay": K.QUICKPROP_DECAY,
                   "quickprop_mu": K.QUICKPROP_MU}
_SCHEDULE_NAMES = {K.SCHED_CONSTANT: "constant", K.SCHED_INV_T: "1/t",
                   K.SCHED_INVSCALING: "invscaling", K.SCHED_GIVEN: "a callable"}


# The settings that only decide when a run stops: a resumed run may change them (as it may
# change `epochs`) to train on past where the old ones stopped it.
STOP_RULE_SETTINGS = {"no_improvement": ("tol", "n_iter_no_change"),
                      "misclassified": ("max_misclassified",),
                      "weight_change": ("min_weight_change",)}


def run_settings(run):
    """What makes a run the run it is, beyond its mode, optimizer, batch size, data and the
    optimizer's parameters (checked apart): the learning rate and its schedule, the shuffles,
    validation and early stopping, the history's kind, dropout, BPTT, and the stop rules'
    thresholds (kept, not required to match), as JSON values by train()'s names."""
    rules, trainer = run.rules, run.trainer
    return {
        "learning_rate": float(run.num[K.N_LR0]),
        "schedule": _SCHEDULE_NAMES.get(int(run.ctl[K.C_SCHEDULE]), "scikit-learn's"),
        "power_t": float(run.num[K.N_POWER_T]),
        "shuffle": bool(run.ctl[K.C_ORDER] != K.ORDER_NATURAL),
        "validation": run.validation is not None, "early_stopping": rules.early_stopping,
        "track": "end" if rules.track_end else "pass", "dropout": trainer.dropout,
        "bptt_steps": int(trainer.bptt), "clip_norm": float(trainer.max_norm),
        "tol": rules.tol, "n_iter_no_change": rules.n_iter_no_change,
        "max_misclassified": rules.max_misclassified, "min_weight_change": rules.min_weight_change,
    }


def check_same_run(path, run, resumed):
    """ValueError naming the first setting in which this call differs from the run the
    checkpoint holds, before anything changes; the stop rules' thresholds may differ
    (STOP_RULE_SETTINGS). Checkpoints written before fastbp kept the settings pass."""
    def refuse(name, saved, value):
        raise ValueError(
            f"checkpoint {path} continues a run trained with {name}={saved!r}; this call has "
            f"{name}={value!r}. Resume with the run's own settings (only `epochs` and the stop "
            "rules' thresholds may change), or start anew with resume=False.")

    for name, slot in _HYPER_SETTINGS.items():  # the optimizer's, against its saved array
        saved, value = float(resumed["hyper"][slot]), float(run.trainer.hyper[slot])
        if saved != value:
            refuse(name, saved, value)
    saved = resumed.get("settings")
    if saved is None:
        return
    thresholds = {name for names in STOP_RULE_SETTINGS.values() for name in names}
    for name, value in run_settings(run).items():
        if name in saved and name not in thresholds and saved[name] != value:
            refuse(name, saved[name], value)


def stop_rule_changed(run, resumed):
    """Whether this call changed a threshold of the rule that stopped the checkpoint's run."""
    saved = resumed.get("settings") or {}
    current = run_settings(run)
    return any(name in saved and saved[name] != current[name]
               for name in STOP_RULE_SETTINGS.get(resumed["stopped_by"], ()))
