"""Property-based fuzzing of the public entries (hypothesis).

Random shapes, dtypes and values go into fastbp.Network(...), Network.predict,
fastbp.train and the MLPClassifier/MLPRegressor drop-ins. The contract checked:

- every bad input is refused with a ValueError or TypeError (never a Numba error, never
  another exception type, never silently accepted) whose message names the offending
  parameter; for the estimators scikit-learn's own exceptions count, and the naming check
  is left out except for fastbp's own extras;
- a refused call leaves the model as it was (Network.params; a fitted estimator's coefs_,
  intercepts_ and n_iter_);
- good input trains and predicts finite numbers.

The bugs this file found in fastbp are fixed, and each is also pinned by an explicit case
of `test_fixed_bugs` (the list below).

Cheap on purpose: only float64/logistic and float32/relu networks (and estimators) ever
reach a kernel, with <= 20 rows, <= 5 columns and <= 3 epochs; no hypothesis database
is written (database=None).

Bad inputs tried per run: about 1,040 (965 hypothesis examples over the 14 bad-input
tests, the loss/output-mismatch one exhausting its 15 combinations, plus 79 explicit
parametrized cases, 17 of them the fixed bugs below; batch sizes beyond the data are now
valid, clipped to one batch as scikit-learn does).

Bugs found and fixed (test_fixed_bugs):
- Network(random_state=-1) / train(random_state=2**32): numpy's "Seed must be between 0 and
  2**32 - 1", not naming random_state;
- Network(sizes) with a parameter count beyond int64 (e.g. [2**70, 1]): OverflowError;
  Network(np.array(3)): TypeError "len() of unsized object", not naming sizes;
- Network(init_range=1e308): numpy's OverflowError "Range exceeds valid bounds";
- Network(dtype=("f8", -1)) / dtype=",", and the estimators' dtype=: numpy's ValueError (not
  naming dtype) or SyntaxError leaks out;
- Network.predict(ragged list): numpy's "inhomogeneous shape" ValueError, not naming X;
- train(mode="minibatch", batch_size=10**20): numba TypingError; batch_size=2**63: accepted,
  "trains" every epoch and changes nothing (now: one batch of all the data);
- train(schedule=callable) whose rate turns bad in epoch k > 1: ValueError after k - 1
  epochs have changed the network;
- float32 estimators (dtype=np.float32) given float64 data beyond float32's range: X is
  converted silently to inf; SGD/Adam then fail with "Solver produced non-finite parameter
  weights" (not naming X) after resetting n_iter_ to 0; L-BFGS accepts it (loss_ nan);
- inherited from scikit-learn (its MLPs do the same): refitting a fitted estimator with
  hidden_layer_sizes=(2.5,) fails only after wiping it (n_iter_ 0, coefs_ []); sample
  weights of sum 0 (with negatives) give ZeroDivisionError.
"""

import copy
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbp

# FASTBP_FUZZ_SCALE=10 tries ten times as many examples (a longer hunt than CI's).
SCALE = max(1, int(os.environ.get("FASTBP_FUZZ_SCALE", "1")))


