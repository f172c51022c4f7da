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
  float32 input float32, as scikit-learn does, else float64), FANN's solvers "rprop" and
  "quickprop" with their parameters, leaky_relu/elu/softplus, dropout, a per-epoch
  callback, class_weight (classifier), and fit(..., validation_data=...).

scikit-learn's own `_fit` drives a fit; the methods overridden here are the ones that do
numbers: `_initialize` (weights into one buffer), `_fit_stochastic`, `_fit_lbfgs` and
`_forward_pass_fast` (prediction). They follow scikit-learn >= 1.7's private interface.
"""
import copy
import inspect
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SklearnMLPClassifier
from sklearn.neural_network import MLPRegressor as _SklearnMLPRegressor
from sklearn.neural_network import _multilayer_perceptron as _mlp
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import validate_data

from . import _kernels as K
from ._threads import compute_threads
from ._validation import check_dtype, is_dask_array
from .driver import DivergenceWarning, GivenOrders, Rules, Run, Trainer, Validation
from .io.estimator import register
from .network import DTYPES, HIDDEN_ACTIVATIONS, Network

# FANN's batch algorithms as extra solvers (full batch every epoch; train() checks their
# parameters). scikit-learn's _fit runs _fit_stochastic for the solvers in its module's
# _STOCHASTIC_SOLVERS list (and only then offers partial_fit): they join it. Its own
# classes are unaffected: their parameter validation refuses these solvers first.
BATCH_SOLVERS = ("rprop", "quickprop")
_SCIPY_TAKES_IPRINT = tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 15)
BATCH_SOLVER_PARAMS = ("rprop_increase_factor", "rprop_decrease_factor", "rprop_delta_min",
                       "rprop_delta_max", "rprop_delta_zero", "quickprop_decay", "quickprop_mu")
for _solver in BATCH_SOLVERS:
    if _solver not in _mlp._STOCHASTIC_SOLVERS:
        _mlp._STOCHASTIC_SOLVERS.append(_solver)


class _FastbpMLP:
    """fastbp's arithmetic under scikit-learn's MLP classes (mixed in before them)."""

    # the extras, and the hidden activations scikit-learn lacks (leaky_relu, elu, softplus)
    _extra_constraints = {"n_jobs": [None, Integral], "dtype": "no_validation",
                          "callback": [callable, None], "dropout": "no_validation",
                          "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
                          "solver": [StrOptions({"lbfgs", "sgd", "adam", *BATCH_SOLVERS})],
                          **{name: [Real] for name in BATCH_SOLVER_PARAMS}}

    def _init(self, sklearn_class, values):
        """__init__'s work, shared by both drop-ins: scikit-learn's own parameters to its
        __init__, then the extras as attributes, unchanged (scikit-learn's convention, which
        get_params and clone rely on). values: the caller's locals()."""
        own = inspect.signature(sklearn_class.__init__).parameters
        sklearn_class.__init__(self, **{name: values[name] for name in own if name != "self"})
        for name, value in values.items():
            if name not in own and name not in ("self", "__class__"):
                setattr(self, name, value)

    # -- data ----------------------------------------------------------------------------------
    def _fastbp_dtype(self, X):
        """The network's dtype: the `dtype` extra, else float32 for float32 X, else float64."""
        if self.dtype is None:
            return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)
        try:
            return check_dtype(self.dtype, "dtype", DTYPES)
        except ValueError:
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}") from None

    def _dense(self, X, dtype):
        """X as the C-contiguous dense array the kernels read (sparse input is densified once).
        Values beyond float32's range are refused rather than trained on as inf."""
        if scipy.sparse.issparse(X):
            X = X.toarray()
        with np.errstate(over="ignore"):
            dense = np.ascontiguousarray(X, dtype=dtype)
        if dense.dtype != X.dtype and dense.dtype == np.float32 and not np.isfinite(dense).all():
            raise ValueError("X holds values too large for float32 (they would become inf); "
                             "scale X or use dtype=np.float64")
        return dense

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
        not the Network too."""
        state = super().__getstate__()
        state.pop("_net", None)
        if "_trainer" in state:
            trainer = copy.copy(state["_trainer"])
            trainer.net = None  # __setstate__ hands it the rebuilt network
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

    def fit(self, X, y, sample_weight=None, *, validation_data=None):
        """scikit-learn's fit; validation_data=(X_val, y_val) (stochastic solvers) also records
        validation_loss_curve_ and validation_scores_ per epoch and, with
        early_stopping=True, stops on that set instead of a validation_fraction split."""
        self._validation_data = validation_data
        try:
            return super().fit(X, y, sample_weight=sample_weight)
        finally:
            del self._validation_data

    def _fit(self, X, y, sample_weight=None, incremental=False):
        # Checked before scikit-learn's _fit, which resets a fitted model before it fails on
        # these (a float layer size: TypeError in its initialisation; weights summing to 0:
        # ZeroDivisionError).
        sizes = self.hidden_layer_sizes
        for size in (sizes if hasattr(sizes, "__iter__") else [sizes]):
            if isinstance(size, bool) or not isinstance(size, Integral):
                raise ValueError(f"hidden_layer_sizes must hold integers, got {sizes!r}")
        if any(is_dask_array(a) for a in (X, y, sample_weight)):
            with compute_threads(self.n_jobs):
                return self._fit_dask(X, y, sample_weight, incremental)
        if sample_weight is not None:
            try:
                total = float(np.sum(np.asarray(sample_weight, dtype=np.float64)))
            except (TypeError, ValueError):
                total = None  # scikit-learn's own check says what is wrong
            if total == 0.0:
                raise ValueError("sample_weight sums to zero: no tuple would count")
        with compute_threads(self.n_jobs):
            return super()._fit(X, y, sample_weight=sample_weight, incremental=incremental)

    # -- Dask arrays: the full-batch solvers, their passes on the cluster ------------------------
    def _fit_dask(self, X, y, sample_weight, incremental):
        """scikit-learn's _fit for Dask arrays (fastbp.dask_arrays): the same checks, labels,
        initialisation and solvers, with X, y and sample_weight left where their blocks live
        (only the classes come to the client). The full-batch solvers only: rprop and
        quickprop (epoch updating on the cluster), lbfgs (its gradients there). A refused
        call, its data's values included, leaves the estimator as it was."""
        name = type(self).__name__
        if self.solver not in (*BATCH_SOLVERS, "lbfgs"):
            raise ValueError(f"{name} fits Dask arrays with the full-batch solvers 'rprop', "
                             f"'quickprop' and 'lbfgs', got solver={self.solver!r}: sgd and adam "
                             "update after every minibatch, each update needing the one before")
        if incremental:
            raise ValueError("partial_fit takes numpy arrays; on Dask arrays call fit "
                             "(warm_start=True goes on from the fitted weights)")
        if self.early_stopping and getattr(self, "_validation_data", None) is None:
            raise ValueError("early_stopping=True on Dask arrays needs fit(..., validation_data="
                             "(X_val, y_val)): a validation_fraction split of a Dask array is not made")
        if self.dropout is not None:
            raise ValueError("dropout is not supported on Dask arrays")
        hidden = list(self.hidden_layer_sizes) if hasattr(self.hidden_layer_sizes, "__iter__") \
            else [self.hidden_layer_sizes]
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        before = dict(self.__dict__)
        try:
            X, Y, weights = self._dask_data(X, y, sample_weight, hidden)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)  # as it was: weights, classes and counters
            raise
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, weights, None, None, None, None, None)
        else:
            self._fit_stochastic(X, Y, weights, None, None, None, None, None, False)
        if not np.isfinite(self._net.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _dask_data(self, X, y, sample_weight, hidden):
        """_fit_dask's checked (X, Y, weights), the estimator's labels, sizes and network set
        up for them (warm_start: kept)."""
        import dask.array as da
        from sklearn.preprocessing import LabelBinarizer
        from sklearn.utils import check_random_state

        from .dask_arrays import as_checkable, check_training_data, refuse_unknown_sizes, row_blocks

        name = type(self).__name__
        if not is_dask_array(X):
            raise TypeError("with a Dask y or sample_weight, X must be a Dask array too")
        refuse_unknown_sizes(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array, got {X.ndim}-D with shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        first_pass = not hasattr(self, "coefs_") or not self.warm_start
        if not first_pass and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                             f"{self.n_features_in_} features as input.")
        y = as_checkable(y, "y")
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(f"X and y have different numbers of rows: {X.shape[0]} and "
                             f"{y.shape[0] if y.ndim else 'none (a scalar)'}")
        y = row_blocks(y, X.chunks[0])
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if is_classifier(self):
            if y.ndim != 1:
                raise ValueError("on Dask arrays the classifier takes one label per row (1-D y)")
            classes = np.unique(da.unique(y).compute())  # (only the classes come here)
            if first_pass or not hasattr(self, "classes_"):
                self._label_binarizer = LabelBinarizer().fit(classes)
                self.classes_ = self._label_binarizer.classes_
            elif set(classes) != set(self.classes_):  # scikit-learn's warm_start rule
                raise ValueError("warm_start can only be used where `y` has the same classes as "
                                 f"in the previous call to fit. Previously got {self.classes_}, "
                                 f"`y` has {classes}")
            binarizer = self._label_binarizer
            n_outputs = len(binarizer.classes_) if binarizer.y_type_ == "multiclass" else 1
            Y = y.map_blocks(lambda b: binarizer.transform(b).astype(np.float64), new_axis=1,
                             chunks=(y.chunks[0], (n_outputs,)), dtype=np.float64)
        else:
            if y.dtype.kind not in "biuf":
                raise TypeError(f"y must hold numbers for {name}, got dtype {y.dtype}")
            Y = y if y.ndim == 2 else y[:, None]
        if not first_pass and Y.shape[1] != self._network().n_outputs:
            raise ValueError(f"y has {Y.shape[1]} output(s), but the network fitted before has "
                             f"{self._network().n_outputs}; fit a new model (warm_start=False) "
                             "to change them")
        self.n_outputs_ = Y.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self.n_features_in_ = X.shape[1]
            self.__dict__.pop("feature_names_in_", None)
            self._initialize(np.empty((0, self.n_outputs_)), [X.shape[1]] + hidden +
                             [self.n_outputs_], self._fastbp_dtype(X))
        return check_training_data(self._network(), X, Y, sample_weight)  # values: here

    def _targets_and_weights(self, y, sample_weight, net):
        if is_dask_array(y):  # checked and converted by _fit_dask (weights: None or Dask)
            return y, sample_weight
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
        """scikit-learn's stochastic loop as ONE fastbp run (fastbp.driver): its shuffles (drawn
        from the estimator's generator a slice of epochs at a time), schedules, no-improvement
        and early-stopping rules all run in the compiled run kernel; Python books the
        estimator's attributes, its verbose lines and the callback between slices."""
        net = self._network()
        if not incremental or not hasattr(self, "_trainer"):
            # float(): scikit-learn's constraints let bools through as numbers (alpha=True is 1.0)
            self._trainer = Trainer(
                net, mode="epoch" if self.solver in BATCH_SOLVERS else "case", optimizer=self.solver,
                momentum=float(self.momentum) if self.solver == "sgd" else 0.0,
                nesterov=bool(self.nesterovs_momentum), alpha=float(self.alpha),
                beta_1=float(self.beta_1), beta_2=float(self.beta_2), epsilon=float(self.epsilon),
                **{name: float(getattr(self, name)) for name in BATCH_SOLVER_PARAMS},
                dropout=self.dropout)
            self._learning_rate = float(self.learning_rate_init)
            if self._trainer.dropout is not None:  # the masks follow the estimator's generator
                self._trainer.dropout_seed = int(self._random_state.randint(0, 2 ** 62))
        trainer = self._trainer
        trainer.net = net
        trainer.hyper[K.ALPHA] = self.alpha

        # early_stopping in partial_fit doesn't make sense (scikit-learn's words and check)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        validation = self._validation(X, y, sample_weight, net, incremental)
        X_train, y_train, sample_weight_train = validation.pop("train")
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
        if self.solver in BATCH_SOLVERS:  # FANN's batch algorithms: every epoch one full batch
            trainer.mode, batch_size = "epoch", n_samples
        trainer.batch_size = batch_size

        schedule = K.SCHED_CONSTANT
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            schedule = K.SCHED_SAMPLES_INVSCALING
        elif self.solver == "sgd" and self.learning_rate == "adaptive":
            schedule = K.SCHED_ADAPTIVE
        rules = Rules(epochs=1 if incremental else self.max_iter, tol=float(self.tol),
                      n_iter_no_change=int(self.n_iter_no_change), early_stopping=early_stopping,
                      weight_change=False, sklearn=True, data_scale=self._data_loss_scale())
        dropout_seed = getattr(trainer, "dropout_seed", 0)
        trainer.runs = getattr(trainer, "runs", 0) + 1  # each call's dropout masks anew
        run = Run(trainer, X_train, Y_train, weights, rules,
                  learning_rate=float(self.learning_rate_init), schedule=schedule,
                  power_t=float(self.power_t),
                  seed=(dropout_seed + trainer.runs * 0x9E3779B97F4A7C15) % 2 ** 63,
                  orders=None if is_dask_array(X_train) else  # (a Dask fit: epoch updating)
                  GivenOrders(self._random_state, n_samples, self.shuffle),
                  validation=validation.get("run"))
        # what carries over from earlier fits (warm_start, partial_fit): scikit-learn's counters
        run.num[K.N_LR] = self._learning_rate
        run.ctl[K.C_SAMPLES] = self.t_
        run.ctl[K.C_NO_IMPROVEMENT] = self._no_improvement_count
        if early_stopping:
            run.num[K.N_BEST_VAL] = self.best_validation_score_
            if getattr(self, "_best_coefs", None) is not None:
                run.best[:] = np.concatenate([a.ravel() for a in self._best_coefs + self._best_intercepts])
        elif self.best_loss_ is not None:
            run.num[K.N_BEST_LOSS] = self.best_loss_

        self.n_iter_ = 0
        booked = [0]
        try:
            with run.threads(None):
                while not run.status:
                    first = run.epoch + 1
                    run.run_slice(run.next_end(per_epoch=self.callback is not None))
                    self._book(run, booked, validation)
                    if self.callback is not None and run.epoch == first and self.callback(self):
                        run.stop(K.STOP_CALLBACK)  # the user's per-epoch callback asked to stop
        except KeyboardInterrupt:
            # every epoch a kernel ran is whole: book them all (the orders drawn for epochs
            # that did not run go back to the generator)
            run.history.n_epochs = run.epoch
            if run.orders is not None:
                run.orders.settle(run.epoch - int(run.ctl[K.C_ORDERS_FIRST]) + 1)
            self._book(run, booked, validation)
            warnings.warn("Training interrupted by user.")
        self._finish(run, early_stopping, incremental)

    def _validation(self, X, y, sample_weight, net, incremental):
        """{"train": (X, y, sample_weight) to train on, "run": the run's Validation (absent
        without validation data)}: the user's validation_data, else scikit-learn's
        early-stopping split (same generator, same split)."""
        user_validation = getattr(self, "_validation_data", None)
        if user_validation is not None:  # the user's validation set instead of a split
            X_val, y_val = self._checked_validation(user_validation, net)
            Y_val = self._validation_targets(y_val, net)
            if self.validation_scores_ is None:
                self.validation_scores_ = []
            if not hasattr(self, "validation_loss_curve_") or not incremental:
                self.validation_loss_curve_ = []
            return {"train": (X, y, sample_weight),
                    "run": self._run_validation(X_val, Y_val, None, y_val)}
        if not self.early_stopping:
            return {"train": (X, y, sample_weight)}
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
        self.validation_loss_curve_ = []
        Y_val = np.ascontiguousarray(y_val.reshape(y_val.shape[0], -1), dtype=net.dtype)
        return {"train": (np.ascontiguousarray(X_train), y_train, sample_weight_train),
                "run": self._run_validation(X_val, Y_val, sample_weight_val, y_val)}

    def _run_validation(self, X_val, Y_val, sample_weight_val, y_val):
        """The run's Validation: the loss on Y_val (the network's targets), and scikit-learn's
        score, accuracy (on the binarized labels) or R^2 (on y as given, in float64)."""
        X_val = np.ascontiguousarray(X_val, dtype=Y_val.dtype)
        if is_classifier(self):
            score, Y_score = K.SCORE_ACCURACY, Y_val
        else:
            score, Y_score = K.SCORE_R2, np.asarray(y_val).reshape(len(y_val), -1)
        weights = None if sample_weight_val is None else np.asarray(sample_weight_val, np.float64)
        return Validation(X_val, Y_val, score=score,
                          Y_score=np.ascontiguousarray(Y_score, dtype=np.float64), weights=weights)

    def _book(self, run, booked, validation):
        """The epochs the run has done since the last call into scikit-learn's attributes
        (idempotent: a Ctrl-C anywhere leaves them agreeing with the weights), and its
        verbose lines."""
        start, done = booked[0], run.epoch
        buffer = run.history._buffer
        losses = buffer[K.H_LOSS, start:done].tolist()
        self.loss_curve_.extend(losses)
        self.n_iter_ = done
        if losses:
            self.loss_ = losses[-1]
        self.t_ = int(run.ctl[K.C_SAMPLES])
        self._no_improvement_count = int(run.ctl[K.C_NO_IMPROVEMENT])
        self._learning_rate = float(run.num[K.N_LR])
        if self.early_stopping:
            self.best_validation_score_ = float(run.num[K.N_BEST_VAL])
        else:
            self.best_loss_ = float(run.num[K.N_BEST_LOSS])
        if "run" in validation:
            scale = self._data_loss_scale()  # as loss_ counts the data term
            self.validation_loss_curve_.extend((scale * buffer[K.H_VAL_LOSS, start:done]).tolist())
            self.validation_scores_.extend(buffer[K.H_VAL_SCORE, start:done].tolist())
        booked[0] = done
        if self.verbose:
            for e in range(start, done):
                self._print_epoch(e, buffer)

    def _print_epoch(self, col, buffer):
        """scikit-learn's verbose lines for epoch col + 1."""
        print("Iteration %d, loss = %.8f" % (col + 1, buffer[K.H_LOSS, col]))
        if self.early_stopping:
            print("Validation score: %f" % buffer[K.H_VAL_SCORE, col])
        event = buffer[K.H_EVENT, col]
        if event == K.EVENT_NONE:
            return
        if self.early_stopping:
            msg = ("Validation score did not improve more than tol=%f for %d consecutive "
                   "epochs." % (self.tol, self.n_iter_no_change))
        else:
            msg = ("Training loss did not improve more than tol=%f for %d consecutive epochs."
                   % (self.tol, self.n_iter_no_change))
        if event == K.EVENT_STOP:
            print(msg + " Stopping.")
        elif event == K.EVENT_LR_TOO_SMALL:
            print(msg + " Learning rate too small. Stopping.")
        else:
            print(msg + " Setting learning rate to %f"
                  % (buffer[K.H_LEARNING_RATE, col] / K.ADAPTIVE_DIVISOR))

    def _finish(self, run, early_stopping, incremental):
        """After the last slice: divergence, scikit-learn's ConvergenceWarning, and the best
        validation epoch's weights back under early stopping."""
        best_kept = early_stopping and (run.ctl[K.C_BEST_EPOCH] > 0
                                        or getattr(self, "_best_coefs", None) is not None)
        if run.status == "diverged" and not best_kept:
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may "
                "contain large values and need to be preprocessed. (fastbp stopped "
                f"in epoch {int(run.ctl[K.C_DIVERGED_AT])}; the model keeps its weights after "
                f"epoch {self.n_iter_}.)")
        if run.status == "diverged":
            warnings.warn(f"Training diverged in epoch {int(run.ctl[K.C_DIVERGED_AT])}: "
                          "fastbp stopped there; the model keeps the weights of its best "
                          "validation epoch.", DivergenceWarning)
        curve = self.loss_curve_
        if not all(np.isfinite(curve)):
            first = next(k for k, loss in enumerate(curve) if not np.isfinite(loss)) + 1
            warnings.warn(f"overflow encountered in the training loss: it is {curve[first - 1]} "
                          f"from epoch {first} on (as in scikit-learn, training went on while the "
                          "weights stayed finite). Lower learning_rate_init or scale the data.",
                          RuntimeWarning)
        if run.status == "epochs" and not incremental:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % self.max_iter,
                          ConvergenceWarning)
        if early_stopping and best_kept:
            # the best weights into the buffer, so coefs_ stay its views
            if run.ctl[K.C_BEST_EPOCH] > 0:
                best = run.net.copy()  # (its own weights may be non-finite by now)
                best.params[:] = run.best
                self._best_coefs = [c.copy() for c in best.coefs]
                self._best_intercepts = [b.copy() for b in best.intercepts]
            for view, best in zip(self.coefs_ + self.intercepts_,
                                  self._best_coefs + self._best_intercepts):
                view[...] = best

    @property
    def _optimizer(self):
        """What scikit-learn's own _optimizer offers to read: its current learning_rate
        (lowered by "adaptive", set by "invscaling"; Adam's bias-corrected rate of the last
        step), learning_rate_init and, for Adam, t (the updates made)."""
        if not hasattr(self, "_trainer"):
            raise AttributeError("_optimizer: the estimator is not fitted")
        return _OptimizerView(self)

    def _checked_validation(self, validation_data, net):
        """The user's (X_val, y_val), checked as fit's X and y are."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_val, y_val = validation_data
        X_val = validate_data(self, X_val, accept_sparse=["csr", "csc"], reset=False)
        y_val = np.asarray(y_val)
        if y_val.shape[0] != X_val.shape[0]:
            raise ValueError(f"validation_data: X_val has {X_val.shape[0]} rows, y_val "
                             f"{y_val.shape[0]}")
        return self._dense(X_val, net.dtype), y_val

    def _validation_targets(self, y_val, net):
        if is_classifier(self):
            unseen = set(np.unique(y_val.ravel() if self._label_binarizer.y_type_ != "multilabel-indicator"
                                   else [])) - set(self.classes_)
            if unseen:
                raise ValueError(f"validation_data: y_val has classes not seen in y: {sorted(unseen)}")
            Y = self._label_binarizer.transform(y_val)
        else:
            Y = y_val
        return np.ascontiguousarray(np.asarray(Y).reshape(y_val.shape[0], -1), dtype=net.dtype)

    # -- L-BFGS --------------------------------------------------------------------------------
    def _fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads,
                   layer_units):
        if self.dropout is not None:
            raise ValueError("dropout works with the stochastic solvers (sgd, adam), not lbfgs")
        net = self._network()
        Y, weights = self._targets_and_weights(y, sample_weight, net)
        weight_sum = float(X.shape[0]) if weights is None or not weights.shape[0] else \
            float(weights.sum())  # (a Dask array's sum is computed on its workers)
        data_scale = self._data_loss_scale()

        def loss_and_gradient(packed):
            net.params[:] = packed
            loss, grad = net._loss_gradient(X, Y, weights, self.alpha)
            # As scikit-learn: the squared error is reported averaged over outputs while the
            # gradient is of the sum; the L2 term is alpha/(2 S) ||W||^2 either way.
            penalty = 0.5 * self.alpha * K.squared_weights(net.params, net.layout) / weight_sum
            return data_scale * (loss - penalty) + penalty, grad.astype(np.float64)

        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if _SCIPY_TAKES_IPRINT:  # as scikit-learn: SciPy 1.15 deprecated L-BFGS-B's iprint
            options["iprint"] = 1 if self.verbose is True or self.verbose >= 1 else -1
        opt_res = scipy.optimize.minimize(loss_and_gradient, net.params.astype(np.float64),
                                          method="L-BFGS-B", jac=True, options=options)
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        net.params[:] = opt_res.x


class _OptimizerView:
    """A fitted drop-in's _optimizer: scikit-learn's SGDOptimizer / AdamOptimizer attributes
    that its tests and users read, computed from fastbp's run state."""

    def __init__(self, est):
        trainer = est._trainer
        self.learning_rate_init = float(est.learning_rate_init)
        if trainer.optimizer == "adam":
            self.t = int(trainer.hyper[K.STEP])
            self.learning_rate = float(trainer.hyper[K.LR_T]) if self.t else self.learning_rate_init
        else:
            self.learning_rate = float(est._learning_rate)


