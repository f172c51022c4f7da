"""The estimator codec: a fastbp MLPClassifier or MLPRegressor, fitted or not, as header
fields and arrays (its constructor parameters, its fitted attributes, its trainer's state),
and back, every field checked.

The codec sits below the estimators in fastbp's layers and never imports them: the
estimator classes register themselves here when they are defined (register), and the
package's top level finds a class that is not registered yet by its name (find_class, set
by fastbp/__init__.py), so that fastbp.load reads a saved estimator in a process that has
not touched the estimators.
"""
from numbers import Integral

import numpy as np

from .. import _kernels as K
from .._validation import is_int, is_number, short_repr
from ..driver import MODES, Trainer
from ..network import DTYPES
from .archive import decode_rng, encode_rng

_CLASSES = {}  # kind -> (class, encode, decode)
find_class = None  # kind -> class, set by the package: importing the class registers it


def register(cls, encode=None, decode=None):
    """Make `cls` (a fastbp estimator class) one that save() writes and load() reads, under
    its class name, with the codec (encode, decode): the MLP drop-ins' below by default."""
    _CLASSES[cls.__name__] = (cls, encode, decode)
    return cls


def estimator_classes():
    """The registered estimator classes (a tuple for isinstance)."""
    return tuple(entry[0] for entry in _CLASSES.values())


def estimator_class(kind):
    if kind not in _CLASSES and find_class is not None:
        find_class(kind)
    return _CLASSES[kind][0]


def estimator_codec(kind):
    """(encode, decode) of a registered estimator kind."""
    estimator_class(kind)
    _, encode, decode = _CLASSES[kind]
    return encode or encode_estimator, decode or decode_estimator


def encode_params(est):
    """An estimator's constructor parameters as JSON values; TypeError for what cannot be
    stored without pickle."""
    params = {}
    for name, value in est.get_params(deep=False).items():
        if name == "random_state" and isinstance(value, np.random.RandomState):
            value = {"rng": encode_rng(value)}
        elif name == "hidden_layer_sizes":
            value = [int(v) for v in np.atleast_1d(value)] if not isinstance(value, Integral) else int(value)
        elif name == "dtype" and value is not None:
            value = np.dtype(value).name
        elif name == "class_weight" and isinstance(value, dict):  # JSON keys are strings only
            value = {"items": [[k.item() if isinstance(k, np.generic) else k, float(v)]
                               for k, v in value.items()]}
        elif isinstance(value, np.generic):
            value = value.item()
        if value is not None and not isinstance(value, (bool, int, float, str, list, dict)):
            raise TypeError(f"cannot save parameter {name}={value!r} without pickle")
        params[name] = value
    return params


def decode_params(kind, header, check):
    """The constructor parameters encode_params stored, checked to be this kind's."""
    params = check.field(header, "params", lambda v: isinstance(v, dict), "an object")
    known = estimator_class(kind)().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        check.fail(f"unknown {kind} parameters {unknown}")
    params = dict(params)
    if isinstance(params.get("random_state"), dict):
        params["random_state"] = decode_rng(params["random_state"].get("rng"), check, "random_state")
    if isinstance(params.get("class_weight"), dict):
        items = params["class_weight"].get("items")
        if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
            check.fail("class_weight must be a list of [class, weight] pairs")
        if not all(isinstance(k, (str, int, float)) and is_number(v) for k, v in items):
            check.fail("class_weight must pair class labels (strings or numbers) with numbers")
        params["class_weight"] = {k: v for k, v in items}
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return params


