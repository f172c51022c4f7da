"""The checkpoint codec: a training run's state (the network, the optimizer's arrays, the
run's seed and rule counters, the history) as an archive train() can resume from bit for bit.
fastbp.load reads a checkpoint's network like a saved one."""
from .. import _kernels as K
from .._validation import is_int, is_number
from ..driver import CHECKPOINT_COUNTERS, CHECKPOINT_VALUES, SERIES, History
from ..rnn import RNN
from .archive import Checker, header, read_archive, write_archive
from .network import decode_network, encode_network
from .rnn import decode_rnn, encode_rnn

CHECKPOINT_VERSION = 2  # 2: runs keyed by a seed (tuple orders from (seed, epoch)), not a generator


def save_checkpoint(path, run):
    """The network after the run's last booked epoch, with all train() needs to go on."""
    net, trainer, history = run.net, run.trainer, run.history
    fields, arrays = encode_model(net)
    stopped_by = "" if history.stopped_by == "interrupted" else run.status
    fields["checkpoint"] = {
        "version": CHECKPOINT_VERSION, "epoch": run.epoch, "mode": trainer.mode,
        "optimizer": trainer.optimizer, "batch_size": trainer.batch_size,
        "n_samples": history.n_samples, "stopped_by": stopped_by,
        **{name: int(run.ctl[slot]) for name, slot in CHECKPOINT_COUNTERS.items()},
        **{name: float(run.num[slot]) for name, slot in CHECKPOINT_VALUES.items()},
        "history": {name: [float(v) for v in getattr(history, name)] for name in SERIES}}
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
    counters = {name: check.field(info, name, lambda v: is_int(v) and v >= 0,
                                  "an integer >= 0", "checkpoint") for name in CHECKPOINT_COUNTERS}
    if counters["seed"] >= 2 ** 63:
        check.fail("checkpoint seed must be below 2**63")
    values = {name: check.field(info, name, is_number, "a number", "checkpoint")
              for name in CHECKPOINT_VALUES}
    lists = check.field(info, "history", lambda v: isinstance(v, dict), "an object", "checkpoint")
    series = {}
    for name in SERIES:
        values_ = check.field(lists, name, lambda v: isinstance(v, list) and all(
            is_number(x) for x in v), "a list of numbers", "checkpoint history")
        optional = name.startswith("val_") or (name == "accuracy" and not net.is_classifier)
        if len(values_) != epoch and not (optional and not values_):
            check.fail(f"checkpoint history {name!r} has {len(values_)} entries for {epoch} epochs")
        series[name] = [float(v) for v in values_]
    stopped_by = check.field(info, "stopped_by", lambda v: v in K.STOP_NAMES, "a stop rule's name",
                             "checkpoint")
    hyper = check.array(arrays, "trainer.hyper", "f", shape=trainer.hyper.shape)
    state = check.array(arrays, "trainer.state", "f", shape=trainer.state.shape)
    best = check.array(arrays, "run.best", "f", shape=(net.n_params,)) if "run.best" in arrays else None
    if arrays:
        check.fail(f"unexpected arrays {sorted(arrays)}")
    history = History(n_samples, accuracy=net.is_classifier,
                      validation=bool(series["val_loss"]))
    history._set(series)
    return dict(saved=saved, hyper=hyper, state=state, best=best, counters=counters,
                values=values, stopped_by=stopped_by, history=history, seed=counters["seed"])


def encode_model(net):
    """(header fields, arrays) of the network a checkpoint holds: a Network, or an RNN
    (field model="RNN")."""
    if isinstance(net, RNN):
        fields, arrays = encode_rnn(net)
        return dict(fields, model="RNN"), arrays
    return encode_network(net)


def decode_model(head, arrays, check):
    """The network of a checkpoint's header and arrays (see encode_model)."""
    model = check.field(head, "model", lambda v: v in ("Network", "RNN"), "'Network' or 'RNN'") \
        if "model" in head else "Network"
    return decode_rnn(head, arrays, check) if model == "RNN" else decode_network(head, arrays, check)


def _described(net):
    return (type(net).__name__, net.sizes, net.activation, net.output_activation, net.loss,
            net.dtype, getattr(net, "batch_norm", False))
