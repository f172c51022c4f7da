"""Synthetic data for tests, benchmarks and sweeps.

Everything here is plain NumPy and deterministic given its seed.

- :func:`xor` and :func:`diabetes_example` are the two small problems the seeds'
  examples are written around.
- :func:`teacher` labels standard-normal inputs with a fixed random network, the data
  of every benchmark; :func:`write_teacher_npy` writes the very same numbers to ``.npy``
  files without ever holding the inputs in memory.
- :data:`WORKLOADS` and :func:`load_workload` are the benchmark workloads (tiny,
  mid, wide), defined here and nowhere else.
- :func:`one_hot` and :func:`standardize` turn labels and raw columns into what
  :func:`fastbp.train` expects.

Random streams of :func:`teacher` (all derived from ``seed``):

- ``np.random.default_rng(seed)`` draws the teacher's weights ``A`` then ``B``;
- a child stream (``np.random.SeedSequence(seed).spawn(2)[0]``) draws the inputs ``X``,
  row after row, so ``X`` depends only on ``seed`` and ``n_features``: not on the
  teacher's shape, the number of classes, the dtype or the chunk size, and the first
  ``m`` rows of an ``n``-row request are the ``m``-row request;
- the other child stream draws the label noise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import check_float, check_int

__all__ = [
    "DIABETES_FEATURES",
    "WORKLOADS",
    "Workload",
    "diabetes_example",
    "load_workload",
    "one_hot",
    "standardize",
    "teacher",
    "write_teacher_npy",
    "xor",
]

#: Rows of ``X`` generated at a time; a chunk of float64 scratch is
#: ``chunk_size * n_features * 8`` bytes (32 MiB for 64 features).
DEFAULT_CHUNK_SIZE = 65536

#: Column names of :func:`diabetes_example`'s ``X``, in order.
DIABETES_FEATURES = ("age", "bmi", "glucose")


# --------------------------------------------------------------------------- checks


def _check_float_dtype(dtype):
    """Return ``np.dtype(dtype)`` if it is float32 or float64 (the dtypes fastbp trains in).

    Anything else, a dtype NumPy does not know included, is a ValueError with the wording
    of :class:`fastbp.Network`'s: "dtype must be float32 or float64, got ...".
    """
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


# --------------------------------------------------------------------------- small problems


def xor(dtype=np.float64):
    """The XOR problem: the four corners of the unit square, labelled by exclusive or.

    Returns
    -------
    X : ndarray of shape (4, 2), dtype ``dtype``
        Rows ``(0, 0), (0, 1), (1, 0), (1, 1)``.
    y : ndarray of shape (4,), int64
        ``x0 XOR x1``: ``0, 1, 1, 0``. Not linearly separable, so a network needs a
        hidden layer to fit it (2-2-1 is the smallest that can).
    """
    dt = _check_float_dtype(dtype)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dt)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y


def one_hot(y, n_classes=None, dtype=np.float64):
    """One-hot targets for integer class labels: row ``i`` is 1 in column ``y[i]``, else 0.

    Parameters
    ----------
    y : array-like of shape (n,)
        Integer labels in ``0 .. n_classes - 1``.
    n_classes : int or None
        Number of columns; ``None`` means ``y.max() + 1``.
    dtype : float32 or float64

    Returns
    -------
    ndarray of shape (n, n_classes), dtype ``dtype``; ``argmax(axis=1)`` gives ``y`` back.
    """
    dt = _check_float_dtype(dtype)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels, got shape {y.shape}")
    if y.size == 0:
        y = y.astype(np.int64)  # np.array([]) is float64; an empty y is fine with n_classes
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer labels, got dtype {y.dtype}")
    if n_classes is None:
        if y.size == 0:
            raise ValueError("n_classes must be given when y is empty")
        n_classes = int(y.max()) + 1
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1}, got values in {y.min()}..{y.max()}"
        )
    Y = np.zeros((y.shape[0], n_classes), dtype=dt)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


def standardize(X, *, mean=None, std=None, return_stats=False):
    """Column-wise ``(X - mean) / std``: each feature to mean 0 and standard deviation 1.

    Logistic units saturate on raw inputs such as glucose in mg/dL; scale before training.

    Parameters
    ----------
    X : array-like of shape (n, n_features)
    mean, std : array-like of shape (n_features,), optional
        Statistics to apply, e.g. those of the training set applied to a test set
        (get them with ``return_stats=True``). By default they are computed from ``X``;
        a constant column gets ``std = 1`` (it becomes 0, not NaN).
    return_stats : bool
        Also return the ``mean`` and ``std`` used.

    Returns
    -------
    Xs : ndarray, float (X's dtype if float32/float64, else float64)
    (Xs, mean, std) if ``return_stats``.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, n_features), got shape {X.shape}")
    if X.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        X = X.astype(np.float64)
    if mean is None:
        if X.shape[0] == 0:
            raise ValueError("cannot standardize an X with 0 rows")
        mean = X.mean(axis=0)
    if std is None:
        if X.shape[0] == 0:
            raise ValueError("cannot standardize an X with 0 rows")
        std = X.std(axis=0)
        std = np.where(std == 0, 1, std).astype(X.dtype)
    mean = np.asarray(mean, dtype=X.dtype)
    std = np.asarray(std, dtype=X.dtype)
    if mean.shape != (X.shape[1],) or std.shape != (X.shape[1],):
        raise ValueError(
            f"mean and std must have shape ({X.shape[1]},), got {mean.shape} and {std.shape}"
        )
    Xs = (X - mean) / std
    return (Xs, mean, std) if return_stats else Xs