# What a fitted estimator holds beyond its constructor parameters, by how it is stored: JSON
# scalars in the header, arrays and lists of arrays as archive entries.
_INT_ATTRS = ("n_features_in_", "n_outputs_", "n_iter_", "t_", "n_layers_", "_no_improvement_count")
_FLOAT_ATTRS = ("loss_", "best_loss_", "best_validation_score_", "_learning_rate")
_ARRAY_ATTRS = ("classes_", "feature_names_in_")
_ARRAY_LIST_ATTRS = ("coefs_", "intercepts_", "_best_coefs", "_best_intercepts")
_FLOAT_LIST_ATTRS = ("loss_curve_", "validation_scores_", "validation_loss_curve_")
_FITTED = set(_INT_ATTRS + _FLOAT_ATTRS + _ARRAY_ATTRS + _ARRAY_LIST_ATTRS + _FLOAT_LIST_ATTRS
              + ("out_activation_", "_random_state", "_label_binarizer", "_trainer"))


def encode_estimator(est):
    """(header fields, arrays) of a fastbp estimator, fitted or not; TypeError for what
    cannot be stored without pickle."""
    params = encode_params(est)
    attributes, arrays = {}, {}
    state = est.__getstate__()
    set_by_constructor = vars(type(est)())  # e.g. the classifier's fixed loss="log_loss"
    for name, value in state.items():
        if name in params or name in set_by_constructor:
            continue
        if name not in _FITTED:
            raise TypeError(f"cannot save attribute {name} of {type(est).__name__} without pickle")
        if value is None:
            attributes[name] = None
        elif name in _INT_ATTRS:
            attributes[name] = int(value)
        elif name in _FLOAT_ATTRS:
            attributes[name] = float(value)
        elif name == "out_activation_":
            attributes[name] = str(value)
        elif name in _ARRAY_ATTRS:
            value = np.asarray(value)
            as_object = value.dtype == object
            if as_object:
                value = value.astype(str)
            arrays[f"attr.{name}"] = value
            attributes[name] = {"array": f"attr.{name}", "object": as_object}
        elif name in _ARRAY_LIST_ATTRS:
            for i, array in enumerate(value):
                arrays[f"attr.{name}.{i}"] = np.asarray(array)
            attributes[name] = {"arrays": len(value)}
        elif name in _FLOAT_LIST_ATTRS:
            arrays[f"attr.{name}"] = np.asarray(value, dtype=np.float64).reshape(-1)
            attributes[name] = {"floats": f"attr.{name}"}
        elif name == "_random_state":
            attributes[name] = {"rng": encode_rng(value)}
        elif name == "_label_binarizer":
            arrays["attr._label_binarizer.classes_"] = np.asarray(value.classes_)
            attributes[name] = {"y_type_": value.y_type_, "sparse_input_": bool(value.sparse_input_),
                                "neg_label": int(value.neg_label), "pos_label": int(value.pos_label),
                                "sparse_output": bool(value.sparse_output)}
        elif name == "_trainer":
            arrays["attr._trainer.hyper"] = value.hyper
            arrays["attr._trainer.state"] = value.state
            attributes[name] = {"mode": value.mode, "batch_size": int(value.batch_size),
                                "optimizer": value.optimizer}
    fields = {"params": params, "attributes": attributes}
    if "coefs_" in state:  # the network, as a Network's file describes it (checked on loading)
        net = est._network()
        fields.update(sizes=list(net.sizes), activation=net.activation,
                      output_activation=net.output_activation, loss=net.loss, dtype=net.dtype.name)
    return fields, arrays


