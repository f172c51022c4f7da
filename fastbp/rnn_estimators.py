"""RNNClassifier / RNNRegressor: scikit-learn style estimators over fastbp.RNN, for 3-D input.

    clf = fastbp.RNNClassifier(hidden_size=32).fit(X, y)   # X: (n_sequences, n_steps, n_features)

y is one label (or target) per sequence, read from the output at the last step, or one per
step: classifier y of shape (n_sequences,) or (n_sequences, n_steps); regressor y of shape
(n_sequences,), (n_sequences, n_outputs) or (n_sequences, n_steps, n_outputs). predict
answers in the shape fit saw. Training is fastbp.train on an Elman network (see fastbp.RNN):
batch_size=1 is case updating, batch_size >= n_sequences epoch updating, between them
minibatches; solver "sgd" (with momentum) or "adam"; bptt_steps truncates
backpropagation through time; clip_norm clips each update's gradient norm.
"""
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted

from ._model import ACTIVATION_ALIASES, HIDDEN_ACTIVATIONS, MAX_SIZE, check_random_state
from ._validation import check_bool, check_choice, check_dtype, check_float, check_int, check_n_jobs
from .io.rnn_estimator import register_rnn_estimator
from .network import DTYPES
from .rnn import RNN
from .train import train

SOLVERS = ("sgd", "adam")