def fuzz(max_examples):
    return settings(max_examples=max_examples * SCALE, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


GOOD = [(np.float64, "logistic"), (np.float32, "relu")]  # the only combinations that train
FLOAT32_MAX = float(np.finfo(np.float32).max)


# -- the contract -------------------------------------------------------------------------------


def _named(message, names):
    """Whether `message` names one of `names` as a word ("Y" in "Y must ...", "sizes" in "sizes[1]")."""
    return any(re.search(r"(?<![A-Za-z0-9_])" + re.escape(n) + r"(?![A-Za-z0-9_])", message)
               for n in names)


def check_refusal(exc, names):
    """exc is a proper refusal: ValueError/TypeError, not Numba's, naming one of `names`."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    assert not type(exc).__module__.startswith("numba"), f"a Numba error leaked out: {kind}: {exc}"
    assert isinstance(exc, (ValueError, TypeError)), f"{kind} instead of ValueError/TypeError: {exc}"
    if names:
        assert _named(str(exc), names), f"{kind} message does not name {names}: {exc}"


def refused(call, names, snapshot=None):
    """call() must be refused (see check_refusal) and leave snapshot() as it was."""
    before = snapshot() if snapshot is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001  the type is what is checked
            check_refusal(exc, names)
        else:
            pytest.fail(f"accepted silently (returned {type(result).__name__}); expected an "
                        f"error naming {names}")
    if snapshot is not None:
        after = snapshot()
        assert len(after) == len(before), "a refused call changed the model's structure"
        for a, b in zip(before, after):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(b, a, err_msg="a refused call changed the model")
            else:
                assert a == b, f"a refused call changed the model: {a!r} -> {b!r}"


def net_state(net):
    return lambda: [net.params.copy(), *net.random_state_.get_state()[1:3]]


def estimator_state(est):
    return lambda: ([c.copy() for c in est.coefs_] + [b.copy() for b in est.intercepts_]
                    + [est.n_iter_])


# -- strategies ---------------------------------------------------------------------------------

small_ints = st.integers(1, 5)
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)
non_finite = st.sampled_from([np.nan, np.inf, -np.inf])
junk = st.one_of(st.none(), st.text(max_size=5), st.binary(max_size=3),
                 st.lists(st.integers(-3, 3), max_size=3), st.complex_numbers(max_magnitude=5),
                 st.just(object()), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


def arrays(shape, dtype=np.float64, elements=finite):
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def good_data(draw, n_in, n_out, max_rows=20):
    n = draw(st.integers(1, max_rows))
    return draw(arrays((n, n_in))), n


@st.composite
def bad_matrix(draw, n_cols, n_rows=None, dtype=np.float64, name="X", exclude=()):
    """A matrix that must be refused where an (n_rows, n_cols) one of real numbers is wanted.

    Returns (value, names): the names its refusal must mention.
    """
    n = n_rows if n_rows is not None else draw(st.integers(1, 20))
    kinds = ["columns", "ndim1", "ndim3", "ndim0", "no_rows", "no_cols", "non_finite",
             "bad_dtype", "strings", "none_inside"]
    if np.dtype(dtype) == np.float32:
        kinds.append("too_big_for_float32")
    kind = draw(st.sampled_from([k for k in kinds if k not in exclude]))
    if kind == "columns":
        cols = draw(st.integers(1, 6).filter(lambda c: c != n_cols))
        return draw(arrays((n, cols))), [name]
    if kind == "ndim1":
        # a 1-D vector is never a matrix here (Y's 1-D form for one output is handled by caller)
        return draw(arrays((draw(st.integers(1, 20)),))), [name]
    if kind == "ndim3":
        shape = draw(st.permutations([n, n_cols, draw(st.integers(1, 3))]))
        return draw(arrays(tuple(shape))), [name]
    if kind == "ndim0":
        return draw(st.one_of(finite, st.integers(-5, 5))), [name]
    if kind == "no_rows":
        return np.empty((0, n_cols)), [name]
    if kind == "no_cols":
        return np.empty((n, 0)), [name]
    if kind == "non_finite":
        A = draw(arrays((n, n_cols)))
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n_cols - 1))
        A[i, j] = draw(non_finite)
        return A, [name]
    if kind == "bad_dtype":
        bad = draw(st.sampled_from([object, np.complex128, np.complex64, "U3", "S3",
                                    "datetime64[s]", "timedelta64[s]"]))
        A = draw(arrays((n, n_cols), elements=st.integers(0, 5)))
        return A.astype(bad), [name]
    if kind == "strings":
        return draw(st.lists(st.lists(st.text(max_size=4), min_size=n_cols, max_size=n_cols),
                             min_size=n, max_size=n)), [name]
    if kind == "none_inside":
        rows = [list(r) for r in draw(arrays((n, n_cols))).tolist()]
        rows[draw(st.integers(0, n - 1))][draw(st.integers(0, n_cols - 1))] = None
        return rows, [name]
    # too_big_for_float32: finite in float64, inf once converted
    A = draw(arrays((n, n_cols)))
    A[draw(st.integers(0, n - 1)), draw(st.integers(0, n_cols - 1))] = draw(
        st.floats(FLOAT32_MAX * 1.01, 1e300) | st.floats(-1e300, -FLOAT32_MAX * 1.01))
    return A, [name]


# -- 1. Network(...) ----------------------------------------------------------------------------

bad_size = st.one_of(
    st.integers(-10**6, 0), st.integers(2**31, 2**80), st.floats(allow_nan=True), st.booleans(),
    st.text(max_size=4),
    st.lists(small_ints, min_size=0, max_size=3), st.none(), st.complex_numbers(max_magnitude=4),
    st.sampled_from([np.float64(2.0), np.float32(3.0), 2.5, np.array([2, 3])]))


@st.composite
def bad_sizes(draw):
    kind = draw(st.sampled_from(["element", "element", "short", "not_a_sequence"]))
    if kind == "element":
        sizes = draw(st.lists(small_ints, min_size=1, max_size=4))
        sizes.insert(draw(st.integers(0, len(sizes))), draw(bad_size))
        return draw(st.sampled_from([list, tuple, lambda s: s]))(sizes)
    if kind == "short":
        sizes = draw(st.lists(small_ints, max_size=1))
        return draw(st.sampled_from([list, tuple, np.array]))(sizes)
    return draw(st.one_of(small_ints, st.none(), st.text(max_size=5), st.floats(),
                          st.binary(max_size=3)))


@fuzz(80)
@given(sizes=bad_sizes())
def test_network_refuses_bad_sizes(sizes):
    refused(lambda: fastbp.Network(sizes), ["sizes"])


VALID = {
    "activation": ("identity", "logistic", "tanh", "relu", "sigmoid"),
    "output_activation": ("identity", "logistic", "softmax", "exp", "sigmoid"),
    "loss": ("squared_error", "log_loss", "poisson"),
}


@fuzz(60)
@given(param=st.sampled_from(sorted(VALID)), data=st.data())
def test_network_refuses_unknown_names(param, data):
    value = data.draw(st.one_of(st.text(max_size=15), junk, st.sampled_from(
        ["Logistic", "RELU", " relu", "softmax ", "log-loss", "mse", "cross_entropy", "softmax",
         "hinge"])))
    # ("softmax" stays bad for activation: it is an output activation only)
    assume(not (isinstance(value, str) and value in VALID[param]))
    refused(lambda: fastbp.Network([3, 4, 2], **{param: value}), [param])


@fuzz(30)
@given(pair=st.sampled_from([("identity", "log_loss"), ("exp", "log_loss"), ("identity", "poisson"),
                             ("logistic", "poisson"), ("softmax", "poisson")]),
       n_out=st.integers(1, 3))
def test_network_refuses_loss_output_mismatch(pair, n_out):
    out, loss = pair
    refused(lambda: fastbp.Network([2, n_out], output_activation=out, loss=loss),
            ["loss", "output_activation"])


def _good_dtype(value):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's deprecated aliases ("a")
            return np.dtype(value) in (np.dtype(np.float32), np.dtype(np.float64))
    except Exception:  # noqa: BLE001
        return False


def _numpy_dtype_raises_other_than_type_error(value):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.dtype(value)
    except TypeError:
        return False
    except Exception:  # noqa: BLE001  ValueError, SyntaxError, ...
        return True
    return False


@fuzz(40)
@given(dtype=st.one_of(
    st.sampled_from([np.int32, np.int8, np.uint8, np.int64, np.bool_, np.complex128, np.complex64,
                     np.float16, "float16", "int64", object, str, bytes, "U5", "M8[s]",
                     np.longdouble, ">f8", ">f4", "f8,f8", 1.5, 3, [1], "not a dtype"]),
    st.text(max_size=6)))
def test_network_refuses_bad_dtype(dtype):
    assume(not _good_dtype(dtype))
    refused(lambda: fastbp.Network([3, 2], dtype=dtype), ["dtype"])


@fuzz(30)
@given(param=st.sampled_from(["random_state", "init", "init_range"]), data=st.data())
def test_network_refuses_bad_options(param, data):
    if param == "random_state":
        value = data.draw(st.one_of(st.text(max_size=4), st.floats(), st.booleans(),
                                    st.integers(max_value=-1), st.integers(min_value=2**32),
                                    st.lists(st.integers(0, 3), max_size=2), st.just(object())))
    elif param == "init":
        value = data.draw(st.one_of(st.text(max_size=8).filter(lambda s: s not in ("uniform", "glorot")),
                                    st.integers(), st.floats()))
    else:
        value = data.draw(st.one_of(st.floats(max_value=0), st.floats(min_value=1.01e300),
                                    non_finite, st.text(max_size=3),
                                    st.booleans(), st.none()))
    refused(lambda: fastbp.Network([3, 2], **{param: value}), [param])


# -- 2. Network.predict -------------------------------------------------------------------------


@fuzz(120)
@given(combo=st.sampled_from(GOOD), n_in=small_ints, data=st.data())
def test_predict_refuses_bad_X(combo, n_in, data):
    dtype, act = combo
    net = fastbp.Network([n_in, 3, 2], activation=act, dtype=dtype, random_state=0)
    X, names = data.draw(bad_matrix(n_in, dtype=dtype))
    refused(lambda: net.predict(X), names, net_state(net))


# -- 3. train(...) ------------------------------------------------------------------------------

# (output activation, loss) of the networks bad data is thrown at; none of them reaches a
# kernel unless a bad input is wrongly accepted.
NETS = {
    "logistic/squared_error": ("logistic", "squared_error"),
    "logistic/log_loss": ("logistic", "log_loss"),
    "softmax/log_loss": ("softmax", "log_loss"),
    "exp/poisson": ("exp", "poisson"),
    "identity/squared_error": ("identity", "squared_error"),
}


def good_targets(rng, out, loss, n, n_out):
    if out == "softmax":
        return np.eye(n_out)[rng.randint(0, n_out, n)]
    if loss == "poisson":
        return rng.poisson(2.0, (n, n_out)).astype(float)
    return rng.randint(0, 2, (n, n_out)).astype(float)


@st.composite
def train_setup(draw):
    kind = draw(st.sampled_from(sorted(NETS)))
    out, loss = NETS[kind]
    dtype, act = draw(st.sampled_from(GOOD))
    n_in, n_out = draw(small_ints), draw(st.integers(2 if out == "softmax" else 1, 3))
    net = fastbp.Network([n_in, 3, n_out], act, out, loss, dtype=dtype, random_state=0)
    n = draw(st.integers(2, 20))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    return net, rng.normal(size=(n, n_in)), good_targets(rng, out, loss, n, n_out)


@st.composite
def bad_Y(draw, net, n):
    """Targets train() must refuse for `net` with n tuples; (Y, names)."""
    n_out = net.n_outputs
    kinds = ["matrix", "matrix", "rows", "range"]
    kind = draw(st.sampled_from(kinds))
    if kind == "matrix":
        Y, names = draw(bad_matrix(n_out, n_rows=n, dtype=net.dtype, name="Y"))
        if isinstance(Y, np.ndarray) and Y.ndim == 1 and Y.shape[0] == n and \
                (n_out == 1 or net.output_activation == "softmax"):
            # a 1-D Y is fine for one output, and for softmax when it holds class labels
            # (e.g. [0., 0.]): make it 3-D instead
            Y = Y.reshape(-1, 1, 1)
        return Y, names
    if kind == "rows":
        m = draw(st.integers(1, 21).filter(lambda m: m != n))
        return good_targets(np.random.RandomState(m), net.output_activation, net.loss, m, n_out), \
            ["X", "Y"]
    # targets outside what the loss is defined for
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    Y = good_targets(rng, net.output_activation, net.loss, n, n_out)
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n_out - 1))
    if net.loss == "log_loss":
        Y[i, j] = draw(st.floats(1.001, 1e6) | st.floats(-1e6, -0.001))
    elif net.loss == "poisson":
        Y[i, j] = draw(st.floats(-1e6, -0.001))
    else:  # squared error takes any finite target: break it otherwise
        Y[i, j] = draw(non_finite)
    return Y, ["Y"]


@fuzz(120)
@given(setup=train_setup(), which=st.sampled_from(["X", "Y"]), data=st.data())
def test_train_refuses_bad_data(setup, which, data):
    net, X, Y = setup
    if which == "X":
        X, names = data.draw(bad_matrix(net.n_inputs, n_rows=X.shape[0], dtype=net.dtype))
    else:
        Y, names = data.draw(bad_Y(net, X.shape[0]))
    mode = data.draw(st.sampled_from(["case", "epoch", "minibatch"]))
    refused(lambda: fastbp.train(net, X, Y, mode=mode, epochs=2, random_state=0), names,
            net_state(net))


@st.composite
def bad_sample_weight(draw, n):
    kind = draw(st.sampled_from(["negative", "non_finite", "length", "ndim", "zero", "dtype",
                                 "scalar"]))
    w = draw(arrays((n,), elements=st.floats(0, 10)))
    if kind == "negative":
        w[draw(st.integers(0, n - 1))] = draw(st.floats(-1e6, -1e-6))
    elif kind == "non_finite":
        w[draw(st.integers(0, n - 1))] = draw(non_finite)
    elif kind == "length":
        w = draw(arrays((draw(st.integers(0, 21).filter(lambda m: m != n)),), elements=st.floats(0.1, 10)))
    elif kind == "ndim":
        w = w.reshape(draw(st.sampled_from([(n, 1), (1, n)])))
    elif kind == "zero":
        w = np.zeros(n)
    elif kind == "dtype":
        w = w.astype(draw(st.sampled_from([object, np.complex128, "U4"])))
    else:
        w = draw(st.one_of(st.floats(0.1, 5), st.text(max_size=3)))
    return w


@fuzz(60)
@given(setup=train_setup(), data=st.data())
def test_train_refuses_bad_sample_weight(setup, data):
    net, X, Y = setup
    w = data.draw(bad_sample_weight(X.shape[0]))
    refused(lambda: fastbp.train(net, X, Y, epochs=2, sample_weight=w, random_state=0),
            ["sample_weight"], net_state(net))


def not_in(choices):
    return st.one_of(st.text(max_size=12).filter(lambda s: s not in choices),
                     st.sampled_from([s.upper() for s in choices] + [s + " " for s in choices]),
                     st.none(), st.integers(-2, 2), st.floats(), st.lists(st.sampled_from(choices),
                                                                          max_size=2))


non_bool = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats(), st.just([True]))
not_a_number = st.one_of(st.text(max_size=4), st.none(), st.booleans(),
                         st.complex_numbers(max_magnitude=3).filter(lambda z: z.imag != 0),
                         st.lists(st.floats(0, 1), max_size=2), st.just(object()))
not_an_int = st.one_of(st.floats(), st.text(max_size=4), st.booleans(), st.just(object()),
                       st.sampled_from([np.float64(3.0), "3", [3]]))

# parameter -> (bad values, extra keyword arguments that make the parameter matter)
# (batch sizes beyond the data, even beyond int64, are valid: one batch, as scikit-learn clips)
BAD_TRAIN = {
    "learning_rate": (st.one_of(st.floats(max_value=0), non_finite, not_a_number), {}),
    "epochs": (st.one_of(st.integers(-10**6, 0), not_an_int), {}),
    "batch_size": (st.one_of(st.integers(-10**6, 0), not_an_int.filter(lambda v: v is not None)),
                   {"mode": "minibatch"}),
    "mode": (not_in(["case", "epoch", "minibatch"]), {}),
    "optimizer": (not_in(["sgd", "adam"]), {}),
    "schedule": (not_in(["constant", "1/t", "invscaling"]), {}),
    "track": (not_in(["end", "pass"]), {}),
    "shuffle": (non_bool, {}),
    "nesterov": (non_bool, {"momentum": 0.5}),
    "random_state": (st.one_of(st.text(max_size=3), st.floats(), st.booleans(),
                               st.integers(max_value=-1), st.integers(min_value=2**32),
                               st.lists(st.integers(0, 3), max_size=2)), {}),
    "n_jobs": (st.one_of(st.just(0), st.floats(), st.booleans(), st.text(max_size=3),
                         st.just(np.float64(2.0))), {}),
    "momentum": (st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9), non_finite,
                           not_a_number), {}),
    "alpha": (st.one_of(st.floats(max_value=-1e-300), non_finite, not_a_number), {}),
    "beta_1": (st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), non_finite),
               {"optimizer": "adam"}),
    "beta_2": (st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), non_finite),
               {"optimizer": "adam"}),
    "epsilon": (st.one_of(st.floats(max_value=0), non_finite, not_a_number), {"optimizer": "adam"}),
    "power_t": (st.one_of(st.floats(max_value=-1e-9), non_finite), {"schedule": "invscaling"}),
    "tol": (st.one_of(st.floats(max_value=-1e-9), non_finite,
                      not_a_number.filter(lambda v: v is not None)), {}),  # None: no tol rule
    "n_iter_no_change": (st.one_of(st.integers(-5, 0), not_an_int.filter(lambda v: v is not None)),
                         {"tol": 1e-3}),
    "max_misclassified": (st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9),
                                    non_finite), {}),
    "min_weight_change": (st.one_of(st.floats(max_value=-1e-9), non_finite), {}),
    "callback": (st.one_of(st.integers(), st.text(max_size=3), st.floats()), {}),
}


@fuzz(150)
@given(param=st.sampled_from(sorted(BAD_TRAIN)), data=st.data())
def test_train_refuses_bad_parameters(param, data):
    values, extra = BAD_TRAIN[param]
    value = data.draw(values, label=param)
    net = fastbp.Network([3, 4, 2], random_state=0)
    rng = np.random.RandomState(0)
    X, Y = rng.normal(size=(8, 3)), rng.randint(0, 2, (8, 2)).astype(float)
    kwargs = {"epochs": 2, "random_state": 0, **extra, param: value}
    refused(lambda: fastbp.train(net, X, Y, **kwargs), [param], net_state(net))


@fuzz(30)
@given(value=st.one_of(non_finite, st.floats(max_value=-1e-9), st.text(max_size=3), st.none(),
                       st.complex_numbers(max_magnitude=2), st.just([0.1])),
       bad_from=st.integers(1, 3))
def test_train_refuses_bad_schedule_values(value, bad_from):
    """A callable schedule returning a bad rate, from its first epoch or a later one, is
    refused and leaves the network (weights and generator) as it was."""
    net = fastbp.Network([3, 2], random_state=0)
    rng = np.random.RandomState(0)
    X, Y = rng.normal(size=(6, 3)), rng.rand(6, 2)
    refused(lambda: fastbp.train(net, X, Y, epochs=3, schedule=lambda e: 0.1 if e < bad_from else value),
            ["schedule"], net_state(net))


# -- good input ---------------------------------------------------------------------------------


# good X in other layouts and dtypes: converted once, never refused
LAYOUTS = {
    "C": lambda X: X,
    "F": np.asfortranarray,
    "reversed": lambda X: X[::-1, ::-1],
    "strided": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "byteswapped": lambda X: X.astype(X.dtype.newbyteorder()),
    "float32": lambda X: X.astype(np.float32),
    "float16": lambda X: np.clip(X, -6e4, 6e4).astype(np.float16),
    "int": lambda X: np.round(X).astype(np.int64),
    "bool": lambda X: X > 0,
    "list": lambda X: X.tolist(),
}


# What selects a compiled kernel (mode, loss, dtype, track) in rows that hold every pair of
# values at least once, instead of all 36 combinations: each combination is a kernel to
# compile, and the test is about input, not about every kernel (test_codes, test_reference
# and test_determinism cover those).
KERNEL_ROWS = [  # (mode, loss, GOOD index, track)
    ("case", "squared_error", 0, "pass"), ("case", "log_loss", 1, "end"),
    ("case", "poisson", 0, "end"), ("epoch", "squared_error", 1, "end"),
    ("epoch", "log_loss", 0, "pass"), ("epoch", "poisson", 1, "pass"),
    ("minibatch", "squared_error", 0, "end"), ("minibatch", "log_loss", 1, "pass"),
    ("minibatch", "poisson", 1, "end"),
]
LOSS_NETS = {loss: sorted(name for name, pair in NETS.items() if pair[1] == loss)
             for loss in ("squared_error", "log_loss", "poisson")}


@fuzz(40)
@given(row=st.sampled_from(KERNEL_ROWS), net_pick=st.integers(0, 1),
       hidden=st.lists(small_ints, max_size=2), n_in=small_ints, n_out=st.integers(2, 3),
       n=st.integers(1, 20), batch_size=st.none() | st.integers(1, 25),
       optimizer=st.sampled_from(["sgd", "adam"]),
       lr=st.floats(1e-4, 1.0), epochs=st.integers(1, 3), seed=st.integers(0, 2**16),
       weighted=st.booleans(), momentum=st.floats(0, 0.99), alpha=st.floats(0, 1),
       X_scale=st.floats(1e-3, 1e3), layout=st.sampled_from(sorted(LAYOUTS)))
def test_good_input_trains_and_predicts_finite(row, net_pick, hidden, n_in, n_out, n,
                                               batch_size, optimizer, lr, epochs, seed, weighted,
                                               momentum, alpha, X_scale, layout):
    mode, loss_name, good, track = row
    dtype, act = GOOD[good]
    names = LOSS_NETS[loss_name]
    out, loss = NETS[names[net_pick % len(names)]]
    net = fastbp.Network([n_in, *hidden, n_out], act, out, loss, dtype=dtype, random_state=seed)
    rng = np.random.RandomState(seed)
    if out == "exp":  # exp outputs overflow (honestly) on large inputs: keep them small
        X_scale = min(X_scale, 1.0)
    X = LAYOUTS[layout](rng.normal(size=(n, n_in)) * X_scale)
    Y = good_targets(rng, out, loss, n, n_out)
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.DivergenceWarning)
        history = fastbp.train(net, X, Y, mode=mode, batch_size=batch_size, learning_rate=lr,
                               epochs=epochs, optimizer=optimizer, momentum=momentum, alpha=alpha,
                               sample_weight=w, track=track, random_state=seed)
    before = net.params.copy()
    assert history.stopped_by in ("epochs", "diverged")
    if history.stopped_by == "epochs":
        assert history.n_epochs == epochs
    assert np.isfinite(history.loss).all()
    assert np.isfinite(net.params).all()
    P = net.predict(X)
    assert P.shape == (n, n_out) and P.dtype == np.dtype(dtype)
    assert np.isfinite(P).all()
    np.testing.assert_array_equal(net.params, before)  # predicting changes nothing


# -- 4. the scikit-learn drop-ins ---------------------------------------------------------------

ESTIMATORS = {"MLPClassifier": "classifier", "MLPRegressor": "regressor"}


def make_estimator(name, combo=GOOD[0], **kwargs):
    dtype, act = combo
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, activation=act, dtype=dtype)
    params.update(kwargs)
    return getattr(fastbp, name)(**params)


def estimator_data(name, n=12, n_in=3, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    y = rng.randint(0, 3, n) if name == "MLPClassifier" else rng.normal(size=n)
    if name == "MLPClassifier":
        y[:3] = [0, 1, 2]  # every class present
    return X, y


_fitted_cache = {}


def fitted(name, combo=GOOD[0], **kwargs):
    """A fresh copy of a small fitted estimator (fitting is cheap, but done once per key)."""
    key = (name, combo, tuple(sorted(kwargs.items())))
    if key not in _fitted_cache:
        X, y = estimator_data(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _fitted_cache[key] = make_estimator(name, combo, **kwargs).fit(X, y)
    return copy.deepcopy(_fitted_cache[key])


BAD_HYPER = st.one_of(
    st.tuples(st.just("hidden_layer_sizes"), st.sampled_from(
        [(0,), (-1,), (4, 0), (2.5,), ("a",), ((2,),), (None,), "4", 0, -3, 2.5, None])),
    st.tuples(st.just("learning_rate_init"), st.one_of(st.floats(max_value=0), non_finite, st.text(max_size=3))),
    st.tuples(st.just("batch_size"), st.one_of(st.integers(-10**6, 0), st.floats(0.5, 3), st.text(max_size=3)
                                               .filter(lambda s: s != "auto"))),
    st.tuples(st.just("alpha"), st.one_of(st.floats(max_value=-1e-300), non_finite, st.text(max_size=3))),
    st.tuples(st.just("max_iter"), st.one_of(st.integers(-10**6, 0), st.floats(0.5, 3))),
    st.tuples(st.just("momentum"), st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9), non_finite)),
    st.tuples(st.just("solver"), not_in(["sgd", "adam", "lbfgs"])),
    st.tuples(st.just("activation"), not_in(["identity", "logistic", "tanh", "relu"])),
    st.tuples(st.just("learning_rate"), not_in(["constant", "invscaling", "adaptive"])),
    st.tuples(st.just("beta_1"), st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), non_finite)),
    st.tuples(st.just("epsilon"), st.one_of(st.floats(max_value=0), non_finite)),
    st.tuples(st.just("n_jobs"), st.one_of(st.just(0), st.floats(), st.text(max_size=3))),
    st.tuples(st.just("dtype"), st.one_of(
        st.sampled_from(["int8", np.int32, np.float16, "float16", object, "nonsense", np.complex128,
                         np.bool_, ">f8", 3, ",", ("f8", -1), ""]),
        st.text(max_size=5).filter(lambda t: not _good_dtype(t)))),
)


@fuzz(80)
@given(name=st.sampled_from(sorted(ESTIMATORS)), bad=BAD_HYPER, refit=st.booleans())
def test_estimator_refuses_bad_hyperparameters(name, bad, refit):
    param, value = bad
    X, y = estimator_data(name)
    if refit:
        est = fitted(name)
        est.set_params(**{param: value})
        refused(lambda: est.fit(X, y), [], estimator_state(est))
    else:
        est = make_estimator(name, **{param: value})
        own = param in ("dtype", "n_jobs")  # fastbp's extras: their messages are fastbp's
        refused(lambda: est.fit(X, y), [param] if own else [])


@st.composite
def bad_estimator_data(draw, name, n_in=3, fresh=False):
    """(X, y, names) with one of them bad. Object arrays of numbers are fine for scikit-learn,
    and for a fresh fit any number of columns is."""
    n = draw(st.integers(1, 20))
    which = draw(st.sampled_from(["X", "y"]))
    _, y = estimator_data(name, n=max(n, 3))
    y = y[:n]
    if which == "X":
        X, _ = draw(bad_matrix(n_in, n_rows=n, exclude=("bad_dtype",) + (("columns",) if fresh else ())))
        if not isinstance(X, list) and draw(st.booleans()):  # also the other bad dtypes
            X = draw(arrays((n, n_in), elements=st.integers(0, 5))).astype(
                draw(st.sampled_from([np.complex128, "U3", "S3"])))
        return X, y, ["X"]
    X = draw(arrays((n, n_in)))
    kind = draw(st.sampled_from(["rows", "non_finite", "ndim3", "empty"] +
                                (["strings", "complex"] if name == "MLPRegressor" else [])))
    if kind == "rows":
        y = np.resize(y, draw(st.integers(1, 21).filter(lambda m: m != n)))
    elif kind == "non_finite":
        y = y.astype(float)
        y[draw(st.integers(0, n - 1))] = draw(non_finite)
    elif kind == "ndim3":
        y = y.reshape(n, 1, 1)
    elif kind == "empty":
        y = y[:0]
    elif kind == "strings":
        y = y.astype(str)
    else:
        y = y.astype(complex)
    return X, y, ["y"]


def _numeric_strings(X):
    """Whether X is strings (or bytes) that all read as numbers."""
    A = np.asarray(X) if not isinstance(X, list) or all(isinstance(r, list) for r in X) else None
    if A is None or A.dtype.kind not in "US" or A.size == 0:
        return False
    try:
        A.astype(np.float64)
    except ValueError:
        return False
    return True


@fuzz(100)
@given(name=st.sampled_from(sorted(ESTIMATORS)), combo=st.sampled_from(GOOD),
       method=st.sampled_from(["fit", "partial_fit", "predict", "fresh_fit"]), data=st.data())
def test_estimator_refuses_bad_data(name, combo, method, data):
    warm_start = data.draw(st.booleans())
    # fit() without warm_start starts afresh: any number of columns is fine there
    fresh = method == "fresh_fit" or (method == "fit" and not warm_start)
    X, y, names = data.draw(bad_estimator_data(name, fresh=fresh))
    if method == "fresh_fit":
        assume(not _numeric_strings(X))
        est = make_estimator(name, combo)
        refused(lambda: est.fit(X, y), [])
        return
    est = fitted(name, combo, warm_start=warm_start)
    if method != "predict":
        # scikit-learn's MLP fit converts strings that read as numbers ("1.5", b"2"): not bad
        assume(not _numeric_strings(X))
    if method == "predict":
        assume(names == ["X"])
        refused(lambda: est.predict(X), [], estimator_state(est))
    else:
        refused(lambda: getattr(est, method)(X, y), [], estimator_state(est))


@fuzz(40)
@given(name=st.sampled_from(sorted(ESTIMATORS)), combo=st.sampled_from(GOOD),
       solver=st.sampled_from(["adam", "lbfgs"]),
       method=st.sampled_from(["fit", "partial_fit", "fresh_fit"]), data=st.data())
def test_estimator_refuses_bad_sample_weight(name, combo, solver, method, data):
    """What scikit-learn's MLPs take is not drawn: negative weights, a scalar, object arrays
    of numbers and strings that read as numbers.

    Weights of sum 0 with negatives (scikit-learn divides by zero) are refused too.
    """
    X, y = estimator_data(name)
    n = X.shape[0]
    w = data.draw(arrays((n,), elements=st.floats(0, 10)))
    kind = data.draw(st.sampled_from(["non_finite", "length", "ndim", "zero", "sum_zero",
                                      "complex", "text"]))
    if kind == "non_finite":
        w[data.draw(st.integers(0, n - 1))] = data.draw(non_finite)
    elif kind == "length":
        w = data.draw(arrays((data.draw(st.integers(0, 21).filter(lambda m: m != n)),),
                             elements=st.floats(0.1, 10)))
    elif kind == "ndim":
        w = w.reshape(data.draw(st.sampled_from([(n, 1), (1, n)])))
    elif kind == "zero":
        w = np.zeros(n)
    elif kind == "sum_zero":
        w = np.where(np.arange(n) % 2, 1.0, -1.0) * data.draw(st.floats(0.5, 4))
        w[-1] = -w[:-1].sum()
    elif kind == "complex":
        w = w + 1j
    else:
        w = w.astype(str)
        w[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from(["a", "", "one", "1,5"]))
    assume(not (solver == "lbfgs" and method == "partial_fit"))  # L-BFGS has no partial_fit
    if method == "fresh_fit":
        refused(lambda: make_estimator(name, combo, solver=solver).fit(X, y, sample_weight=w), [])
        return
    est = fitted(name, combo, solver=solver, warm_start=True)
    refused(lambda: getattr(est, method)(X, y, sample_weight=w), [], estimator_state(est))


@fuzz(40)
@given(name=st.sampled_from(sorted(ESTIMATORS)), solver=st.sampled_from(["sgd", "adam"]),
       method=st.sampled_from(["fit", "partial_fit", "fresh_fit"]), data=st.data())
def test_estimator_refuses_data_too_large_for_float32(name, solver, method, data):
    """float64 input that a float32 model would see as inf: refused, naming X, model unchanged.

    (Before: trained on inf, then failed with "Solver produced non-finite parameter weights"
    after resetting n_iter_, or with L-BFGS returned loss_ nan.)
    """
    X, y = estimator_data(name)
    X[data.draw(st.integers(0, X.shape[0] - 1)), data.draw(st.integers(0, X.shape[1] - 1))] = \
        data.draw(st.floats(FLOAT32_MAX * 1.01, 1e300) | st.floats(-1e300, -FLOAT32_MAX * 1.01))
    combo = GOOD[1]
    if method == "fresh_fit":
        refused(lambda: make_estimator(name, combo, solver=solver).fit(X, y), ["X"])
        return
    est = fitted(name, combo, solver=solver, warm_start=True)
    refused(lambda: getattr(est, method)(X, y), ["X"], estimator_state(est))


@fuzz(40)
@given(name=st.sampled_from(sorted(ESTIMATORS)), combo=st.sampled_from(GOOD),
       solver=st.sampled_from(["sgd", "adam", "lbfgs"]), batch_size=st.sampled_from(["auto", 1, 3, 50]),
       n=st.integers(3, 20), n_in=small_ints, seed=st.integers(0, 2**16),
       partial=st.booleans(), X32=st.booleans(), auto_dtype=st.booleans())
def test_estimator_good_input_fits_and_predicts_finite(name, combo, solver, batch_size, n, n_in,
                                                       seed, partial, X32, auto_dtype):
    X, y = estimator_data(name, n=n, n_in=n_in, seed=seed, dtype=np.float32 if X32 else np.float64)
    est = make_estimator(name, combo, solver=solver, batch_size=batch_size,
                         learning_rate_init=0.01)
    if auto_dtype:  # dtype=None: float32 X makes a float32 model, anything else float64
        est.set_params(dtype=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if partial and solver != "lbfgs":
            kwargs = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
            est.partial_fit(X, y, **kwargs)
            est.partial_fit(X, y)
        else:
            est.fit(X, y)
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
    P = est.predict(X)
    assert P.shape == (n,)
    if name == "MLPClassifier":
        assert set(np.unique(P)) <= set(np.unique(y))
        proba = est.predict_proba(X)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    else:
        assert np.isfinite(P).all()


# -- explicit cases -----------------------------------------------------------------------------


def _net():
    return fastbp.Network([2, 1], random_state=0)


def _xy():
    rng = np.random.RandomState(0)
    return rng.normal(size=(6, 2)), rng.rand(6, 1)


@pytest.mark.parametrize("sizes", [[0, 2], [2, -1], [2, 2.5], [True, 2], [2, "3"], [[2], 2], [2],
                                   [], 3, "23", None, [2, None], np.array([2.0, 1.0])])
def test_network_bad_sizes_cases(sizes):
    refused(lambda: fastbp.Network(sizes), ["sizes"])


@pytest.mark.parametrize("dtype", [np.int32, np.complex128, "float16", object, np.float16, np.bool_])
def test_network_bad_dtype_cases(dtype):
    refused(lambda: fastbp.Network([2, 1], dtype=dtype), ["dtype"])


@pytest.mark.parametrize("kwargs, name", [
    ({"learning_rate": -1.0}, "learning_rate"), ({"learning_rate": np.nan}, "learning_rate"),
    ({"learning_rate": np.inf}, "learning_rate"), ({"learning_rate": 0.0}, "learning_rate"),
    ({"epochs": 0}, "epochs"), ({"epochs": -2}, "epochs"), ({"epochs": 2.0}, "epochs"),
    ({"batch_size": 0, "mode": "minibatch"}, "batch_size"),
    ({"batch_size": -1, "mode": "minibatch"}, "batch_size"),
    ({"batch_size": 2.5, "mode": "minibatch"}, "batch_size"),
    ({"mode": "batch"}, "mode"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"n_jobs": 0}, "n_jobs"), ({"n_jobs": 2.0}, "n_jobs"),
    ({"sample_weight": -np.ones(6)}, "sample_weight"),
    ({"sample_weight": np.full(6, np.nan)}, "sample_weight"),
    ({"sample_weight": np.ones(5)}, "sample_weight"),
    ({"sample_weight": np.zeros(6)}, "sample_weight"),
])
def test_train_bad_parameter_cases(kwargs, name):
    net = _net()
    X, Y = _xy()
    refused(lambda: fastbp.train(net, X, Y, **{"epochs": 2, **kwargs}), [name], net_state(net))


@pytest.mark.parametrize("X, Y, names", [
    (np.ones((6, 2)), np.ones((5, 1)), ["X", "Y"]),
    (np.ones((6, 2)), np.ones((6, 2)), ["Y"]),
    (np.ones((6, 2)), np.full((6, 1), np.nan), ["Y"]),
    (np.ones((6, 2)), np.full((6, 1), 2.0), ["Y"]),   # log_loss targets outside [0, 1]
    (np.ones((6, 2)), np.full((6, 1), -0.5), ["Y"]),
])
def test_train_bad_data_cases(X, Y, names):
    net = fastbp.Network([2, 1], loss="log_loss", random_state=0)
    refused(lambda: fastbp.train(net, X, Y, epochs=2), names, net_state(net))


@pytest.mark.parametrize("X", [np.ones((3, 3)), np.ones(2), np.ones((1, 2, 1)), np.empty((0, 2)),
                               np.empty((3, 0)), [[np.nan, 1.0]], [["a", "b"]],
                               np.ones((2, 2), complex), np.ones((2, 2), object)])
def test_predict_bad_X_cases(X):
    net = _net()
    refused(lambda: net.predict(X), ["X"], net_state(net))


def test_predict_float32_overflow_case():
    net = fastbp.Network([2, 1], activation="relu", dtype=np.float32, random_state=0)
    refused(lambda: net.predict([[1e39, 0.0]]), ["X"], net_state(net))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("kwargs", [{"hidden_layer_sizes": (0,)}, {"learning_rate_init": -1},
                                    {"batch_size": 0}, {"alpha": np.nan}, {"dtype": "int8"}])
def test_estimator_bad_hyperparameter_cases(name, kwargs):
    X, y = estimator_data(name)
    est = make_estimator(name, **kwargs)
    refused(lambda: est.fit(X, y), ["dtype"] if "dtype" in kwargs else [])


# -- bugs this file found, fixed: each case pinned ------------------------------------------


def _train_batch_size(batch_size):
    """A batch larger than the data (even beyond int64) is the whole data, as scikit-learn
    clips it: the same params as batch_size = n_samples."""
    X, Y = _xy()
    net, ref = _net(), _net()
    fastbp.train(net, X, Y, mode="minibatch", batch_size=batch_size, epochs=2)
    fastbp.train(ref, X, Y, mode="minibatch", batch_size=X.shape[0], epochs=2)
    assert np.array_equal(net.params, ref.params)
    assert not np.array_equal(net.params, _net().params)


def _schedule_nan_in_epoch_2():
    net = _net()
    X, Y = _xy()
    refused(lambda: fastbp.train(net, X, Y, epochs=3,
                                 schedule=lambda e: 0.1 if e == 1 else float("nan")),
            ["schedule"], net_state(net))


def _estimator_float32_overflow(solver, method):
    name = "MLPRegressor"
    X, y = estimator_data(name)
    est = fitted(name, GOOD[1], solver=solver, warm_start=True)
    refused(lambda: getattr(est, method)(X * 1e39, y), ["X"], estimator_state(est))


def _estimator_refit_bad_hidden(value):
    X, y = estimator_data("MLPRegressor")
    est = fitted("MLPRegressor")
    est.set_params(hidden_layer_sizes=value)
    refused(lambda: est.fit(X, y), ["hidden_layer_sizes"], estimator_state(est))


def _estimator_weights_sum_zero():
    X, y = estimator_data("MLPRegressor")
    w = np.where(np.arange(len(y)) % 2, 1.0, -1.0)
    refused(lambda: make_estimator("MLPRegressor").fit(X, y, sample_weight=w), ["sample_weight"])


FIXED_BUGS = {
    "network-random_state-negative": lambda: refused(
        lambda: fastbp.Network([2, 1], random_state=-1), ["random_state"]),
    "train-random_state-2**32": lambda: refused(
        lambda: fastbp.train(_net(), *_xy(), epochs=1, random_state=2**32), ["random_state"]),
    "network-sizes-beyond-int64": lambda: refused(lambda: fastbp.Network([2**70, 1]), ["sizes"]),
    "network-init_range-1e308": lambda: refused(
        lambda: fastbp.Network([2, 1], init_range=1e308), ["init_range"]),
    "network-sizes-0d-array": lambda: refused(lambda: fastbp.Network(np.array(3)), ["sizes"]),
    "network-dtype-numpy-valueerror": lambda: refused(
        lambda: fastbp.Network([2, 1], dtype=("f8", -1)), ["dtype"]),
    "network-dtype-numpy-syntaxerror": lambda: refused(
        lambda: fastbp.Network([2, 1], dtype=","), ["dtype"]),
    "predict-ragged-X": lambda: refused(lambda: _net().predict([[1.0, 2.0], [3.0]]), ["X"]),
    "train-batch_size-2**63": lambda: _train_batch_size(2**63),
    "train-batch_size-10**20": lambda: _train_batch_size(10**20),
    "train-schedule-nan-after-epoch-1": _schedule_nan_in_epoch_2,
    "estimator-dtype-numpy-valueerror": lambda: refused(
        lambda: make_estimator("MLPRegressor", dtype=("f8", -1)).fit(*estimator_data("MLPRegressor")),
        ["dtype"]),
    "estimator-dtype-numpy-syntaxerror": lambda: refused(
        lambda: make_estimator("MLPRegressor", dtype=",").fit(*estimator_data("MLPRegressor")),
        ["dtype"]),
    "estimator-float32-overflow-adam-partial_fit": lambda: _estimator_float32_overflow("adam", "partial_fit"),
    "estimator-float32-overflow-lbfgs-fit": lambda: _estimator_float32_overflow("lbfgs", "fit"),
    "estimator-refit-hidden_layer_sizes-2.5 (scikit-learn's too)": lambda: _estimator_refit_bad_hidden((2.5,)),
    "estimator-sample_weight-sum-0 (scikit-learn's too)": _estimator_weights_sum_zero,
}


@pytest.mark.parametrize("case", sorted(FIXED_BUGS))
def test_fixed_bugs(case):
    FIXED_BUGS[case]()
