"""The RNN estimators' codec: an RNNClassifier or RNNRegressor, fitted or not, as header
fields and arrays (its constructor parameters; once fitted, its RNN, what fit learnt of the
labels and targets, and the training history), and back, every field checked.

As the drop-ins' codec, it sits below the estimators and never imports them: they register
themselves with it (register_rnn_estimator)."""
import numpy as np

from .._validation import is_int
from ..driver import STOP_NAMES
from .checkpoint import decode_history, encode_history
from .estimator import decode_params, encode_params, estimator_class, register
from .rnn import decode_rnn, encode_rnn


def register_rnn_estimator(cls):
    """Make `cls` (RNNClassifier or RNNRegressor) one that save() writes and load() reads."""
    return register(cls, encode_rnn_estimator, decode_rnn_estimator)


def encode_rnn_estimator(est):
    """(header fields, arrays) of an RNN estimator, fitted or not."""
    fields, arrays = {"params": encode_params(est)}, {}
    if not hasattr(est, "rnn_"):
        return fields, arrays
    net_fields, net_arrays = encode_rnn(est.rnn_)
    history = est.history_
    fitted = {"rnn": net_fields, "n_features_in_": int(est.n_features_in_),
              "n_iter_": int(est.n_iter_),
              "history": {"n_samples": int(history.n_samples), "stopped_by": history.stopped_by,
                          **encode_history(history)}}
    arrays.update({f"rnn.{name}": array for name, array in net_arrays.items()})
    if hasattr(est, "classes_"):
        classes = np.asarray(est.classes_)
        fitted["classes_object"] = classes.dtype == object
        arrays["attr.classes_"] = classes.astype(str) if classes.dtype == object else classes
        fitted["per_step"] = bool(est._per_step)
    else:
        fitted["y_ndim"] = int(est._y_ndim)
    fields["fitted"] = fitted
    return fields, arrays


def decode_rnn_estimator(kind, header, arrays, check):
    """The estimator encode_rnn_estimator described (ModelFileError for anything amiss)."""
    cls = estimator_class(kind)
    est = cls(**decode_params(kind, header, check))
    try:
        est._check_params()
    except (ValueError, TypeError) as error:
        check.fail(f"invalid parameters: {error}")
    if "fitted" not in header:
        if arrays:
            check.fail(f"unexpected arrays {sorted(arrays)}")
        return est  # saved before fitting
    fitted = check.field(header, "fitted", lambda v: isinstance(v, dict), "an object")
    net_fields = check.field(fitted, "rnn", lambda v: isinstance(v, dict), "an object", "fitted")
    net_arrays = {name[4:]: arrays.pop(name) for name in list(arrays) if name.startswith("rnn.")}
    rnn = decode_rnn(net_fields, net_arrays, check)
    if net_arrays:
        check.fail(f"unexpected arrays {sorted('rnn.' + name for name in net_arrays)}")
    n_in, hidden, n_out = rnn.sizes
    est.n_features_in_ = check.field(fitted, "n_features_in_", lambda v: is_int(v) and v == n_in,
                                     f"the RNN's {n_in} inputs", "fitted")
    if est.dtype is not None and np.dtype(est.dtype) != rnn.dtype:
        check.fail(f"the RNN is {rnn.dtype.name}, the parameters say dtype={est.dtype!r}")
    if rnn.targets_ is None:
        check.fail("a fitted estimator's RNN says what it was trained on: 'targets' is null")
    if hidden != est.hidden_size or rnn.activation != est.activation:
        check.fail(f"the RNN {rnn!r} is not one of hidden_size={est.hidden_size}, "
                   f"activation={est.activation!r}")
    est.n_iter_ = check.field(fitted, "n_iter_", lambda v: is_int(v) and 0 <= v < 2 ** 63,
                              "an integer >= 0", "fitted")
    info = check.field(fitted, "history", lambda v: isinstance(v, dict), "an object", "fitted")
    n_samples = check.field(info, "n_samples", lambda v: is_int(v) and 0 <= v < 2 ** 63,
                            "an integer >= 0", "fitted history")
    stopped_by = check.field(info, "stopped_by", lambda v: v in STOP_NAMES or v == "interrupted",
                             "a stop rule's name", "fitted history")
    history = decode_history(info, est.n_iter_, n_samples, rnn.is_classifier, check,
                             "fitted history")
    history.stopped_by = stopped_by
    if kind == "RNNClassifier":
        classes = check.array(arrays, "attr.classes_", "biufU", ndim=1)
        as_object = check.field(fitted, "classes_object", lambda v: isinstance(v, bool), "true or false",
                                "fitted")
        est.classes_ = classes.astype(object) if as_object else classes
        expected = ("logistic", 1) if len(classes) == 2 else ("softmax", len(classes))
        if len(classes) < 2 or len(np.unique(classes)) != len(classes) or \
                (rnn.output_activation, n_out) != expected or rnn.loss != "log_loss":
            check.fail(f"{len(classes)} classes do not fit the RNN {rnn!r}")
        est._per_step = check.field(fitted, "per_step", lambda v: v is (rnn.targets_ == "step"),
                                    f"{str(rnn.targets_ == 'step').lower()}, as the RNN's targets",
                                    "fitted")
    else:
        if rnn.output_activation != "identity" or rnn.loss != "squared_error":
            check.fail(f"an RNNRegressor's RNN has identity outputs and squared error, not {rnn!r}")
        shapes = (3,) if rnn.targets_ == "step" else (1, 2) if n_out == 1 else (2,)
        est._y_ndim = check.field(fitted, "y_ndim", lambda v: is_int(v) and v in shapes,
                                  f"one of {shapes} for the RNN's {n_out} outputs per "
                                  f"{rnn.targets_}", "fitted")
    if arrays:
        check.fail(f"unexpected arrays {sorted(arrays)}")
    est.rnn_, est.history_ = rnn, history
    est.loss_curve_ = list(history.loss)
    est.loss_ = history.loss[-1] if history.loss else float("nan")
    return est