def diabetes_example(n_samples=768, seed=0, dtype=np.float64):
    """A diabetes-shaped problem: three risk factors and a yes/no diagnosis.

    Synthetic, modelled loosely on the Pima Indians diabetes data (768 people, about a
    third diabetic). Columns, in the order of :data:`DIABETES_FEATURES`:

    - ``age``: whole years, adults 21..81, right-skewed (21 + gamma, mean about 33);
    - ``bmi``: body-mass index in kg/m^2, one decimal, normal around 32, clipped to 18..60;
    - ``glucose``: fasting plasma glucose in mg/dL, whole numbers, right-skewed around
      105 (normal < 100, diabetic >= 126), rising a little with age and BMI, clipped to
      60..300.

    The label is drawn from a logistic rule whose risk increases in all three::

        logit = -0.75 + 0.035 (age - 33) + 0.08 (bmi - 32) + 0.06 (glucose - 105)
        y ~ Bernoulli(1 / (1 + exp(-logit)))

    so the label is noisy: no classifier reaches 100 %.

    ``X`` is returned **raw**, in the units above, not scaled: pass it through
    :func:`standardize` before training logistic units on it.

    Returns
    -------
    X : ndarray of shape (n_samples, 3), dtype ``dtype``
    y : ndarray of shape (n_samples,), int64, 1 = diabetic
    """
    n = check_int(n_samples, "n_samples", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    dt = _check_float_dtype(dtype)
    rng = np.random.default_rng(seed)
    age = np.floor(np.minimum(21 + rng.gamma(2.0, 6.2, n), 81))
    bmi = np.round(np.clip(rng.normal(32.0, 6.5, n), 18, 60), 1)
    glucose = 75 + 0.3 * (age - 33) + 0.9 * (bmi - 32) + rng.gamma(3.0, 10.0, n)
    glucose = np.round(np.clip(glucose, 60, 300))
    logit = -0.75 + 0.035 * (age - 33) + 0.08 * (bmi - 32) + 0.06 * (glucose - 105)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    X = np.column_stack([age, bmi, glucose]).astype(dt)
    return X, y


# --------------------------------------------------------------------------- teacher network


def _check_teacher_args(n_samples, n_features, n_classes, n_outputs, hidden, noise, seed, dtype):
    """Validate :func:`teacher`'s arguments once; return them normalised."""
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=0)
    if n_classes == 1:
        raise ValueError("n_classes must be 0 (regression) or >= 2, got 1")
    n_outputs = check_int(n_outputs, "n_outputs", minimum=1)
    if n_classes != 0 and n_outputs != 1:
        raise ValueError(
            f"n_outputs is for regression (n_classes=0) only, got n_outputs={n_outputs} "
            f"with n_classes={n_classes}"
        )
    hidden = check_int(hidden, "hidden", minimum=1)
    noise = check_float(noise, "noise", minimum=0.0)
    if n_classes != 0 and noise > 1:
        raise ValueError(f"noise is the fraction of labels flipped, must be <= 1, got {noise!r}")
    seed = check_int(seed, "seed", minimum=0)
    dt = _check_float_dtype(dtype)
    return n_samples, n_features, n_classes, n_outputs, hidden, noise, seed, dt