@register
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
    rprop_increase_factor, rprop_decrease_factor, rprop_delta_min, rprop_delta_max,
    rprop_delta_zero, quickprop_decay, quickprop_mu : float
        FANN's parameters (and defaults) of solver="rprop" / "quickprop", which train on the
        full batch every epoch.
    callback : callable or None, default=None
        callback(estimator) after every epoch of a stochastic solver; True stops training.
    dropout : float, list of floats or None, default=None
        Inverted dropout of the hidden units (one rate, or one per hidden layer).
    class_weight : dict, "balanced" or None, default=None
        Each tuple's weight is multiplied by its class's.

    fit also takes validation_data=(X_val, y_val): see _FastbpMLP.fit.
    """

    _parameter_constraints = {**_SklearnMLPClassifier._parameter_constraints,
                              **_FastbpMLP._extra_constraints,
                              "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_jobs=None, dtype=None, rprop_increase_factor=1.2, rprop_decrease_factor=0.5,
                 rprop_delta_min=0.0, rprop_delta_max=50.0, rprop_delta_zero=0.1,
                 quickprop_decay=-0.0001, quickprop_mu=1.75, callback=None, class_weight=None,
                 dropout=None):
        self._init(_SklearnMLPClassifier, locals())

    def fit(self, X, y, sample_weight=None, *, validation_data=None):
        """scikit-learn's fit, plus validation_data (see fastbp's _FastbpMLP.fit) and the
        class_weight extra: each tuple's weight times its class's (a dict, or "balanced":
        n_samples / (n_classes * count of the class))."""
        if self.class_weight is not None and is_dask_array(y):
            raise ValueError("class_weight on Dask arrays: pass the weights as sample_weight")
        if self.class_weight is not None:
            from sklearn.utils.class_weight import compute_sample_weight
            weights = compute_sample_weight(self.class_weight, y)
            sample_weight = weights if sample_weight is None else \
                weights * np.asarray(sample_weight, dtype=np.float64)
        return super().fit(X, y, sample_weight=sample_weight, validation_data=validation_data)


@register
class MLPRegressor(_FastbpMLP, _SklearnMLPRegressor):
    """scikit-learn's MLPRegressor, trained by fastbp's compiled kernels.

    Same parameters, defaults, methods and fitted attributes as
    `sklearn.neural_network.MLPRegressor` (see its documentation), including
    loss="poisson"; `coefs_` and `intercepts_` are views of one contiguous weight buffer.
    Extras, keyword-only, as for `fastbp.MLPClassifier` (but class_weight).
    """

    _parameter_constraints = {**_SklearnMLPRegressor._parameter_constraints,
                              **_FastbpMLP._extra_constraints}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_jobs=None, dtype=None, rprop_increase_factor=1.2, rprop_decrease_factor=0.5,
                 rprop_delta_min=0.0, rprop_delta_max=50.0, rprop_delta_zero=0.1,
                 quickprop_decay=-0.0001, quickprop_mu=1.75, callback=None, dropout=None):
        self._init(_SklearnMLPRegressor, locals())
