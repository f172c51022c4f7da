"""`fastbp train`, `fastbp predict` and `fastbp compile`, and the model
files `train` writes and `predict` reads (fastbp.io's format plus the table's metadata)."""
import csv
import sys
from pathlib import Path

import numpy as np

from .. import datasets, io
from .._validation import is_int, is_number, short_repr
from ..network import Network
from ._common import (
    MODE_DEFAULTS,
    UsageError,
    _percent,
    _result_line,
    _timed_train,
    _warm_up,
    _write_plot,
    check_output_path,
    check_plot_path,
)
from .data import _label_list, _load_table, _resolve_task

# -- compile -----------------------------------------------------------------------------------
COMPILE_SECONDS_HERE = 72  # `fastbp compile` on an empty cache, 2-core test machine (README)


def run_compile(args):
    import shutil

    from .._compile import compile_all
    from .._kernels._cache import cache_dir
    where = cache_dir()
    if args.where:
        print(where)
        return 0
    if args.clear:
        shutil.rmtree(where, ignore_errors=True)
        print(f"removed {where}")
        return 0
    print(f"compiling fastbp's common kernels into {where}")
    seconds = compile_all(args.jobs)
    print(f"done in {seconds:.1f} s")
    return 0


# -- train -------------------------------------------------------------------------------------
def _targets(task, y, args, dtype):
    """What the network is trained to output for target y: (Y, output_activation, loss,
    labels to stratify the split by or None, metadata: class labels)."""
    if task == "regression":
        output = "identity" if args.output_activation == "auto" else args.output_activation
        loss = "squared_error" if args.loss == "auto" else args.loss
        if output != "identity" or loss != "squared_error":
            raise UsageError("regression needs --output-activation identity and --loss squared_error, "
                             f"got {output} and {loss}")
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1), output, loss, None, {}

    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise UsageError(f"the target has only one class ({_label_list(classes)[0]!r}); "
                         "classification needs at least 2")
    output = args.output_activation
    if output == "auto":  # as scikit-learn's MLPClassifier: one logistic unit for two classes
        output = "logistic" if len(classes) == 2 else "softmax"
    if output == "identity":
        raise UsageError("classification needs --output-activation logistic or softmax, not identity")
    loss = "log_loss" if args.loss == "auto" else args.loss
    if len(classes) == 2 and output == "logistic":
        Y = codes.reshape(-1, 1).astype(dtype)
    else:
        Y = datasets.one_hot(codes, len(classes), dtype=dtype)
    return Y, output, loss, codes, {"classes": _label_list(classes)}