def _fill_teacher(X, n_classes, n_outputs, hidden, noise, seed, chunk_size):
    """Fill the preallocated ``X`` (ndarray or memmap) chunk by chunk; return the labels.

    The one routine behind :func:`teacher` and :func:`write_teacher_npy`, so both give
    the same numbers. Each chunk of inputs is drawn in float64 into a reused scratch
    buffer, cast into ``X`` (so float32 ``X`` is float64 ``X`` rounded, and the labels do
    not depend on the dtype), and pushed through the teacher.
    """
    n_samples, n_features = X.shape
    regression = n_classes == 0
    n_teacher_out = n_outputs if regression else (1 if n_classes == 2 else n_classes)

    weight_rng = np.random.default_rng(seed)
    A = weight_rng.standard_normal((n_features, hidden))
    B = weight_rng.standard_normal((hidden, n_teacher_out))
    x_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
    x_rng = np.random.default_rng(x_seq)
    noise_rng = np.random.default_rng(noise_seq)
    scale = np.sqrt(n_features)

    if regression:
        y = np.empty((n_samples, n_outputs), dtype=X.dtype)
    else:
        y = np.empty(n_samples, dtype=np.int64)
    scratch = np.empty((min(chunk_size, n_samples), n_features))
    for start in range(0, n_samples, chunk_size):
        stop = min(start + chunk_size, n_samples)
        xc = scratch[: stop - start]
        x_rng.standard_normal(out=xc)
        X[start:stop] = xc
        out = np.tanh((xc @ A) / scale) @ B
        if regression:
            if noise > 0:
                out += noise * noise_rng.standard_normal(out.shape)
            y[start:stop] = out
        elif n_classes == 2:
            # The teacher is an odd function (tanh is odd, no biases) of a symmetric
            # input, so its output is symmetric about 0: 0 is the exact median of the
            # output distribution, and needs no second pass over the data.
            y[start:stop] = out[:, 0] > 0
        else:
            y[start:stop] = np.argmax(out, axis=1)

    if not regression and noise > 0:
        # Flip exactly round(noise * n) labels, chosen at random: a binary label to the
        # other class, a multi-class label to one of the other classes, uniformly.
        n_flip = int(round(noise * n_samples))
        idx = noise_rng.choice(n_samples, size=n_flip, replace=False)
        if n_classes == 2:
            y[idx] = 1 - y[idx]
        else:
            y[idx] = (y[idx] + noise_rng.integers(1, n_classes, size=n_flip)) % n_classes

    if regression and n_outputs == 1:
        y = y[:, 0]
    return y


def teacher(n_samples, n_features, n_classes=2, n_outputs=1, hidden=16, noise=0.0,
            seed=0, dtype=np.float32, *, chunk_size=DEFAULT_CHUNK_SIZE):
    """Inputs labelled by a fixed random "teacher" network: the benchmark data.

    ``X`` is standard-normal Gaussian. The teacher is a one-hidden-layer network with
    no biases, standard-normal weights ``A`` (n_features, hidden) and ``B``::

        h   = tanh(X @ A / sqrt(n_features))     # the scaling keeps tanh out of saturation
        out = h @ B

    and the target is

    - ``n_classes=2``: ``y = out[:, 0] > 0`` as int. 0 is the exact median of ``out``
      (the teacher is odd and ``X`` symmetric), so the classes are balanced in
      expectation, and no pass over the data is needed to find a threshold;
    - ``n_classes=k > 2``: ``y = argmax`` of ``k`` teacher outputs, labels ``0..k-1``
      (the classes are not all equally frequent: that depends on ``B``);
    - ``n_classes=0``: regression, ``y = out + noise * N(0, 1)``, shape (n,) when
      ``n_outputs == 1`` else (n, n_outputs), dtype ``dtype``.

    For classification, ``noise`` is the fraction of labels flipped to another class
    at random (exactly ``round(noise * n_samples)`` of them).

    ``X`` is written chunk by chunk (``chunk_size`` rows) into one preallocated array of
    the final dtype: a float32 request never holds a float64 copy of ``X``, only one
    float64 chunk. ``X`` does not depend on ``chunk_size``, ``dtype`` (beyond rounding),
    the teacher's shape or ``n_classes``; its first ``m`` rows are ``teacher(m, ...)``'s
    ``X``. The labels are computed in float64, so they agree across dtypes.

    Parameters
    ----------
    n_samples, n_features : int >= 1
    n_classes : int, 0 (regression) or >= 2
    n_outputs : int >= 1, regression only
    hidden : int >= 1, the teacher's hidden units
    noise : float >= 0 (and <= 1 for classification)
    seed : int >= 0
    dtype : float32 or float64, the dtype of ``X`` (and of ``y`` for regression)
    chunk_size : int >= 1, rows generated at a time

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype ``dtype``
    y : int64 labels of shape (n_samples,), or regression targets
    """
    n_samples, n_features, n_classes, n_outputs, hidden, noise, seed, dt = _check_teacher_args(
        n_samples, n_features, n_classes, n_outputs, hidden, noise, seed, dtype)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    X = np.empty((n_samples, n_features), dtype=dt)
    y = _fill_teacher(X, n_classes, n_outputs, hidden, noise, seed, chunk_size)
    return X, y


