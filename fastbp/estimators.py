"""Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor.

Change one import and keep every line of your code:

    from fastbp import MLPClassifier, MLPRegressor  # was: from sklearn.neural_network import ...

The classes ARE scikit-learn's (subclasses): the same constructor parameters and
defaults, parameter validation, label handling, early-stopping split, scores, methods,
tags and fitted attributes. What they replace is the arithmetic: every epoch runs in
fastbp's compiled kernels over one contiguous weight buffer, of which `coefs_` and
`intercepts_` are views.

- batch_size=1 is case updating, batch_size >= n_samples epoch updating, anything between
  minibatch updating, with the optimizer step (SGD, momentum, Nesterov, Adam) inside the
  kernel; shuffles, learning-rate schedules, stopping rules, `loss_curve_` and `verbose`
  output follow scikit-learn's loop exactly.
- solver="lbfgs" hands fastbp's parallel full-batch gradient to scipy's L-BFGS-B.
- Extras, keyword-only: n_jobs (Numba threads), dtype (float32 or float64; default: keep
  float32 input float32, as scikit-learn does, else float64).

scikit-learn's own `_fit` drives a fit; the methods overridden here are the ones that do
numbers: `_initialize` (weights into one buffer), `_fit_stochastic`, `_fit_lbfgs` and
`_forward_pass_fast` (prediction). They follow scikit-learn >= 1.7's private interface.
"""
import copy
import warnings
from numbers import Integral

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SklearnMLPClassifier
from sklearn.neural_network import MLPRegressor as _SklearnMLPRegressor
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import validate_data

from ._kernels import backprop as K
from .network import DTYPES, Network
from ._threads import compute_threads
from .train import Trainer

# scikit-learn's "adaptive" schedule divides the rate by this when the loss stalls, and
# stops once the rate is at most MIN_ADAPTIVE_RATE.
ADAPTIVE_DIVISOR = 5.0
MIN_ADAPTIVE_RATE = 1e-6