def _split(n_rows, test_fraction, seed, stratify):
    """(train rows, test rows, how they were drawn): stratified by class when possible."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n_rows)
    if test_fraction == 0:
        return rows, rows[:0], "no test set"
    if stratify is not None:
        try:
            return (*train_test_split(rows, test_size=test_fraction, random_state=seed,
                                      stratify=stratify), "stratified")
        except ValueError:  # a class with too few rows to be in both parts
            pass
    try:
        train_rows, test_rows = train_test_split(rows, test_size=test_fraction, random_state=seed)
    except ValueError as error:
        raise UsageError(f"cannot hold out --test-fraction {test_fraction} of {n_rows} rows: "
                         f"{error}") from None
    return train_rows, test_rows, "random" if stratify is None else "random: a class is too small to stratify"


def run_train(args):
    out = Path(args.out) if args.out else Path(args.file).with_suffix(".fastbp.npz")
    check_output_path(out, "--out")  # before any training, as is the plot's
    args.plot = check_plot_path(args.plot)
    dtype = np.dtype(args.dtype)
    X, y, feature_names, target_name, target_index = _load_table(args.file, args.target)
    n_rows = X.shape[0]
    if n_rows < 2:
        raise UsageError(f"{args.file}: need at least 2 rows to train, got {n_rows}")
    task = _resolve_task(args.task, y)
    Y, output, loss, stratify, classes = _targets(task, y, args, dtype)
    n_outputs = Y.shape[1]
    meta = dict({"task": task, "feature_names": feature_names, "target": target_name,
                 "target_index": target_index, "classes": None, "y_mean": None, "y_std": None},
                **classes)
    train_rows, test_rows, split_note = _split(n_rows, args.test_fraction, args.seed, stratify)

    X_train, X_test = X[train_rows], X[test_rows]
    if args.standardize:
        X_train, x_mean, x_std = datasets.standardize(X_train, return_stats=True)
        if len(test_rows):
            X_test = datasets.standardize(X_test, mean=x_mean, std=x_std)
        meta["x_mean"], meta["x_std"] = [float(v) for v in x_mean], [float(v) for v in x_std]
    else:
        meta["x_mean"] = meta["x_std"] = None
    Y_train, Y_test = Y[train_rows], Y[test_rows]
    if task == "regression":  # train on standardized targets; predictions are mapped back
        y_mean = Y_train.mean(axis=0)
        y_std = Y_train.std(axis=0)
        y_std[y_std == 0] = 1.0
        meta["y_mean"], meta["y_std"] = [float(v) for v in y_mean], [float(v) for v in y_std]
        Y_fit = ((Y_train - y_mean) / y_std).astype(dtype)
    else:
        Y_fit = Y_train

    mode = args.mode
    lr = MODE_DEFAULTS[mode][0] if args.learning_rate is None else args.learning_rate
    momentum = MODE_DEFAULTS[mode][1] if args.momentum is None else args.momentum
    try:
        net = Network([X.shape[1], *args.hidden, n_outputs], activation=args.activation,
                      output_activation=output, loss=loss, dtype=dtype, init=args.init,
                      random_state=args.seed)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None

    if task == "classification":
        labels = ", ".join(map(str, meta["classes"][:10])) + (", ..." if len(meta["classes"]) > 10 else "")
        kind = f"classification, {len(meta['classes'])} classes ({labels})"
    else:
        kind = f"regression, {n_outputs} output(s)"
    print(f"{args.file}: {n_rows} rows, {X.shape[1]} features, target {target_name!r}: {kind}")
    print(f"split: {len(train_rows)} train / {len(test_rows)} test ({split_note}, seed {args.seed}); "
          f"features {'standardized with the training rows' if args.standardize else 'as given'}")
    batch = f", batch {args.batch_size}" if mode == "minibatch" else ""
    options = dict(mode=mode, batch_size=args.batch_size if mode == "minibatch" else None,
                   learning_rate=lr, momentum=momentum, n_jobs=args.n_jobs)
    try:
        jit = _warm_up(net, X_train, Y_fit, **options)
        print(f"{net!r}, {mode} updating{batch}, learning rate {lr}, momentum {momentum}, "
              f"{args.epochs} epochs (kernels ready in {jit:.2f} s)", flush=True)
        validation = None
        if args.plot and len(test_rows):  # the test rows' curve in the plot
            validation = (X_test, Y_test if task == "classification" else
                          ((Y_test - np.asarray(meta["y_mean"])) / np.asarray(meta["y_std"])).astype(dtype))
        history, seconds = _timed_train(net, X_train, Y_fit, epochs=args.epochs,
                                        progress=args.progress, stop_on_interrupt=False,
                                        validation=validation, **options)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None

    if task == "classification":
        train_metric = _percent(history.accuracy[-1])
        test_metric = _percent(net.evaluate(X_test, Y_test)[1]) if len(test_rows) else None
        print("result: " + _result_line(history, seconds, train_metric, test_metric))
    else:
        train_fit = _regression_scores(_unscale(net.predict(X_train), meta), Y_train)
        test_fit = _regression_scores(_unscale(net.predict(X_test), meta), Y_test) if len(test_rows) else None
        print("result: " + _result_line(history, seconds, train_fit, test_fit, name="RMSE"))

    _save_model(out, net, meta)
    print(f"saved model to {out}")
    if history.n_epochs:
        _write_plot(args.plot, history, f"{Path(args.file).name}: {mode} updating")
    if history.stopped_by == "interrupted":
        print(f"interrupted: the model saved is the one after epoch {history.n_epochs}",
              file=sys.stderr)
        return 130
    return 0


def _unscale(outputs, meta):
    return outputs.astype(np.float64) * np.asarray(meta["y_std"]) + np.asarray(meta["y_mean"])


def _regression_scores(predicted, Y):
    """'RMSE (R2 r2)' in the target's units, averaged over outputs."""
    rmse = float(np.sqrt(np.mean((predicted - Y) ** 2)))
    total = np.sum((Y - Y.mean(axis=0)) ** 2)
    r2 = 1.0 - np.sum((predicted - Y) ** 2) / total if total > 0 else float("nan")
    return f"{rmse:.4g} (R2 {r2:.3f})"


# -- predict -----------------------------------------------------------------------------------
def _predict_outputs(net, meta, X):
    """(predictions, outputs) of a loaded model for raw features X (float64, unscaled)."""
    if meta.get("x_mean") is not None:
        X = datasets.standardize(X, mean=np.asarray(meta["x_mean"]), std=np.asarray(meta["x_std"]))
    outputs = net.predict(X)
    if meta["task"] == "regression":
        values = _unscale(outputs, meta)
        return (values[:, 0] if values.shape[1] == 1 else values), outputs
    classes = np.asarray(meta["classes"])
    if outputs.shape[1] == 1:
        return classes[(outputs[:, 0] >= 0.5).astype(np.int64)], outputs
    return classes[np.argmax(outputs, axis=1)], outputs