def write_teacher_npy(path, n_samples, n_features, n_classes=2, seed=0,
                      chunk_size=DEFAULT_CHUNK_SIZE, dtype=np.float32, *,
                      n_outputs=1, hidden=16, noise=0.0):
    """Write :func:`teacher`'s data to two ``.npy`` files, never holding ``X`` in memory.

    ``X`` goes through ``np.lib.format.open_memmap`` one chunk of ``chunk_size`` rows at
    a time, so data far larger than RAM can be made; the labels (one int64 per row, or
    the regression targets) are kept in memory and written at the end.

    The numbers are exactly those of ``teacher(n_samples, n_features, n_classes,
    n_outputs, hidden, noise, seed, dtype, chunk_size=chunk_size)``: both run the same
    chunked routine (and ``X`` is the same for any chunk size).

    Parameters
    ----------
    path : str or os.PathLike
        Base name: ``X`` is written to ``<path>_X.npy`` and the labels to
        ``<path>_y.npy`` (a trailing ``.npy`` on ``path`` is dropped first). The parent
        directory must exist.
    Others : as for :func:`teacher`.

    Returns
    -------
    (x_path, y_path) : pathlib.Path, the two files written. Read them back with
    ``np.load(x_path, mmap_mode="r")`` to keep ``X`` on disk.
    """
    n_samples, n_features, n_classes, n_outputs, hidden, noise, seed, dt = _check_teacher_args(
        n_samples, n_features, n_classes, n_outputs, hidden, noise, seed, dtype)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    base = os.fspath(path)
    if base.endswith(".npy"):
        base = base[: -len(".npy")]
    x_path, y_path = Path(base + "_X.npy"), Path(base + "_y.npy")
    if not x_path.parent.is_dir():
        raise ValueError(f"directory {str(x_path.parent)!r} does not exist")

    X = np.lib.format.open_memmap(x_path, mode="w+", dtype=dt, shape=(n_samples, n_features))
    try:
        y = _fill_teacher(X, n_classes, n_outputs, hidden, noise, seed, chunk_size)
        X.flush()
    finally:
        del X  # closes the map
    np.save(y_path, y)
    return x_path, y_path


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: teacher data and the network to train.

    Attributes
    ----------
    name : str
    n_samples : int, training tuples
    sizes : tuple of int, the trained network's layer sizes, input first
    n_classes : int, 2 (binary: one logistic output) or k > 2 (k softmax/logistic outputs)
    """

    name: str
    n_samples: int
    sizes: tuple
    n_classes: int

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        expected = 1 if self.n_classes == 2 else self.n_classes
        if self.sizes[-1] != expected:
            raise ValueError(
                f"workload {self.name!r}: {self.n_classes} classes need {expected} outputs, "
                f"sizes end in {self.sizes[-1]}"
            )

    @property
    def n_features(self):
        """Inputs per tuple (``sizes[0]``)."""
        return self.sizes[0]

    @property
    def n_outputs(self):
        """Output units (``sizes[-1]``): 1 for binary, one per class otherwise."""
        return self.sizes[-1]

    @property
    def n_params(self):
        """Weights plus biases of the trained network."""
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


#: The benchmark workloads by name: the one list every benchmark and script reads.
WORKLOADS = {
    w.name: w
    for w in (
        # per-tuple overhead; the seeds' diabetes example shape (3 inputs, 2 hidden layers)
        Workload("tiny", 100_000, (3, 8, 8, 1), 2),
        # case updating inner loops
        Workload("mid", 100_000, (32, 64, 64, 1), 2),
        # epoch updating, matrix products, threads
        Workload("wide", 200_000, (64, 256, 256, 10), 10),
    )
}


def load_workload(name, n_samples=None, dtype=np.float32, seed=0):
    """The data of a benchmark workload, ready for ``fastbp.train``.

    ``X`` is :func:`teacher` data with ``n_features = sizes[0]``; ``Y`` holds float
    targets of ``dtype``: shape (n, 1) of 0/1 for a binary workload, one-hot (n, k) for
    k classes.

    Parameters
    ----------
    name : str (a key of :data:`WORKLOADS`) or Workload
    n_samples : int or None
        Tuples to make; ``None`` means the workload's own size. A smaller ``n_samples``
        gives the first rows of the full workload (handy for quick tests).
    dtype : float32 or float64
    seed : int >= 0

    Returns
    -------
    X : ndarray (n, sizes[0]) ; Y : ndarray (n, sizes[-1])
    """
    if isinstance(name, Workload):
        work = name
    elif name in WORKLOADS:
        work = WORKLOADS[name]
    else:
        raise ValueError(f"unknown workload {name!r}; expected one of {sorted(WORKLOADS)}")
    n = work.n_samples if n_samples is None else n_samples
    dt = _check_float_dtype(dtype)
    X, y = teacher(n, work.n_features, n_classes=work.n_classes, seed=seed, dtype=dt)
    if work.n_classes == 2:
        Y = y.astype(dt).reshape(-1, 1)
    else:
        Y = one_hot(y, work.n_classes, dtype=dt)
    return X, Y


# --------------------------------------------------------------------------- sequences
def adding_problem(n_sequences, n_steps, seed=0, dtype=np.float64):
    """The adding problem (Hochreiter & Schmidhuber, 1997): a recurrent network's classic test.

    Each step carries two inputs: a value uniform in [0, 1] and a marker, 1 at exactly two
    steps (one in each half of the sequence) and 0 elsewhere. The target, one per sequence,
    is the sum of the two marked values: the network must remember the first marked value
    until the second arrives. Answering 1 (the mean) gives a mean squared error of 1/6.

    Returns X of shape (n_sequences, n_steps, 2) and y of shape (n_sequences,).
    """
    n_sequences = check_int(n_sequences, "n_sequences", minimum=1)
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    dt = _check_float_dtype(dtype)
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(n_sequences, n_steps))
    marks = np.zeros((n_sequences, n_steps))
    rows = np.arange(n_sequences)
    marks[rows, rng.integers(0, n_steps // 2, size=n_sequences)] = 1
    marks[rows, rng.integers(n_steps // 2, n_steps, size=n_sequences)] = 1
    X = np.stack([values, marks], axis=2).astype(dt)
    return X, (values * marks).sum(axis=1).astype(dt)


# --------------------------------------------------------------------------- classic hard problems
def parity(n_bits, dtype=np.float64):
    """Every n_bits-bit pattern, labelled 1 when it has an odd number of ones (XOR for 2 bits).

    Returns X of shape (2**n_bits, n_bits) of 0/1 and y of shape (2**n_bits,) of 0/1 ints.
    """
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    if n_bits > 20:
        raise ValueError(f"n_bits must be <= 20 (2**n_bits rows), got {n_bits}")
    dt = _check_float_dtype(dtype)
    codes = np.arange(2 ** n_bits)
    X = (codes[:, None] >> np.arange(n_bits - 1, -1, -1)) & 1
    return X.astype(dt), X.sum(axis=1).astype(np.int64) % 2


def two_spirals(n_per_class=97, turns=3.0, noise=0.0, seed=0, dtype=np.float64):
    """Lang & Witbrock's two-spirals problem: two interleaved spirals, one per class.

    Point i of n_per_class on the first spiral lies at angle theta = i / n * turns * 2 pi and
    radius proportional to theta (scaled so the outermost radius is 1); the second spiral is
    the first turned by pi. Classes 0 and 1; noise adds N(0, noise) to the coordinates.
    Returns X of shape (2 n_per_class, 2) and y of shape (2 n_per_class,).
    """
    n = check_int(n_per_class, "n_per_class", minimum=2)
    turns = check_float(turns, "turns", minimum=0.0, strict_min=True)
    noise = check_float(noise, "noise", minimum=0.0)
    seed = check_int(seed, "seed", minimum=0)
    dt = _check_float_dtype(dtype)
    theta = np.arange(n) / n * turns * 2 * np.pi + np.pi / 2
    radius = theta / theta.max()
    first = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    X = np.concatenate([first, -first])
    if noise > 0:
        X = X + np.random.default_rng(seed).normal(scale=noise, size=X.shape)
    return X.astype(dt), np.repeat([0, 1], n).astype(np.int64)
