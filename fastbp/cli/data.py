"""Reading the user's tables (.csv, .npy, .npz) and deciding the task and the split."""
import csv
from pathlib import Path

import numpy as np

from ._common import MAX_AUTO_CLASSES, MISSING, UsageError


# -- reading data ------------------------------------------------------------------------------
def _is_missing(cell):
    return cell.strip().lower() in MISSING


def _read_csv(path):
    """(header, rows as a list of lists of str); refuses ragged or empty files."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text CSV file") from None
    except csv.Error as error:
        raise UsageError(f"{path}: not a readable CSV file ({error})") from None
    if not lines:
        raise UsageError(f"{path} is empty")
    header = [name.strip() for name in lines[0]]
    if len(lines) < 2:
        raise UsageError(f"{path} has a header but no data rows")
    for name in header:
        if header.count(name) > 1:
            raise UsageError(f"{path}: column name {name!r} appears more than once in the header")
    for i, row in enumerate(lines[1:]):
        if len(row) != len(header):
            raise UsageError(f"{path}: data row {i + 1} has {len(row)} fields, the header has {len(header)}")
    return header, lines[1:]


def _numeric_column(path, name, cells, what):
    """A CSV column as float64, or UsageError naming the column and the first bad row."""
    try:
        values = np.array(cells, dtype=np.float64)
        if np.isfinite(values).all():
            return values
    except ValueError:
        pass
    for i, cell in enumerate(cells):  # find the first offending cell, to name it
        try:
            value = float(cell)
        except ValueError:
            if not _is_missing(cell):
                raise UsageError(f"{path}: {what} column {name!r} is not numeric: data row {i + 1} "
                                 f"holds {cell.strip()!r}") from None
            value = float("nan")
        if not np.isfinite(value):
            raise UsageError(f"{path}: {what} column {name!r} has a missing or infinite value "
                             f"(NaN or inf) in data row {i + 1}")
    raise AssertionError("unreachable: some cell was not a finite number")


def _load_table(path, target, for_prediction=False, feature_names=None, target_index=None):
    """Read FILE into (X float64, y or None, feature names, target name, target index).

    For training, `target` names the target (CSV column name / .npy column index). For
    prediction, `feature_names` picks the CSV columns and `target_index` is dropped from a
    .npy that still holds the target column.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, rows = _read_csv(path)
        columns = dict(zip(header, zip(*rows)))
        if for_prediction:
            absent = [name for name in feature_names if name not in columns]
            if absent:
                raise UsageError(f"{path}: feature column(s) {', '.join(map(repr, absent))} of the model "
                                 f"are not in the header")
            names, y, target_name = list(feature_names), None, None
        else:
            if target is None:
                raise UsageError("--target COLUMN is required for a .csv file")
            if target not in columns:
                raise UsageError(f"{path}: unknown target column {target!r}; the columns are "
                                 f"{', '.join(map(repr, header))}")
            names = [name for name in header if name != target]
            target_name = target
            y = _target_from_cells(path, target, columns[target])
        if not names:
            raise UsageError(f"{path}: no feature columns besides the target {target!r}")
        X = np.column_stack([_numeric_column(path, name, list(columns[name]), "feature")
                             for name in names])
        return X, y, names, target_name, None

    if suffix == ".npy":
        array = _np_load(path)
        if not isinstance(array, np.ndarray):
            raise UsageError(f"{path}: expected one array in a .npy file")
        if array.ndim != 2:
            raise UsageError(f"{path}: expected a 2-D array (rows, columns), got shape {array.shape}")
        _check_numeric(path, array, "array")
        n_columns = array.shape[1]
        if for_prediction:
            if target_index is not None and n_columns == len(feature_names) + 1:
                array = np.delete(array, target_index, axis=1)
            if array.shape[1] != len(feature_names):
                raise UsageError(f"{path} has {n_columns} columns, the model expects "
                                 f"{len(feature_names)} features")
            return _finite_features(path, array, list(feature_names)), None, list(feature_names), None, None
        if target is None:
            raise UsageError("--target INDEX (a column index) is required for a .npy file")
        try:
            index = int(target)
        except ValueError:
            raise UsageError(f"--target must be a column index for a .npy file, got {target!r}") from None
        if not -n_columns <= index < n_columns:
            raise UsageError(f"{path}: target column index {index} is out of range for "
                             f"{n_columns} columns")
        index %= n_columns
        if n_columns < 2:
            raise UsageError(f"{path}: no feature columns besides the target")
        names = [f"x{j}" for j in range(n_columns) if j != index]
        X = _finite_features(path, np.delete(array, index, axis=1), names)
        return X, array[:, index], names, str(index), index

    if suffix == ".npz":
        arrays = _np_load(path)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise UsageError(f"{path}: not a .npz archive")
        with arrays:
            keys = set(arrays.files)
            needed = {"X"} if for_prediction else {"X", "y"}
            if not needed <= keys:
                raise UsageError(f"{path}: a .npz file needs arrays {' and '.join(sorted(needed))}; "
                                 f"it holds {', '.join(sorted(keys)) or 'none'}")
            try:
                X = arrays["X"]
                y = None if for_prediction else arrays["y"]
            except ValueError as error:  # object arrays need pickle, which is refused
                raise UsageError(f"{path}: cannot read arrays without pickle ({error})") from None
        if X.ndim != 2:
            raise UsageError(f"{path}: X must be 2-D (rows, features), got shape {X.shape}")
        _check_numeric(path, X, "X")
        names = list(feature_names) if for_prediction else [f"x{j}" for j in range(X.shape[1])]
        if for_prediction and X.shape[1] != len(names):
            raise UsageError(f"{path}: X has {X.shape[1]} columns, the model expects {len(names)} features")
        X = _finite_features(path, X, names)
        if y is not None:
            if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
                raise UsageError(f"{path}: y must have one entry (or row) per row of X: X has "
                                 f"{X.shape[0]} rows, y has shape {y.shape}")
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.dtype.kind not in "biufUS":
                raise UsageError(f"{path}: y must hold numbers or strings, got dtype {y.dtype}")
        return X, y, names, "y", None

    raise UsageError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
                     "use .csv, .npy or .npz")