def run_predict(args):
    if args.out:
        check_output_path(args.out, "--out")
    net, meta = _load_model(args.model)
    X, _, _, _, _ = _load_table(args.file, None, for_prediction=True,
                                feature_names=meta["feature_names"],
                                target_index=meta.get("target_index"))
    try:
        predictions, outputs = _predict_outputs(net, meta, X)
    except (ValueError, TypeError) as error:  # e.g. features that overflow once standardized
        raise UsageError(f"cannot predict with {args.model}: {error}") from None
    if meta["task"] == "classification":
        classes = meta["classes"]
        if outputs.shape[1] == 1:  # one logistic unit: its output is the second class's score
            outputs = np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]])
        header = ["prediction"] + [f"p_{label}" for label in classes]
        rows = ([label] + [f"{p:.6g}" for p in row] for label, row in zip(predictions.tolist(), outputs))
    else:
        values = predictions.reshape(len(X), -1)
        header = ["prediction"] if values.shape[1] == 1 else [f"prediction_{k}" for k in range(values.shape[1])]
        rows = ([repr(float(v)) for v in row] for row in values)
    target = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(target)
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        if args.out:
            target.close()
    if args.out:
        print(f"wrote {len(X)} predictions to {args.out}", file=sys.stderr)
    return 0


# -- saving and loading models, without pickle (fastbp.io) ---------------------------------------
def _save_model(path, net, meta):
    """Write net and its metadata to one .npz (fastbp.io's format, atomically)."""
    try:
        return io.save_network_with_meta(net, Path(path), meta)
    except OSError as error:
        raise UsageError(f"cannot write the model to {path}: {error.strerror or error}") from None


def _load_model(path):
    """(Network, header dict) from a file written by _save_model; never unpickles.

    Any file that is not such a model (a tampered or truncated one included) is a UsageError
    naming what is wrong: the header is checked field by field before anything is built from it.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a model file")
    if not path.is_file():
        raise UsageError(f"{path}: no such model file")
    try:
        header, arrays = io.read_archive(path)  # every entry checked, nothing unpickled
        if header["kind"] != "Network":
            kind = header["kind"]
            article = "an" if kind.startswith(("RNN", "MLP")) else "a"  # an RNN, a Network
            raise UsageError(f"{path} holds {article} {kind} saved by fastbp.save; 'fastbp "
                             "predict' reads the models 'fastbp train' writes (a network with its "
                             "table's columns). Load it in Python instead: fastbp.load(path).predict(X)")
        check = io.Checker(path)
        absent = [key for key in _HEADER_KEYS if key not in header]
        if absent:
            check.fail(f"it lacks {', '.join(map(repr, absent))}")
        net = io.decode_network(header, arrays, check)
        if arrays:
            check.fail(f"unexpected arrays {sorted(arrays)}")
    except (io.ModelFileError, OSError) as error:
        raise UsageError(str(error)) from None

    def bad(problem):
        return UsageError(f"{path}: invalid model header: {problem}")

    _check_header_meta(header, net, bad)
    return net, header


_HEADER_KEYS = ("sizes", "activation", "output_activation", "loss", "dtype", "task", "feature_names")


def _check_header_meta(header, net, bad):
    """Check the fields 'fastbp predict' reads, against the network; bad(problem) otherwise."""
    n_features, n_outputs = net.n_inputs, net.n_outputs
    names = header["feature_names"]
    if not isinstance(names, list) or len(names) != n_features \
            or not all(isinstance(name, str) for name in names):
        raise bad(f"'feature_names' must be a list of {n_features} strings, got {short_repr(names)}")
    index = header.get("target_index")
    if index is not None and not (is_int(index) and 0 <= index <= n_features):
        raise bad(f"'target_index' must be null or an integer in 0..{n_features}, got {short_repr(index)}")

    def numbers(key, length, positive=False):
        values = header.get(key)
        if not isinstance(values, list) or len(values) != length \
                or not all(is_number(v, finite=True) and (v > 0 or not positive) for v in values):
            raise bad(f"'{key}' must be a list of {length} finite{' positive' if positive else ''} "
                      f"numbers, got {short_repr(values)}")

    if (header.get("x_mean") is None) != (header.get("x_std") is None):
        raise bad("'x_mean' and 'x_std' must both be given or both be null")
    if header.get("x_mean") is not None:
        numbers("x_mean", n_features)
        numbers("x_std", n_features, positive=True)
    task = header["task"]
    if task == "regression":
        numbers("y_mean", n_outputs)
        numbers("y_std", n_outputs, positive=True)
    elif task == "classification":
        classes = header.get("classes")
        n_classes = 2 if n_outputs == 1 else n_outputs
        if not isinstance(classes, list) or len(classes) != n_classes \
                or not (all(isinstance(c, str) for c in classes) or all(is_number(c, finite=True) for c in classes)):
            raise bad(f"'classes' must be a list of {n_classes} labels (all strings or all numbers) "
                      f"for {n_outputs} output unit(s), got {short_repr(classes)}")
    else:
        raise bad(f"'task' must be 'classification' or 'regression', got {short_repr(task)}")
