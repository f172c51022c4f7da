"""Input checks, done once in Python before any kernel runs.

Every failure is a ValueError or TypeError whose message names the parameter and what
was wrong, so that a user never meets a Numba typing error or silent garbage.
"""
import math
import numbers
import reprlib
import sys

import numpy as np


# -- predicates on plain values (JSON fields of model files, sweep configs, CLI headers) ------
def is_int(value):
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value, finite=False):
    """An int or float that is not a bool and that a float can hold (an integer too large
    for one is not); with `finite`, also finite. JSON parses Infinity and NaN, so a model file
    may hold them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) or not finite
    except OverflowError:  # an int beyond float's range
        return False


def short_repr(value):
    """repr of a value for an error message, cut short (a tampered list may be long)."""
    return reprlib.repr(value)


def check_choice(value, name, choices, aliases=None):
    """Return the canonical spelling of a name-valued option, or raise ValueError listing the choices."""
    if aliases and isinstance(value, str) and value in aliases:
        value = aliases[value]
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_bool(value, name):
    """A real bool (numpy's too); strings like "no" are refused rather than read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_int(value, name, minimum=1, maximum=None):
    """An integer >= minimum (bool is refused: True is not a size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def check_n_jobs(n_jobs):
    """n_jobs as joblib counts threads: None, or a non-zero integer (-1 all, -2 all but one)."""
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer (-1: all threads, -2: all "
                         f"but one, ...), got {n_jobs!r}")
    return None if n_jobs is None else int(n_jobs)


def check_dtype(value, name, allowed):
    """np.dtype(value) if it is one of `allowed`; ValueError naming `name` for anything else
    (np.dtype itself raises TypeError, ValueError or even SyntaxError on odd values)."""
    dtype = None
    # a dtype, a type (np.float32, float) or a non-empty name: np.dtype() reads more (None,
    # "" and even 1.5 as float64), which is not what anyone meant
    if isinstance(value, (np.dtype, type)) or (isinstance(value, str) and value):
        try:
            dtype = np.dtype(value)
        except (TypeError, ValueError, SyntaxError):
            pass
    if dtype is None or dtype not in allowed:  # (np.dtype == None is float64 == None: True)
        names = " or ".join(d.name for d in allowed)
        raise ValueError(f"{name} must be {names}, got {value!r}")
    return dtype


def check_float(value, name, minimum=None, maximum=None, strict_min=False, strict_max=False):
    """A finite real number within the given bounds."""
    # (a plain float or int skips the numbers.Real check, an abstract-class test that made a
    # dozen of these a tenth of a small train() call)
    if type(value) not in (float, int) and (isinstance(value, bool) or
                                            not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict_min and value == minimum)):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (strict_max and value == maximum)):
        raise ValueError(f"{name} must be {'<' if strict_max else '<='} {maximum}, got {value}")
    return value


def as_matrix(X, name, dtype, n_columns=None, allow_1d=False, columns="columns"):
    """X as a C-contiguous 2-D array of `dtype`, converted once; refuses what cannot be trained on.

    A 1-D array is read as one column when allow_1d (targets of a one-output network).
    The returned array may be X itself when it already has the right dtype and layout: a
    memory-mapped X (np.load(path, mmap_mode="r")) of the network's dtype is read in place,
    never copied into memory.
    `columns` names what a column is in messages ("features", "outputs").
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(f"{name} is a sparse matrix; pass a dense array (e.g. {name}.toarray())")
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as error:  # ragged nested lists, for one
        raise ValueError(f"{name} cannot be read as an array of numbers: {error}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1 and allow_1d:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_{columns}), got {arr.ndim}-D with "
                         f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 rows")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: it has 0 columns")
    if n_columns is not None and arr.shape[1] != n_columns:
        raise ValueError(f"{name} has {arr.shape[1]} {columns}, the network expects {n_columns}")
    with np.errstate(over="ignore"):  # values beyond float32's range become inf, refused below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not all_finite(arr):
        too_big = np.dtype(dtype) == np.float32 and np.isfinite(np.asarray(X, dtype=np.float64)).all()
        raise ValueError(f"{name} contains NaN or infinity" if not too_big else
                         f"{name} holds values too large for float32 (they would become inf)")
    return arr


FINITE_CHECK_ROWS_BYTES = 1 << 24  # rows checked at a time: a bounded temporary, not one of X's size


def all_finite(arr):
    """np.isfinite(arr).all(), a block of rows at a time: on a memory-mapped X larger than RAM
    the one-shot version would allocate a boolean array a quarter or an eighth of X's size."""
    if arr.nbytes <= FINITE_CHECK_ROWS_BYTES or arr.ndim != 2:
        return bool(np.isfinite(arr).all())
    step = max(1, FINITE_CHECK_ROWS_BYTES // max(1, arr.shape[1] * arr.itemsize))
    return all(np.isfinite(arr[i:i + step]).all() for i in range(0, arr.shape[0], step))


def as_sample_weight(sample_weight, n_samples, dtype):
    """Per-tuple weights as a 1-D array of `dtype`, or an empty array for "all weigh 1"."""
    if sample_weight is None:
        return np.empty(0, dtype=dtype)
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {weights.dtype}")
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {weights.shape}")
    weights = np.ascontiguousarray(weights, dtype=dtype)
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (weights < 0).any():
        raise ValueError("sample_weight must be >= 0")
    if not weights.any():
        raise ValueError("sample_weight is 0 for every tuple")
    return weights


def is_dask_array(x):
    """Whether x is a dask.array.Array (without importing Dask: a process that has not
    imported it holds none)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)