def _np_load(path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        raise UsageError(f"{path}: cannot be read without pickle ({error})") from None
    except (OSError, EOFError) as error:
        raise UsageError(f"{path}: not a readable NumPy file ({error})") from None


def _check_numeric(path, array, what):
    if array.dtype.kind not in "biuf":
        raise UsageError(f"{path}: {what} must hold numbers, got dtype {array.dtype}")


def _finite_features(path, X, names):
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UsageError(f"{path}: feature {names[col]!r} has a missing or infinite value "
                         f"(NaN or inf) in row {row + 1}")
    return X


def _target_from_cells(path, name, cells):
    """A CSV target column: float64 when every cell is a number, else the stripped strings."""
    cells = [cell.strip() for cell in cells]
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            raise UsageError(f"{path}: target column {name!r} has a missing value in data row {i + 1}")
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        return np.array(cells)
    if not np.isfinite(values).all():
        raise UsageError(f"{path}: target column {name!r} holds infinite values")
    return values


# -- task --------------------------------------------------------------------------------------
def _integer_valued(y):
    return y.dtype.kind in "biu" or (y.dtype.kind == "f" and bool(np.all(y == np.round(y))))


def _resolve_task(task, y):
    """'classification' or 'regression' for target y under --task."""
    if y.ndim == 2:
        if task == "classification":
            raise UsageError("classification needs one target column; y is 2-D")
        return "regression"
    numeric = y.dtype.kind in "biuf"
    if task == "auto":
        if not numeric or y.dtype.kind in "biu":
            return "classification"
        if _integer_valued(y) and len(np.unique(y)) <= MAX_AUTO_CLASSES:
            return "classification"
        return "regression"
    if task == "regression" and not numeric:
        raise UsageError("--task regression needs a numeric target; the target holds "
                         f"non-numbers such as {str(y[0])!r}")
    return task


def _label_list(classes):
    """Class labels as JSON-able Python values (str, int or float)."""
    if classes.dtype.kind in "US":
        return [str(c) for c in classes]
    if _integer_valued(classes):
        return [int(c) for c in classes]
    return [float(c) for c in classes]