class _RNNEstimator(BaseEstimator):
    def __init__(self, hidden_size=32, activation="tanh", *, solver="adam", learning_rate_init=0.01,
                 batch_size=32, max_iter=100, alpha=0.0, momentum=0.9, bptt_steps=None,
                 clip_norm=5.0, tol=1e-4, n_iter_no_change=10, shuffle=True, random_state=None,
                 warm_start=False, dtype=None, n_jobs=None, verbose=False):
        self.hidden_size = hidden_size
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.momentum = momentum
        self.bptt_steps = bptt_steps
        self.clip_norm = clip_norm
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _dtype_for(self, X):
        if self.dtype is None:
            return np.dtype(np.float32) if getattr(X, "dtype", None) == np.float32 else np.dtype(np.float64)
        return check_dtype(self.dtype, "dtype", DTYPES)

    def _X(self, X):
        arr = np.asarray(X) if not hasattr(X, "nnz") else X
        if getattr(arr, "ndim", 0) != 3:
            raise ValueError(f"X must be 3-D (n_sequences, n_steps, n_features), got shape "
                             f"{getattr(arr, 'shape', None)}")
        return arr

    def _check_params(self):
        """Every constructor parameter checked, a ValueError or TypeError naming it: fit, and
        fastbp.load of a saved estimator, call it first."""
        if self.batch_size is None or isinstance(self.batch_size, bool) or \
                not isinstance(self.batch_size, Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        check_int(self.hidden_size, "hidden_size", minimum=1, maximum=MAX_SIZE)
        check_choice(self.activation, "activation", HIDDEN_ACTIVATIONS, ACTIVATION_ALIASES)
        check_choice(self.solver, "solver", SOLVERS)
        check_float(self.learning_rate_init, "learning_rate_init", minimum=0.0, strict_min=True)
        check_float(self.alpha, "alpha", minimum=0.0)
        check_float(self.momentum, "momentum", minimum=0.0, maximum=1.0)
        if self.bptt_steps is not None:
            check_int(self.bptt_steps, "bptt_steps", minimum=1)
        if self.clip_norm is not None:
            check_float(self.clip_norm, "clip_norm", minimum=0.0, strict_min=True)
        check_float(self.tol, "tol", minimum=0.0)
        check_int(self.n_iter_no_change, "n_iter_no_change", minimum=1)
        check_bool(self.shuffle, "shuffle")
        check_bool(self.warm_start, "warm_start")
        check_n_jobs(self.n_jobs)
        check_random_state(self.random_state)
        if self.dtype is not None:
            check_dtype(self.dtype, "dtype", DTYPES)
        if not isinstance(self.verbose, (Integral, np.bool_)):
            raise TypeError(f"verbose must be True, False or an integer, got {self.verbose!r}")

    def _fit(self, X, Y, out_act, loss, sample_weight):
        self._check_params()
        n, T, f = X.shape
        sizes = [f, self.hidden_size, Y.shape[-1]]
        rnn = getattr(self, "rnn_", None)
        if not (self.warm_start and rnn is not None and list(rnn.sizes) == sizes
                and (rnn.output_activation, rnn.loss) == (out_act, loss)):
            rnn = RNN(sizes, activation=self.activation, output_activation=out_act, loss=loss,
                      dtype=self._dtype_for(X), random_state=self.random_state)
        mode = "case" if self.batch_size == 1 else "epoch" if self.batch_size >= n else "minibatch"
        history = train(
            rnn, X, Y, mode=mode, batch_size=self.batch_size, learning_rate=self.learning_rate_init,
            epochs=self.max_iter, shuffle=self.shuffle, n_jobs=self.n_jobs, optimizer=self.solver,
            momentum=self.momentum if self.solver == "sgd" else 0.0, alpha=self.alpha,
            tol=self.tol, n_iter_no_change=self.n_iter_no_change, bptt_steps=self.bptt_steps,
            clip_norm=self.clip_norm, sample_weight=sample_weight, progress=bool(self.verbose),
            track="pass")
        self.rnn_ = rnn
        self.n_features_in_ = f
        self.n_iter_ = history.n_epochs
        self.loss_curve_ = list(history.loss)
        self.loss_ = history.loss[-1] if history.loss else float("nan")
        self.history_ = history
        return self


@register_rnn_estimator
class RNNClassifier(ClassifierMixin, _RNNEstimator):
    """Sequence (or per-step) classification with an Elman network trained through time.

    y: (n_sequences,) labels, one per sequence (the output at the last step), or
    (n_sequences, n_steps) labels, one per step. Two classes use one logistic output unit,
    more a softmax layer; the loss is log loss. Attributes after fit: classes_, rnn_ (the
    fastbp.RNN), n_iter_, loss_curve_, n_features_in_.
    """

    def fit(self, X, y, sample_weight=None):
        X = self._X(X)
        y = np.asarray(y)
        n, T = X.shape[:2]
        if y.shape not in ((n,), (n, T)):
            raise ValueError(f"y must hold a label per sequence, shape ({n},), or per step, "
                             f"({n}, {T}); got shape {y.shape}")
        encoder = LabelEncoder().fit(y.ravel())
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"y needs at least 2 classes, got {len(self.classes_)}")
        codes = encoder.transform(y.ravel()).reshape(y.shape)
        dtype = self._dtype_for(X)
        if len(self.classes_) == 2:
            Y, out_act = codes[..., None].astype(dtype), "logistic"
        else:
            Y, out_act = np.eye(len(self.classes_), dtype=dtype)[codes], "softmax"
        self._per_step = y.ndim == 2
        return self._fit(X, Y, out_act, "log_loss", sample_weight)

    def predict_proba(self, X):
        check_is_fitted(self, "rnn_")
        out = self.rnn_.predict(self._X(X), n_jobs=self.n_jobs).astype(np.float64)
        if len(self.classes_) == 2:
            out = np.concatenate([1 - out, out], axis=-1)
        return out

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=-1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy over all labels (every step's, for per-step labels)."""
        predicted = self.predict(X)
        y = np.asarray(y)
        right = (predicted == y).reshape(len(y), -1).mean(axis=1)
        return float(np.average(right, weights=sample_weight))


@register_rnn_estimator
class RNNRegressor(RegressorMixin, _RNNEstimator):
    """Sequence (or per-step) regression with an Elman network trained through time.

    y: (n_sequences,) or (n_sequences, n_outputs) targets for the last step, or
    (n_sequences, n_steps, n_outputs) targets for every step; identity outputs, squared
    error. predict returns the shape fit saw.
    """

    def fit(self, X, y, sample_weight=None):
        X = self._X(X)
        y = np.asarray(y)
        n, T = X.shape[:2]
        if y.dtype.kind not in "biuf":
            raise TypeError(f"y must hold numbers, got dtype {y.dtype}")
        if y.ndim == 1 and y.shape == (n,):
            Y = y[:, None]
        elif y.ndim == 2 and y.shape[0] == n:
            Y = y
        elif y.ndim == 3 and y.shape[:2] == (n, T):
            Y = y
        else:
            raise ValueError(f"y must be ({n},), ({n}, n_outputs) or ({n}, {T}, n_outputs); got "
                             f"shape {y.shape}")
        self._y_ndim = y.ndim
        return self._fit(X, Y.astype(self._dtype_for(X), copy=False), "identity", "squared_error",
                         sample_weight)

    def predict(self, X):
        check_is_fitted(self, "rnn_")
        out = self.rnn_.predict(self._X(X), n_jobs=self.n_jobs)
        return out[:, 0] if self._y_ndim == 1 else out

    def score(self, X, y, sample_weight=None):
        """R^2 over all targets (every step's, for per-step targets)."""
        y = np.asarray(y, dtype=np.float64)
        predicted = self.predict(X)
        k = 1 if y.ndim == 1 else y.shape[-1]
        weights = sample_weight  # per sequence; per-step targets repeat it over the steps
        if sample_weight is not None and y.ndim == 3:
            weights = np.repeat(sample_weight, y.shape[1])
        return float(r2_score(y.reshape(-1, k), predicted.reshape(-1, k), sample_weight=weights))