class _FastbpMLP:
    """fastbp's arithmetic under scikit-learn's MLP classes (mixed in before them)."""

    _extra_constraints = {"n_jobs": [None, Integral], "dtype": "no_validation"}

    # -- data ----------------------------------------------------------------------------------
    def _fastbp_dtype(self, X):
        """The network's dtype: the `dtype` extra, else float32 for float32 X, else float64."""
        if self.dtype is None:
            return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}") from None
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}")
        return dtype

    def _dense(self, X, dtype):
        """X as the C-contiguous dense array the kernels read (sparse input is densified once)."""
        if scipy.sparse.issparse(X):
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=dtype)

    def _validate_input(self, X, y, incremental, reset):
        X, y = super()._validate_input(X, y, incremental, reset)
        if y.dtype.kind not in "biuf":  # scikit-learn's regressor fails on them with a TypeError
            raise TypeError(f"y must hold numbers for {type(self).__name__}, got dtype {y.dtype}")
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        keeps_network = hasattr(self, "_net") and (self.warm_start or incremental)
        if keeps_network and n_outputs != self._net.n_outputs:
            # checked before scikit-learn's _fit sets n_outputs_, so a refused call changes nothing
            raise ValueError(f"y has {n_outputs} output(s), but the network fitted before has "
                             f"{self._net.n_outputs}; fit a new model (warm_start=False) to "
                             "change them")
        dtype = self._fastbp_dtype(X) if reset or not hasattr(self, "_net") else self._net.dtype
        return self._dense(X, dtype), y

    # -- the one buffer ------------------------------------------------------------------------
    def _network_loss(self):
        return "log_loss" if is_classifier(self) else self.loss

    def _bind_network(self):
        """Move coefs_/intercepts_ into one fastbp Network; they become views of its params."""
        self._net = Network.from_coefs(self.coefs_, self.intercepts_, activation=self.activation,
                                       output_activation=self.out_activation_,
                                       loss=self._network_loss())
        self.coefs_ = list(self._net.coefs)
        self.intercepts_ = list(self._net.intercepts)

    def _network(self):
        """The Network behind coefs_/intercepts_, rebound if they were replaced (e.g. assigned
        by the user, or copies after unpickling) or if activation or loss were changed by
        set_params since (scikit-learn reads them afresh at every fit and predict)."""
        net = getattr(self, "_net", None)
        if net is None or len(self.coefs_) != len(net.coefs) or not all(
                a is b for a, b in zip(self.coefs_ + self.intercepts_, net.coefs + net.intercepts)) \
                or (net.activation, net.output_activation, net.loss) != \
                (self.activation, self.out_activation_, self._network_loss()):
            self._bind_network()
        return self._net

    def __getstate__(self):
        """The fitted weights once: coefs_/intercepts_ (rebuilt into one buffer on loading),
        not the Network too, nor the trainer's per-pass gradient scratch."""
        state = super().__getstate__()
        state.pop("_net", None)
        if "_trainer" in state:
            trainer = copy.copy(state["_trainer"])
            trainer.net = None  # __setstate__ hands it the rebuilt network
            trainer.weights_changed()
            trainer._buffers = {}
            state["_trainer"] = trainer
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "coefs_"):  # pickled coefs_ arrive as copies: one buffer of views again
            self._bind_network()
            if hasattr(self, "_trainer"):
                self._trainer.net = self._net

    def _initialize(self, y, layer_units, dtype):
        super()._initialize(y, layer_units, dtype)  # scikit-learn's Glorot draws, same stream
        self._bind_network()
        if hasattr(self, "_trainer"):
            del self._trainer

    def _fit(self, X, y, sample_weight=None, incremental=False):
        with compute_threads(self.n_jobs):
            return super()._fit(X, y, sample_weight=sample_weight, incremental=incremental)

    def _targets_and_weights(self, y, sample_weight, net):
        Y = np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=net.dtype)
        if sample_weight is None:
            return Y, np.empty(0, dtype=net.dtype)
        return Y, np.ascontiguousarray(sample_weight, dtype=net.dtype)

    def _data_loss_scale(self):
        """scikit-learn's squared error is averaged over outputs; its other losses are summed."""
        return 1.0 / self.n_outputs_ if self._network_loss() == "squared_error" else 1.0

    # -- prediction ----------------------------------------------------------------------------
    def _forward_pass_fast(self, X, check_input=True):
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._network()
        if scipy.sparse.issparse(X):
            X = X.toarray()
        if np.result_type(X.dtype, net.dtype) != net.dtype:
            # as scikit-learn's float64 (or integer) X @ float32 W: computed, and returned, in float64
            net = Network.from_coefs(net.coefs, net.intercepts, net.activation,
                                     net.output_activation, net.loss, dtype=np.float64)
        with compute_threads(self.n_jobs):
            return net.predict(self._dense(X, net.dtype))

    # -- stochastic solvers --------------------------------------------------------------------
    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads,
                        intercept_grads, layer_units, incremental):
        net = self._network()
        if not incremental or not hasattr(self, "_trainer"):
            # float(): scikit-learn's constraints let bools through as numbers (alpha=True is 1.0)
            self._trainer = Trainer(
                net, optimizer=self.solver,
                momentum=float(self.momentum) if self.solver == "sgd" else 0.0,
                nesterov=bool(self.nesterovs_momentum), alpha=float(self.alpha),
                beta_1=float(self.beta_1), beta_2=float(self.beta_2), epsilon=float(self.epsilon))
            self._learning_rate = float(self.learning_rate_init)
        trainer = self._trainer
        trainer.net = net
        trainer.hyper[K.ALPHA] = self.alpha

        # early_stopping in partial_fit doesn't make sense (scikit-learn's words and check)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            if sample_weight is None:
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, random_state=self._random_state, test_size=self.validation_fraction,
                    stratify=stratify)
                sample_weight_train = sample_weight_val = None
            else:
                X_train, X_val, y_train, y_val, sample_weight_train, sample_weight_val = \
                    train_test_split(X, y, sample_weight, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            X_train = np.ascontiguousarray(X_train)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = y_val = sample_weight_val = None

        n_samples = X_train.shape[0]
        Y_train, weights = self._targets_and_weights(y_train, sample_weight_train, net)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        trainer.mode = "case" if batch_size == 1 else "epoch" if batch_size == n_samples else "minibatch"
        trainer.batch_size = batch_size
        trainer.weights_changed()
        sample_idx = np.arange(n_samples, dtype=np.int64)
        natural = sample_idx.copy()
        data_scale = self._data_loss_scale()

        try:
            self.n_iter_ = 0
            for it in range(self.max_iter):
                if self.shuffle:
                    # scikit-learn's sklearn.utils.shuffle of the previous order, same stream
                    sample_idx = sample_idx[self._random_state.permutation(n_samples)]
                order = natural if trainer.mode == "epoch" else sample_idx
                (loss_sum, penalty_sum, _), _ = trainer.run_epoch(
                    X_train, Y_train, weights, order, self._learning_rate)

                self.n_iter_ += 1
                self.loss_ = (data_scale * loss_sum + penalty_sum) / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

                # update no_improvement_count based on training loss or
                # validation score according to early_stopping
                self._update_no_improvement_count(early_stopping, X_val, y_val, sample_weight_val)

                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._learning_rate = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t

                if self._no_improvement_count > self.n_iter_no_change:
                    # not better than last `n_iter_no_change` iterations by tol
                    # stop or decrease learning rate
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break

                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                                  "optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            # restore best weights, into the buffer so coefs_ stay its views
            for view, best in zip(self.coefs_ + self.intercepts_,
                                  self._best_coefs + self._best_intercepts):
                view[...] = best
            trainer.weights_changed()

    def _trigger_stopping(self, msg):
        """scikit-learn's optimizers' trigger_stopping: True to stop; 'adaptive' SGD divides
        the rate by 5 instead, until it is at most 1e-6."""
        if self.solver == "adam" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._learning_rate <= MIN_ADAPTIVE_RATE:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= ADAPTIVE_DIVISOR
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._learning_rate)
        return False

    # -- L-BFGS --------------------------------------------------------------------------------
    def _fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads,
                   layer_units):
        net = self._network()
        Y, weights = self._targets_and_weights(y, sample_weight, net)
        weight_sum = float(weights.sum()) if weights.shape[0] else float(X.shape[0])
        data_scale = self._data_loss_scale()

        def loss_and_gradient(packed):
            net.params[:] = packed
            loss, grad = net._loss_gradient(X, Y, self.alpha, weights)
            # As scikit-learn: the squared error is reported averaged over outputs while the
            # gradient is of the sum; the L2 term is alpha/(2 S) ||W||^2 either way.
            penalty = 0.5 * self.alpha * K.squared_weights(net.params, net.layout) / weight_sum
            return data_scale * (loss - penalty) + penalty, grad.astype(np.float64)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        opt_res = scipy.optimize.minimize(
            loss_and_gradient, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                     **_get_additional_lbfgs_options_dict("iprint", iprint)})
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        net.params[:] = opt_res.x