def decode_estimator(kind, header, arrays, check):
    """The estimator encode_estimator described, every field checked (ModelFileError otherwise)."""
    from sklearn.base import is_classifier
    from sklearn.preprocessing import LabelBinarizer

    cls = estimator_class(kind)
    params = decode_params(kind, header, check)
    est = cls(**params)
    try:
        est._validate_params()
        if est.dtype is not None:
            est._fastbp_dtype(np.empty(0))
    except (ValueError, TypeError) as error:
        check.fail(f"invalid parameters: {error}")
    attributes = check.field(header, "attributes", lambda v: isinstance(v, dict), "an object")
    unknown = sorted(set(attributes) - _FITTED)
    if unknown:
        check.fail(f"unknown fitted attributes {unknown}")
    if not attributes:
        if arrays:
            check.fail(f"unexpected arrays {sorted(arrays)}")
        return est  # saved before fitting

    def spec(name, test, what):
        return check.field(attributes, name, test, what, where="attributes")

    def optional(name, test, what):
        if name in attributes and attributes[name] is not None:
            setattr(est, name, spec(name, test, what))

    for name in ("n_features_in_", "n_outputs_", "n_iter_", "n_layers_"):
        least = 2 if name == "n_layers_" else 0
        setattr(est, name, spec(name, lambda v, least=least: is_int(v) and least <= v < 2 ** 63,
                                "a non-negative integer"))
    est.out_activation_ = spec("out_activation_", lambda v: v in ("identity", "logistic", "softmax", "exp"),
                               "an output activation")
    for name in _INT_ATTRS:
        if name in attributes and not hasattr(est, name):
            optional(name, lambda v: is_int(v) and 0 <= v < 2 ** 63, "a non-negative integer")
    for name in _FLOAT_ATTRS:
        if name in attributes:
            value = attributes[name]
            if value is not None and not is_number(value):
                check.fail(f"attributes field {name!r} must be a number or null, got {value!r}")
            setattr(est, name, None if value is None else float(value))

    for name in _ARRAY_LIST_ATTRS:
        if name not in attributes:
            continue
        length = spec(name, lambda v: isinstance(v, dict) and isinstance(v.get("arrays"), int)
                      and not isinstance(v.get("arrays"), bool) and 1 <= v["arrays"] <= 1000,
                      "a list of arrays")["arrays"]
        setattr(est, name, [check.array(arrays, f"attr.{name}.{i}", "f", ndim=2 if "coefs" in name else 1)
                            for i in range(length)])
    if "coefs_" not in attributes or "intercepts_" not in attributes:
        check.fail("attributes lack coefs_ or intercepts_")
    coefs, intercepts = est.coefs_, est.intercepts_
    if len(coefs) != est.n_layers_ - 1 or len(intercepts) != len(coefs):
        check.fail(f"{len(coefs)} coefs_ and {len(intercepts)} intercepts_ for n_layers_={est.n_layers_}")
    dtypes = {a.dtype for a in coefs + intercepts}
    if len(dtypes) != 1 or dtypes.pop() not in DTYPES:
        check.fail("coefs_ and intercepts_ must all be float32 or all float64")
    sizes = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
    for l, (c, b) in enumerate(zip(coefs, intercepts)):
        if c.shape != (sizes[l], sizes[l + 1]) or b.shape != (sizes[l + 1],):
            check.fail(f"layer {l}: coefs_ {c.shape} and intercepts_ {b.shape} do not chain")
    if sizes[0] != est.n_features_in_ or sizes[-1] != est.n_outputs_:
        check.fail(f"layer sizes {sizes} do not match n_features_in_={est.n_features_in_} and "
                   f"n_outputs_={est.n_outputs_}")
    hidden = list(np.atleast_1d(est.hidden_layer_sizes))
    if sizes[1:-1] != hidden:
        check.fail(f"hidden layer sizes {sizes[1:-1]} differ from hidden_layer_sizes={hidden}")
    for best, real in (("_best_coefs", coefs), ("_best_intercepts", intercepts)):
        if hasattr(est, best) and [a.shape for a in getattr(est, best)] != [a.shape for a in real]:
            check.fail(f"{best} do not have the shapes of the weights")

    for name in _FLOAT_LIST_ATTRS:
        if name in attributes:
            if attributes[name] is None:
                setattr(est, name, None)
                continue
            spec(name, lambda v: isinstance(v, dict) and isinstance(v.get("floats"), str), "a list of numbers")
            values = check.array(arrays, f"attr.{name}", "f", ndim=1)
            setattr(est, name, [float(v) for v in values] if name == "validation_scores_" else list(values))
    for name in _ARRAY_ATTRS:
        if name in attributes:
            info = spec(name, lambda v: isinstance(v, dict) and isinstance(v.get("object"), bool), "an array")
            value = check.array(arrays, f"attr.{name}", "biufU", ndim=1)
            setattr(est, name, value.astype(object) if info["object"] else value)
    if hasattr(est, "feature_names_in_") and (est.feature_names_in_.dtype != object
                                              or len(est.feature_names_in_) != est.n_features_in_):
        check.fail(f"feature_names_in_ must be {est.n_features_in_} strings")
    if "_random_state" in attributes:
        est._random_state = decode_rng(spec("_random_state", lambda v: isinstance(v, dict), "an object")
                                       .get("rng"), check, "_random_state")

    if is_classifier(est):
        if "classes_" not in attributes or "_label_binarizer" not in attributes:
            check.fail("a classifier needs classes_ and _label_binarizer")
        info = spec("_label_binarizer", lambda v: isinstance(v, dict) and v.get("y_type_") in
                    ("binary", "multiclass", "multilabel-indicator"), "a label binarizer")
        lb = LabelBinarizer(neg_label=0, pos_label=1, sparse_output=False)
        lb.classes_ = check.array(arrays, "attr._label_binarizer.classes_", "biufU", ndim=1)
        lb.y_type_, lb.sparse_input_ = info["y_type_"], bool(info.get("sparse_input_", False))
        if not np.array_equal(lb.classes_, est.classes_):
            check.fail("the label binarizer's classes differ from classes_")
        n_classes = len(est.classes_)
        expected = 1 if lb.y_type_ == "binary" else n_classes
        if n_classes < 2 or est.n_outputs_ != expected or (lb.y_type_ == "binary" and n_classes != 2):
            check.fail(f"{n_classes} classes ({lb.y_type_}) do not fit {est.n_outputs_} output units")
        est._label_binarizer = lb
    elif "classes_" in attributes or "_label_binarizer" in attributes:
        check.fail("a regressor has no classes")

    if is_classifier(est):
        expected_out = "softmax" if est._label_binarizer.y_type_ == "multiclass" else "logistic"
    else:
        expected_out = "exp" if est.loss == "poisson" else "identity"
    if est.out_activation_ != expected_out:
        check.fail(f"out_activation_ {est.out_activation_!r} is not the {expected_out!r} this "
                   f"{kind} uses")
    try:
        est._bind_network()  # checks the activations, the loss and that every weight is finite
    except (ValueError, TypeError) as error:
        check.fail(error)
    net = est._net
    described = {key: header.get(key) for key in ("sizes", "activation", "output_activation", "loss", "dtype")}
    actual = dict(sizes=list(net.sizes), activation=net.activation,
                  output_activation=net.output_activation, loss=net.loss, dtype=net.dtype.name)
    if described != actual:
        check.fail(f"the header describes the network {described}, the fitted attributes make {actual}")
    if "_trainer" in attributes:
        info = spec("_trainer", lambda v: isinstance(v, dict), "an object")
        optimizer, mode, batch_size = info.get("optimizer"), info.get("mode"), info.get("batch_size")
        if not (isinstance(optimizer, str) and optimizer in K.OPTIMIZERS and isinstance(mode, str)
                and mode in MODES and is_int(batch_size) and 1 <= batch_size < 2 ** 63):
            check.fail(f"invalid trainer {short_repr(info)}")
        hyper = check.array(arrays, "attr._trainer.hyper", "f", shape=(K.N_HYPER,))
        state = check.array(arrays, "attr._trainer.state", "f",
                            shape=(K.STATE_ROWS[K.OPTIMIZERS[optimizer]], est._net.n_params))
        if hyper.dtype != np.float64 or state.dtype != est._net.dtype:
            check.fail("the trainer's arrays have the wrong dtype")
        try:
            trainer = Trainer(est._net, mode=mode, batch_size=batch_size, optimizer=optimizer)
        except (ValueError, TypeError) as error:  # e.g. a batch-only optimizer in case mode
            check.fail(f"invalid trainer {short_repr(info)}: {error}")
        trainer.hyper[:] = hyper
        trainer.state[:] = state
        est._trainer = trainer
    if arrays:
        check.fail(f"unexpected arrays {sorted(arrays)}")
    return est
