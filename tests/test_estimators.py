"""fastbp.MLPClassifier / MLPRegressor as drop-ins for scikit-learn's: same numbers, one
weight buffer, the same API, output, warnings and errors.

Most tests fit scikit-learn's class and fastbp's with the same settings and random_state
and compare: fastbp follows scikit-learn's loop step by step, so in float64 the two agree
to rounding (~1e-13), and any real difference (a missed shuffle, a schedule step, an
off-by-one epoch) shows up far above the tolerances used here.
"""
import copy
import inspect
import pickle
import re
import warnings
from functools import cache

import joblib
import numpy as np
import pytest
import scipy.sparse
import sklearn.neural_network as sk
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

import fastbp

# Agreement between fastbp and scikit-learn in float64 (observed: <= ~3e-13).
RTOL, ATOL = 1e-8, 1e-10
N_ROWS = 300  # rows of each data set used: small, so the tests stay quick

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# -- data ----------------------------------------------------------------------------------


def _standardize(X):
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return (X - X.mean(axis=0)) / std


@cache
def cancer():
    """Binary: the first N_ROWS of load_breast_cancer, standardised."""
    X, y = load_breast_cancer(return_X_y=True)
    return _standardize(X[:N_ROWS]), y[:N_ROWS]


@cache
def digits():
    """10 classes: the first N_ROWS of load_digits, standardised."""
    X, y = load_digits(return_X_y=True)
    return _standardize(X[:N_ROWS]), y[:N_ROWS]


@cache
def diabetes():
    """Regression: the first N_ROWS of load_diabetes, X and y standardised."""
    X, y = load_diabetes(return_X_y=True)
    y = y[:N_ROWS]
    return _standardize(X[:N_ROWS]), (y - y.mean()) / y.std()


def pair(name, **params):
    """(scikit-learn's estimator, fastbp's) of class `name`, with the same params."""
    return getattr(sk, name)(**params), getattr(fastbp, name)(**params)


# Every fitted attribute scikit-learn's MLPs may set; each must exist on both or neither.
FITTED = ("coefs_", "intercepts_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
          "best_validation_score_", "n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_",
          "classes_", "n_features_in_", "feature_names_in_")


def assert_same_value(expected, got, name):
    if isinstance(expected, list) and expected and isinstance(expected[0], np.ndarray):
        assert len(got) == len(expected), name
        for e, g in zip(expected, got):
            assert g.shape == e.shape and g.dtype == e.dtype, name
            assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=name)
    elif isinstance(expected, str) or expected is None:
        assert got == expected, name
    elif isinstance(expected, np.ndarray) and expected.dtype.kind in "OUSb":
        assert_array_equal(got, expected, err_msg=name)
    else:
        assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float),
                        rtol=RTOL, atol=ATOL, err_msg=name)


def assert_same_fit(ref, est, X):
    """est (fastbp) carries the same fitted attributes as ref (scikit-learn) and predicts the same."""
    for name in FITTED:
        assert hasattr(est, name) == hasattr(ref, name), name
        if hasattr(ref, name):
            assert_same_value(getattr(ref, name), getattr(est, name), name)
    expected = ref.predict(X)
    if expected.dtype.kind == "f":  # regression
        assert_allclose(est.predict(X), expected, rtol=RTOL, atol=ATOL)
    else:
        assert_array_equal(est.predict(X), expected)
    if hasattr(ref, "predict_proba"):
        assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=ATOL)