class MLPClassifier(_FastbpMLP, _SklearnMLPClassifier):
    """scikit-learn's MLPClassifier, trained by fastbp's compiled kernels.

    Same parameters, defaults, methods and fitted attributes as
    `sklearn.neural_network.MLPClassifier` (see its documentation); `coefs_` and
    `intercepts_` are views of one contiguous weight buffer. Extras, keyword-only:

    n_jobs : int or None, default=None
        Numba threads for the parallel kernels, as joblib counts them (None: Numba's
        default; -1: all; -2: all but one).
    dtype : {None, float32, float64}, default=None
        The network's dtype; None keeps float32 input float32, else float64.
    """

    _parameter_constraints = {**_SklearnMLPClassifier._parameter_constraints,
                              **_FastbpMLP._extra_constraints}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_jobs=None, dtype=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun)
        self.n_jobs = n_jobs
        self.dtype = dtype


class MLPRegressor(_FastbpMLP, _SklearnMLPRegressor):
    """scikit-learn's MLPRegressor, trained by fastbp's compiled kernels.

    Same parameters, defaults, methods and fitted attributes as
    `sklearn.neural_network.MLPRegressor` (see its documentation), including
    loss="poisson"; `coefs_` and `intercepts_` are views of one contiguous weight buffer.
    Extras, keyword-only: n_jobs and dtype, as for `fastbp.MLPClassifier`.
    """

    _parameter_constraints = {**_SklearnMLPRegressor._parameter_constraints,
                              **_FastbpMLP._extra_constraints}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_jobs=None, dtype=None):
        super().__init__(
            loss=loss, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun)
        self.n_jobs = n_jobs
        self.dtype = dtype