def outcome(action):
    """What action() does: ("ok", None) or (exception type, message), and the warnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            action()
            result = ("ok", None)
        except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
            result = (type(exc), str(exc))
    return result, [(w.category, str(w.message)) for w in caught]


# -- parity with scikit-learn --------------------------------------------------------------

PARITY_CASES = [
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(16,), max_iter=5), False,
                 id="clf-adam"),
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(16,), solver="sgd", batch_size=1,
                                               max_iter=3, alpha=0.01), False,
                 id="clf-sgd-batch1-alpha"),
    # a rate too large for the stopping rule to hold: 'adaptive' divides it (checked below)
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(8,), solver="sgd",
                                               batch_size=N_ROWS, learning_rate="adaptive",
                                               learning_rate_init=1.0, n_iter_no_change=2,
                                               tol=1e-3, max_iter=40), False,
                 id="clf-sgd-fullbatch-adaptive"),
    pytest.param("MLPClassifier", digits, dict(hidden_layer_sizes=(20, 10), solver="sgd",
                                               learning_rate="invscaling", learning_rate_init=0.5,
                                               batch_size=64, max_iter=5, activation="tanh"), False,
                 id="clf-sgd-nesterov-invscaling-minibatch-tanh"),
    pytest.param("MLPClassifier", digits, dict(hidden_layer_sizes=(20,), early_stopping=True,
                                               max_iter=20), False,
                 id="clf-early-stopping"),
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20,
                                               activation="logistic"), False,
                 id="clf-lbfgs"),
    pytest.param("MLPRegressor", diabetes, dict(hidden_layer_sizes=(16,), max_iter=5), False,
                 id="reg-adam"),
    pytest.param("MLPRegressor", lambda: (diabetes()[0], diabetes()[1] - diabetes()[1].min()),
                 dict(loss="poisson", hidden_layer_sizes=(16,), max_iter=5), False,
                 id="reg-poisson"),
    pytest.param("MLPRegressor", lambda: (diabetes()[0], np.c_[diabetes()[1], -diabetes()[1]]),
                 dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20), False,
                 id="reg-lbfgs-2-outputs"),
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(16,), solver="sgd", batch_size=32,
                                               max_iter=3), True,
                 id="clf-sgd-minibatch-sample-weight"),
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20),
                 True, id="clf-lbfgs-sample-weight"),
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=1,
                                               max_iter=2, alpha=0.01), True,
                 id="clf-sgd-batch1-sample-weight"),
    pytest.param("MLPClassifier", digits, dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=50,
                                               momentum=0.5, nesterovs_momentum=False, max_iter=3),
                 False, id="clf-sgd-classic-momentum"),
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=1,
                                               momentum=0.0, max_iter=2), False,
                 id="clf-sgd-batch1-no-momentum"),
    pytest.param("MLPRegressor", lambda: (diabetes()[0], diabetes()[1] - diabetes()[1].min()),
                 dict(loss="poisson", hidden_layer_sizes=(8,), solver="sgd", batch_size=N_ROWS,
                      learning_rate_init=0.01, max_iter=5), False,
                 id="reg-poisson-sgd-fullbatch"),
    # scikit-learn's constraints let bools through as numbers: alpha=True is alpha=1.0
    pytest.param("MLPClassifier", cancer, dict(hidden_layer_sizes=(8,), solver="sgd", alpha=True,
                                               momentum=True, nesterovs_momentum=False,
                                               batch_size=32, max_iter=2), False,
                 id="clf-bool-hyperparameters"),
]


@pytest.mark.parametrize("name, data, params, weighted", PARITY_CASES)
def test_parity_with_sklearn(name, data, params, weighted):
    X, y = data()
    sample_weight = np.random.RandomState(1).rand(len(X)) if weighted else None
    ref, est = pair(name, random_state=0, **params)
    ref.fit(X, y, sample_weight=sample_weight)
    est.fit(X, y, sample_weight=sample_weight)
    assert_same_fit(ref, est, X)
    assert_allclose(est.score(X, y), ref.score(X, y), rtol=RTOL)
    if params.get("learning_rate") == "adaptive":
        assert ref._optimizer.learning_rate < params["learning_rate_init"]  # the schedule acted
    if params.get("solver", "adam") in ("sgd", "adam"):
        # the effective rate, where scikit-learn keeps it (its adaptive schedule lowers it)
        assert_allclose(est._optimizer.learning_rate, ref._optimizer.learning_rate, rtol=RTOL)


def test_early_stopping_survives_divergence_as_sklearn():
    """scikit-learn's test for its issue 29504: with early_stopping, a fit whose weights blow up
    does not raise; the last validation score is nan, the best weights are kept, and (unlike
    scikit-learn, which trains on with nan weights) it stops, with a DivergenceWarning."""
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
                  learning_rate="constant", learning_rate_init=1, shuffle=True, max_iter=20,
                  early_stopping=True, n_iter_no_change=10, random_state=0)
    ref, est = pair("MLPRegressor", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow (scikit-learn's numpy)
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y)
        with pytest.warns(fastbp.DivergenceWarning):
            est.fit(X, y)
    assert str(est.validation_scores_[-1]) == str(np.nan)
    assert isinstance(est.validation_scores_[-1], float)
    # scikit-learn trains on with nan weights to max_iter (a nan score never counts as "no
    # improvement"); fastbp stops at the first non-finite epoch: the same best weights
    assert est.n_iter_ < ref.n_iter_ and len(est.validation_scores_) == est.n_iter_
    assert_allclose(est.validation_scores_, ref.validation_scores_[:est.n_iter_], rtol=RTOL)
    assert_allclose(est.best_validation_score_, ref.best_validation_score_, rtol=RTOL)
    assert all(np.isfinite(w).all() for w in est.coefs_ + est.intercepts_)
    assert_allclose(est.predict(X), ref.predict(X), rtol=RTOL, atol=1e-12)


def test_parity_early_stopping_actually_stops_and_restores():
    """Early stopping that triggers before max_iter: same stop epoch, same restored best weights."""
    X, y = digits()
    params = dict(hidden_layer_sizes=(20,), early_stopping=True, n_iter_no_change=2,
                  learning_rate_init=0.01, max_iter=100, random_state=0)
    ref, est = pair("MLPClassifier", **params)
    ref.fit(X, y)
    est.fit(X, y)
    assert est.n_iter_ < params["max_iter"]  # it stopped early, so best weights were restored
    assert_same_fit(ref, est, X)


# -- one buffer ----------------------------------------------------------------------------


def assert_views_of_buffer(est):
    params = est._net.params
    for array in est.coefs_ + est.intercepts_:
        assert np.shares_memory(array, params)
    # together they are the whole buffer, nothing else
    assert sum(a.size for a in est.coefs_ + est.intercepts_) == params.size


def test_coefs_and_intercepts_are_views_of_one_buffer():
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8, 4), max_iter=3, random_state=0)
    ref.fit(X, y)
    est.fit(X, y)
    assert_views_of_buffer(est)
    before = est.predict_proba(X)

    # writing a view writes the buffer the kernels read
    est.coefs_[0][0, 0] += 1.0
    ref.coefs_[0][0, 0] += 1.0
    assert est._net.params[0] == est.coefs_[0][0, 0]
    assert not np.allclose(est.predict_proba(X), before)
    assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=ATOL)

    # and writing the buffer shows through the views
    est._net.params[:] = 0.0
    assert all(not a.any() for a in est.coefs_ + est.intercepts_)


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_views_rebuilt_after_loading(how, tmp_path):
    X, y = cancer()
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert_array_equal(loaded.predict(X), est.predict(X))
    assert_views_of_buffer(loaded)
    assert not np.shares_memory(loaded._net.params, est._net.params)
    # the loaded model's views drive its predictions
    loaded.coefs_[0][0, 0] += 1.0
    assert not np.allclose(loaded.predict_proba(X), est.predict_proba(X))


def test_reference_to_coefs_taken_after_loading_stays_live():
    """As in scikit-learn, loaded.coefs_[0] is the array the loaded model uses, from the start."""
    X, y = cancer()
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    first_layer = loaded.coefs_[0]
    before = loaded.predict_proba(X)
    first_layer[...] = 0.0
    assert not np.allclose(loaded.predict_proba(X), before)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_assigned_coefs_survive_saving(how):
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    for model in (ref, est):
        model.fit(X, y)
        model.coefs_ = [2.0 * c for c in model.coefs_]  # replaced, not written in place
    loaded = pickle.loads(pickle.dumps(est)) if how == "pickle" else copy.deepcopy(est)
    assert_allclose(loaded.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=ATOL)
    assert_views_of_buffer(loaded)


def test_restored_best_weights_are_views():
    X, y = digits()
    est = fastbp.MLPClassifier(hidden_layer_sizes=(20,), early_stopping=True, n_iter_no_change=2,
                               learning_rate_init=0.01, max_iter=100, random_state=0).fit(X, y)
    assert est.n_iter_ < 100
    assert_views_of_buffer(est)
    for coef, best in zip(est.coefs_ + est.intercepts_, est._best_coefs + est._best_intercepts):
        assert_array_equal(coef, best)


# -- API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_constructor_is_sklearns_plus_keyword_only_extras(name):
    ours = inspect.signature(getattr(fastbp, name)).parameters
    theirs = inspect.signature(getattr(sk, name)).parameters
    assert list(ours)[:len(theirs)] == list(theirs)  # same names, same order
    for p in theirs.values():
        assert (ours[p.name].kind, ours[p.name].default) == (p.kind, p.default), p.name
    extras = {k: ours[k] for k in list(ours)[len(theirs):]}
    batch = ["rprop_increase_factor", "rprop_decrease_factor", "rprop_delta_min",
             "rprop_delta_max", "rprop_delta_zero", "quickprop_decay", "quickprop_mu"]
    tail = ["callback", "class_weight", "dropout"] if name == "MLPClassifier" else ["callback", "dropout"]
    assert list(extras) == ["n_jobs", "dtype", *batch, *tail]
    assert all(p.kind is p.KEYWORD_ONLY for p in extras.values())
    assert extras["n_jobs"].default is None and extras["dtype"].default is None
    # FANN's defaults for its batch algorithms
    assert [extras[k].default for k in batch] == [1.2, 0.5, 0.0, 50.0, 0.1, -0.0001, 1.75]


def test_pipeline():
    X, y = load_breast_cancer(return_X_y=True)  # raw scale: the scaler matters
    X, y = X[:N_ROWS], y[:N_ROWS]
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), max_iter=50, random_state=0)
    ref_pipe = make_pipeline(StandardScaler(), ref).fit(X, y)
    pipe = make_pipeline(StandardScaler(), est).fit(X, y)
    assert_array_equal(pipe.predict(X), ref_pipe.predict(X))
    assert_allclose(pipe.predict_proba(X), ref_pipe.predict_proba(X), rtol=RTOL, atol=ATOL)
    assert pipe.score(X, y) == ref_pipe.score(X, y) > 0.9


def test_grid_search_cv_two_jobs():
    X, y = cancer()
    grid = {"hidden_layer_sizes": [(4,), (8,)]}
    ref, est = pair("MLPClassifier", max_iter=10, random_state=0)
    # compile (or load from the disk cache) fit and predict here, once, not in each worker
    est.fit(X, y).predict(X)
    ref_search = GridSearchCV(ref, grid, cv=3).fit(X, y)
    search = GridSearchCV(est, grid, cv=3, n_jobs=2).fit(X, y)
    assert search.best_params_ == ref_search.best_params_
    assert_allclose(search.cv_results_["mean_test_score"], ref_search.cv_results_["mean_test_score"])
    assert isinstance(search.best_estimator_, fastbp.MLPClassifier)
    assert_same_fit(ref_search.best_estimator_, search.best_estimator_, X)


def test_cross_val_score():
    X, y = diabetes()
    ref, est = pair("MLPRegressor", hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    scores = cross_val_score(est, X, y, cv=3)
    assert_allclose(scores, cross_val_score(ref, X, y, cv=3), rtol=RTOL, atol=ATOL)


def test_clone_and_get_params():
    X, y = cancer()
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, n_jobs=1,
                               dtype=np.float64)
    params = est.get_params()
    assert params["n_jobs"] == 1 and params["dtype"] is np.float64
    assert set(params) - set(sk.MLPClassifier().get_params()) == {
        "n_jobs", "dtype", "rprop_increase_factor", "rprop_decrease_factor", "rprop_delta_min",
        "rprop_delta_max", "rprop_delta_zero", "quickprop_decay", "quickprop_mu", "callback",
        "class_weight", "dropout"}

    est.fit(X, y)
    copy = clone(est)
    assert type(copy) is fastbp.MLPClassifier
    assert copy.get_params() == params
    assert not any(hasattr(copy, name) for name in FITTED + ("_net",))
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    assert_array_equal(copy.fit(X, y).predict_proba(X), est.predict_proba(X))


def test_n_jobs_extra_changes_threads_not_results():
    numba = pytest.importorskip("numba")
    X, y = cancer()
    threads = numba.get_num_threads()
    fits = [fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                                 n_jobs=n_jobs).fit(X, y) for n_jobs in (1, 2, -1, -2)]
    assert numba.get_num_threads() == threads  # restored after each fit
    for est in fits[1:]:
        for a, b in zip(est.coefs_ + est.intercepts_, fits[0].coefs_ + fits[0].intercepts_):
            assert_array_equal(a, b)


@pytest.mark.parametrize("how", ["pickle", "joblib"])
@pytest.mark.parametrize("name, data", [("MLPClassifier", cancer), ("MLPRegressor", diabetes)])
def test_pickle_round_trip(how, name, data, tmp_path):
    X, y = data()
    est = getattr(fastbp, name)(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    assert type(loaded) is type(est)
    assert_array_equal(loaded.predict(X), est.predict(X))
    if hasattr(est, "predict_proba"):
        assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.get_params() == est.get_params()
    assert loaded.loss_curve_ == est.loss_curve_


@pytest.mark.parametrize("batch_size", [1, 32, N_ROWS])
def test_pickle_holds_the_weights_once(batch_size):
    """A pickle carries coefs_/intercepts_ and the optimizer's state, as scikit-learn's does,
    not a second copy of the weights or per-pass gradient scratch."""
    X, y = digits()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(50,), solver="sgd", batch_size=batch_size,
                    max_iter=2, random_state=0)
    ref.fit(X, y)
    est.fit(X, y)
    assert len(pickle.dumps(est)) < 1.2 * len(pickle.dumps(ref))
    loaded = pickle.loads(pickle.dumps(est))
    assert_views_of_buffer(loaded)
    for model in (loaded, est, ref):  # training goes on from the same optimizer state
        model.partial_fit(X, y)
    assert_array_equal(loaded._net.params, est._net.params)
    assert_same_fit(ref, loaded, X)


@pytest.mark.parametrize("name, data, solver", [
    ("MLPClassifier", cancer, "sgd"),
    ("MLPClassifier", digits, "adam"),
    ("MLPRegressor", diabetes, "adam"),
])
def test_partial_fit_matches_sklearn(name, data, solver):
    X, y = data()
    classes = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    ref, est = pair(name, hidden_layer_sizes=(8,), solver=solver, batch_size=32, random_state=0)
    chunks = np.array_split(np.arange(len(X)), 3)
    for i, rows in enumerate(chunks):
        extra = classes if i == 0 else {}  # classes= is only needed on the first call
        assert ref.partial_fit(X[rows], y[rows], **extra) is ref
        assert est.partial_fit(X[rows], y[rows], **extra) is est
        assert_same_fit(ref, est, X)
    assert est.n_iter_ == 1 and est.t_ == len(X) and len(est.loss_curve_) == len(chunks)


def test_partial_fit_with_sample_weight_matches_sklearn():
    X, y = cancer()
    weights = np.random.RandomState(2).rand(len(X))
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), solver="sgd", batch_size=25,
                    random_state=0)
    for rows in np.array_split(np.arange(len(X)), 2):
        for model in (ref, est):
            model.partial_fit(X[rows], y[rows], sample_weight=weights[rows], classes=[0, 1])
        assert_same_fit(ref, est, X)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_matches_sklearn(solver):
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), solver=solver, warm_start=True,
                    max_iter=3, random_state=0)
    for max_iter in (3, 4):
        ref.set_params(max_iter=max_iter).fit(X, y)
        est.set_params(max_iter=max_iter).fit(X, y)
        assert_same_fit(ref, est, X)
    if solver != "lbfgs":
        assert len(est.loss_curve_) == 7 and est.t_ == 7 * len(X)


@pytest.mark.parametrize("how", ["warm_start", "partial_fit", "predict"])
def test_activation_changed_by_set_params_is_used_as_sklearn(how):
    """scikit-learn reads `activation` afresh at every fit and predict; so does fastbp."""
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), solver="sgd", batch_size=32,
                    max_iter=2, warm_start=how == "warm_start", random_state=0)
    for model in (ref, est):
        if how == "partial_fit":
            model.partial_fit(X, y, classes=[0, 1])
        else:
            model.fit(X, y)
        model.set_params(activation="tanh")
        if how == "partial_fit":
            model.partial_fit(X, y)
        elif how == "warm_start":
            model.fit(X, y)
    assert_same_fit(ref, est, X)
    assert est._net.activation == "tanh"
    assert_views_of_buffer(est)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("before, after", [(1, 2), (2, 1)])
def test_changed_number_of_outputs_refused_and_model_kept(how, before, after):
    """A fitted network has as many outputs as its first targets had columns; targets of
    another width are refused (scikit-learn fails on most of these, or broadcasts one column
    over two outputs) and the model stays as it was."""
    X, y = diabetes()
    targets = {1: y, 2: np.c_[y, -y]}
    est = fastbp.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", batch_size=1, max_iter=2,
                              warm_start=how == "warm_start", random_state=0)
    train = est.partial_fit if how == "partial_fit" else est.fit
    train(X, targets[before])
    weights = est._net.params.copy()
    with pytest.raises(ValueError, match=f"y has {after} output.*has {before}"):
        train(X, targets[after])
    assert_array_equal(est._net.params, weights)
    assert est.n_outputs_ == before and est.coefs_[-1].shape[1] == before
    assert est.predict(X).shape == (y.shape if before == 1 else (len(y), 2))


def test_set_params():
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    est.fit(X, y)
    assert est.set_params(hidden_layer_sizes=(5,), alpha=0.1, n_jobs=1) is est
    assert est.get_params()["hidden_layer_sizes"] == (5,) and est.alpha == 0.1 and est.n_jobs == 1
    est.fit(X, y)
    assert est.coefs_[0].shape == (X.shape[1], 5)
    assert_views_of_buffer(est)
    ref.set_params(hidden_layer_sizes=(5,), alpha=0.1).fit(X, y)
    assert_same_fit(ref, est, X)
    (ref_error, _), (error, _) = (outcome(lambda e=e: e.set_params(no_such_param=1)) for e in (ref, est))
    assert error[0] is ref_error[0] is ValueError and "no_such_param" in error[1]


# -- verbose output and warnings -----------------------------------------------------------


@pytest.mark.parametrize("params, must_print", [
    # sgd 'adaptive' with a rate too large: the loss stalls and the rate is divided by 5
    (dict(solver="sgd", learning_rate="adaptive", learning_rate_init=1.0, batch_size=N_ROWS,
          n_iter_no_change=2, tol=1e-3, max_iter=40), "Setting learning rate to"),
    (dict(early_stopping=True, n_iter_no_change=2, learning_rate_init=0.01, max_iter=100),
     "Validation score did not improve"),
])
def test_verbose_output_is_sklearns(params, must_print, capsys):
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), verbose=True, random_state=0, **params)
    capsys.readouterr()
    ref.fit(X, y)
    expected = capsys.readouterr().out
    est.fit(X, y)
    got = capsys.readouterr().out
    assert must_print in expected and "Iteration 1, loss = " in expected
    assert got == expected


@pytest.mark.parametrize("solver, message", [
    ("sgd", r"Stochastic Optimizer: Maximum iterations \(3\) reached"),
    ("adam", r"Stochastic Optimizer: Maximum iterations \(3\) reached"),
    ("lbfgs", r"lbfgs failed to converge"),
])
def test_convergence_warning_at_max_iter(solver, message):
    X, y = cancer()
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=message):
        est.fit(X, y)
    assert est.n_iter_ == 3


def test_batch_size_clipping_warns_as_sklearn():
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(4,), solver="sgd", batch_size=10 * N_ROWS,
                    max_iter=2, random_state=0)
    (ref_result, ref_warnings), (result, caught) = outcome(lambda: ref.fit(X, y)), outcome(lambda: est.fit(X, y))
    assert result == ref_result == ("ok", None)
    assert caught == ref_warnings and any("batch_size" in message for _, message in caught)
    assert_same_fit(ref, est, X)


# -- data ----------------------------------------------------------------------------------


def multilabel():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    Y = np.c_[X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5].astype(int)
    return X, Y


@pytest.mark.parametrize("name, data, output", [
    ("MLPClassifier", cancer, "logistic"),
    ("MLPClassifier", digits, "softmax"),
    ("MLPClassifier", multilabel, "logistic"),
    ("MLPRegressor", lambda: (diabetes()[0], np.c_[diabetes()[1], diabetes()[1] ** 2]), "identity"),
], ids=["binary", "multiclass", "multilabel", "multioutput-regression"])
def test_targets(name, data, output):
    X, y = data()
    ref, est = pair(name, hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    ref.fit(X, y)
    est.fit(X, y)
    assert est.out_activation_ == output
    assert est.predict(X).shape == y.shape
    assert_same_fit(ref, est, X)


def test_string_labels():
    X, y = digits()
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    ref.fit(X, labels[y])
    est.fit(X, labels[y])
    assert_array_equal(est.classes_, np.sort(labels))
    assert set(est.predict(X)) <= set(labels)
    assert_same_fit(ref, est, X)


def test_single_class_accepted_as_sklearn():
    """scikit-learn does not reject y with one class (it fits, and predicts that class)."""
    X, _ = cancer()
    y = np.full(len(X), 7)
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    assert outcome(lambda: est.fit(X, y)) == outcome(lambda: ref.fit(X, y))
    assert_array_equal(est.predict(X), y)
    assert_same_fit(ref, est, X)


def test_pandas_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = cancer()
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    ref.fit(frame, pd.Series(y))
    est.fit(frame, pd.Series(y))
    assert_array_equal(est.feature_names_in_, columns)
    assert_same_fit(ref, est, frame)
    # other column names, and no names at all: scikit-learn's error / warning, word for word
    renamed = frame.rename(columns=lambda c: "g" + c[1:])
    for X_other in (renamed, frame[columns[::-1]], X):
        ref_outcome = outcome(lambda X_other=X_other: ref.predict(X_other))
        got = outcome(lambda X_other=X_other: est.predict(X_other))
        assert got == ref_outcome
        (result, _), caught = got
        assert result is ValueError or any("feature names" in m for _, m in caught)


def test_float32_stays_float32():
    X, y = cancer()
    X32 = X.astype(np.float32)
    # full batch: the float32 kernels are the ones the sklearn checks compile anyway
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), batch_size=N_ROWS, max_iter=3,
                    random_state=0)
    ref.fit(X32, y)
    est.fit(X32, y)
    assert est._net.params.dtype == np.float32
    assert all(a.dtype == np.float32 for a in est.coefs_ + est.intercepts_)
    proba = est.predict_proba(X32)
    assert proba.dtype == ref.predict_proba(X32).dtype == np.float32
    # float32 rounding: agreement to ~1e-6, not 1e-13
    assert_allclose(proba, ref.predict_proba(X32), rtol=1e-4, atol=1e-5)
    for a, b in zip(est.coefs_, ref.coefs_):
        assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    # the dtype extra overrides: float64 input into a float32 network
    est32 = fastbp.MLPClassifier(hidden_layer_sizes=(8,), batch_size=N_ROWS, max_iter=3,
                                 random_state=0, dtype=np.float32).fit(X, y)
    assert est32.coefs_[0].dtype == np.float32 and est32.predict_proba(X32).dtype == np.float32
    assert_allclose(est32.coefs_[0], est.coefs_[0], rtol=1e-4, atol=1e-5)


def test_float32_model_on_float64_input_predicts_float64_as_sklearn():
    """scikit-learn computes float64 X @ float32 W in float64, and returns float64."""
    X, y = cancer()
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), batch_size=N_ROWS, max_iter=3,
                    random_state=0)
    ref.fit(X.astype(np.float32), y)
    est.fit(X.astype(np.float32), y)
    assert est.predict_proba(X).dtype == ref.predict_proba(X).dtype == np.float64
    assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_float32_model_on_integer_input_predicts_float64_as_sklearn():
    X, y = cancer()
    X_int = np.round(X * 3).astype(np.int64)
    ref, est = pair("MLPClassifier", hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    ref.fit(X.astype(np.float32), y)
    est.fit(X.astype(np.float32), y)
    assert est.predict_proba(X_int).dtype == ref.predict_proba(X_int).dtype == np.float64
    assert_allclose(est.predict_proba(X_int), ref.predict_proba(X_int), rtol=1e-4, atol=1e-5)


def test_dtype_float64_extra_makes_float32_input_a_float64_network():
    X, y = cancer()
    X32 = X.astype(np.float32)
    ref = sk.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X32.astype(np.float64), y)
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                               dtype=np.float64).fit(X32, y)
    assert est._net.params.dtype == np.float64
    assert est.predict_proba(X32).dtype == np.float64
    assert_same_fit(ref, est, X32.astype(np.float64))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_same_as_dense(fmt):
    X, y = cancer()
    X = np.where(np.abs(X) < 0.5, 0.0, X)  # mostly zeros, as sparse data is
    Xs = scipy.sparse.csr_matrix(X) if fmt == "csr" else scipy.sparse.csc_matrix(X)
    dense = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    sparse = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(Xs, y)
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        assert_array_equal(a, b)
    assert_array_equal(sparse.predict_proba(Xs), dense.predict_proba(X))
    assert_array_equal(dense.predict_proba(Xs), dense.predict_proba(X))
    ref = sk.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(Xs, y)
    assert_same_fit(ref, sparse, Xs)


# -- bad input -----------------------------------------------------------------------------

_rng = np.random.RandomState(0)
X_SMALL = _rng.normal(size=(40, 3))
Y_SMALL = (X_SMALL[:, 0] > 0).astype(int)
X_NAN = X_SMALL.copy()
X_NAN[1, 1] = np.nan
X_INF = X_SMALL.copy()
X_INF[2, 0] = np.inf


def _fit(X=X_SMALL, y=Y_SMALL, **params):
    return lambda cls: cls(**{"max_iter": 3, **params}).fit(X, y)


def _partial_fit(**params):
    return lambda cls: cls(**params).partial_fit(X_SMALL, Y_SMALL, classes=[0, 1])


# (what is done to an MLPClassifier class, a pattern its error message must match)
BAD_INPUTS = {
    "nan-in-X": (_fit(X=X_NAN), "NaN"),
    "inf-in-X": (_fit(X=X_INF), "infinity"),
    "nan-at-predict": (lambda cls: _fit()(cls).predict(X_NAN), "NaN"),
    "complex-X": (_fit(X=X_SMALL + 1j), "Complex"),
    "empty-X": (_fit(X=X_SMALL[:0], y=Y_SMALL[:0]), "0 sample"),
    "y-length": (_fit(y=Y_SMALL[:-1]), "inconsistent numbers of samples"),
    "continuous-y": (_fit(y=X_SMALL[:, 0]), "Unknown label type"),
    "sample-weight-shape": (lambda cls: cls(max_iter=3).fit(X_SMALL, Y_SMALL, sample_weight=np.ones(3)),
                            "sample_weight"),
    "n-features-at-predict": (lambda cls: _fit()(cls).predict(X_SMALL[:, :2]), "2 features.*expecting 3"),
    "hidden-layer-sizes-0": (_fit(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    "solver-foo": (_fit(solver="foo"), "'solver' parameter"),
    "activation-foo": (_fit(activation="foo"), "'activation' parameter"),
    "learning-rate-foo": (_fit(learning_rate="foo"), "'learning_rate' parameter"),
    "alpha-negative": (_fit(alpha=-1), "'alpha' parameter"),
    "batch-size-0": (_fit(batch_size=0), "'batch_size' parameter"),
    "learning-rate-init-0": (_fit(learning_rate_init=0), "'learning_rate_init' parameter"),
    "momentum-2": (_fit(momentum=2), "'momentum' parameter"),
    "beta-1-is-1": (_fit(beta_1=1), "'beta_1' parameter"),
    "validation-fraction-1": (_fit(validation_fraction=1), "'validation_fraction' parameter"),
    "n-iter-no-change-0": (_fit(n_iter_no_change=0), "'n_iter_no_change' parameter"),
    "early-stopping-with-partial-fit": (_partial_fit(early_stopping=True), "early_stopping"),
    "predict-before-fit": (lambda cls: cls().predict(X_SMALL), "not fitted"),
    "partial-fit-with-lbfgs": (_partial_fit(solver="lbfgs"), "partial_fit"),
    "partial-fit-without-classes": (lambda cls: cls().partial_fit(X_SMALL, Y_SMALL), "classes"),
    "partial-fit-unseen-class": (lambda cls: _partial_fit()(cls).partial_fit(X_SMALL, Y_SMALL + 2),
                                 "classes not in"),
    "partial-fit-n-features": (lambda cls: _partial_fit()(cls).partial_fit(X_SMALL[:, :2], Y_SMALL),
                               "2 features.*expecting 3"),
    "nan-in-y": (_fit(y=np.where(np.arange(len(Y_SMALL)) == 3, np.nan, Y_SMALL)), "y contains NaN"),
    "strings-in-X": (_fit(X=np.full(X_SMALL.shape, "a", dtype=object)), "could not convert string"),
    "max-iter-0": (_fit(max_iter=0), "'max_iter' parameter"),
}


@pytest.mark.parametrize("action, pattern", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_rejected_as_sklearn(action, pattern):
    expected, _ = outcome(lambda: action(sk.MLPClassifier))
    got, _ = outcome(lambda: action(fastbp.MLPClassifier))
    assert expected != "ok" and re.search(pattern, expected[1])  # the case is one sklearn rejects
    assert got[0] is expected[0]
    assert re.search(pattern, got[1])
    if "activation" in expected[1] or "'solver'" in expected[1]:  # fastbp lists its extras too
        assert got[1].split(" among ")[0] == expected[1].split(" among ")[0]
        assert ("leaky_relu" in got[1] or "rprop" in got[1]) and got[1].endswith("Got 'foo' instead.")
    else:
        assert got[1] == expected[1]


@pytest.mark.parametrize("action", [
    lambda cls: cls(max_iter=3).fit(X_NAN, X_SMALL[:, 0]),
    lambda cls: cls(max_iter=3).fit(X_SMALL, X_SMALL[:, 0]).predict(X_SMALL[:, :2]),
], ids=["nan-in-X", "n-features-at-predict"])
def test_regressor_bad_input_rejected_as_sklearn(action):
    expected, _ = outcome(lambda: action(sk.MLPRegressor))
    got, _ = outcome(lambda: action(fastbp.MLPRegressor))
    assert expected[0] is ValueError and got == expected


def test_regressor_string_targets_are_a_type_error_as_sklearn():
    for cls in (sk.MLPRegressor, fastbp.MLPRegressor):
        with pytest.raises(TypeError):
            cls(max_iter=3).fit(X_SMALL, np.array(["a"] * len(X_SMALL)))
    with pytest.raises(TypeError, match="y must hold numbers"):
        fastbp.MLPRegressor(max_iter=3).fit(X_SMALL, np.array(["a"] * len(X_SMALL)))


@pytest.mark.parametrize("extra, pattern", [
    (dict(dtype="float16"), "dtype"),
    (dict(dtype=np.int32), "dtype"),
    (dict(dtype="foo"), "dtype"),  # not a dtype numpy knows (np.dtype raises TypeError)
    (dict(n_jobs=0), "n_jobs"),
    (dict(n_jobs=1.5), "n_jobs"),
])
def test_bad_extras(extra, pattern):
    """The extras scikit-learn does not have: fastbp alone says what is wrong."""
    with pytest.raises(ValueError, match=pattern):
        fastbp.MLPClassifier(max_iter=3, **extra).fit(X_SMALL, Y_SMALL)


def test_an_overflowing_loss_goes_on_as_in_scikit_learn():
    """Issue 16: MLPRegressor(solver="sgd", learning_rate_init=1e6) on diabetes. scikit-learn
    books an infinite loss and trains on while the weights stay finite (stopping by its tol
    rule); the drop-in does the same, with a RuntimeWarning as scikit-learn's overflow one."""
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True)
    params = dict(solver="sgd", learning_rate_init=1e6, random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.MLPRegressor(**params).fit(X, y)
    with pytest.warns(RuntimeWarning, match="overflow encountered in the training loss"):
        est = fastbp.MLPRegressor(**params).fit(X, y)
    assert not np.isfinite(ref.loss_) and not np.isfinite(est.loss_)
    assert est.n_iter_ == ref.n_iter_ and len(est.loss_curve_) == len(ref.loss_curve_)
    assert [np.isfinite(v) for v in est.loss_curve_] == [np.isfinite(v) for v in ref.loss_curve_]
    assert all(np.isfinite(c).all() for c in est.coefs_)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-9)
