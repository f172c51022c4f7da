"""fastbp.save / fastbp.load: round trips without pickle, refusals of every kind of bad
file, and atomic writes (a crash or a kill mid-save never leaves a broken model)."""
import io as pyio
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pytest

import fastbp
from fastbp import io as fio

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 4))
Y_BIN = (X[:, 0] + X[:, 1] > 0).astype(int)
Y_MULTI = np.digitize(X[:, 0], [-0.5, 0.5])


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the few epochs
        return est.fit(X, y)


# -- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_round_trip_keeps_weights_generator_and_training(tmp_path, dtype):
    net = fastbp.Network([4, 5, 3], activation="tanh", output_activation="softmax",
                         loss="log_loss", dtype=dtype, random_state=3)
    path = fastbp.save(net, tmp_path / "net.npz")
    back = fastbp.load(path)
    assert isinstance(back, fastbp.Network) and repr(back) == repr(net)
    assert back.params.dtype == net.params.dtype and np.array_equal(back.params, net.params)
    assert back.coefs[0].base is back.params or np.shares_memory(back.coefs[0], back.params)
    Y = np.eye(3)[Y_MULTI]
    fastbp.train(net, X, Y, epochs=3)
    fastbp.train(back, X, Y, epochs=3)  # same shuffles: the generator's state was saved too
    assert np.array_equal(back.params, net.params)


def _estimators():
    yield fastbp.MLPClassifier(hidden_layer_sizes=(6,), max_iter=4, random_state=0), Y_BIN
    yield fastbp.MLPClassifier(hidden_layer_sizes=(6, 3), max_iter=4, solver="sgd",
                               random_state=0), np.array(["a", "b", "c"])[Y_MULTI]
    yield fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0),\
        np.stack([Y_BIN, 1 - Y_BIN * (Y_MULTI > 0)], axis=1)  # multilabel
    yield fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=8, early_stopping=True,
                               random_state=np.random.RandomState(1)), Y_MULTI
    yield fastbp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=4, batch_size=1, random_state=0,
                              dtype=np.float32), X[:, :2] @ [1.0, -2.0]
    yield fastbp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, solver="lbfgs",
                              random_state=0), np.stack([X[:, 0], X[:, 1] ** 2], axis=1)


@pytest.mark.parametrize("est, y", list(_estimators()),
                         ids=["binary", "strings sgd", "multilabel", "early stopping",
                              "regressor case float32", "regressor lbfgs"])
def test_estimator_round_trip_predicts_and_trains_on_identically(tmp_path, est, y):
    quiet_fit(est, X, y)
    back = fastbp.load(fastbp.save(est, tmp_path / "est.npz"))
    assert type(back) is type(est) and back.get_params().keys() == est.get_params().keys()
    header, _ = fio.read_archive(tmp_path / "est.npz")
    assert header["sizes"] == [X.shape[1], *est.hidden_layer_sizes, est.n_outputs_]
    assert header["dtype"] == est.coefs_[0].dtype.name and header["loss"] in ("log_loss", "squared_error")
    assert header["fastbp_version"] == fastbp.__version__ and header["format_version"] == 1
    assert np.array_equal(back.predict(X), est.predict(X))
    for a, b in zip(back.coefs_ + back.intercepts_, est.coefs_ + est.intercepts_):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for name in ("n_iter_", "n_outputs_", "n_features_in_", "loss_", "out_activation_"):
        assert getattr(back, name) == getattr(est, name)
    if hasattr(est, "classes_"):
        assert list(back.classes_) == list(est.classes_)
        assert np.array_equal(back.predict_proba(X), est.predict_proba(X))
    if est.solver != "lbfgs" and not est.early_stopping:
        # the optimizer's state and the shuffling generator came back: training goes on alike
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.partial_fit(X, y)
            back.partial_fit(X, y)
        for a, b in zip(back.coefs_, est.coefs_):
            assert np.array_equal(a, b)


def test_feature_names_survive(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["w", "x", "y", "z"])
    est = quiet_fit(fastbp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0),
                    frame, Y_BIN)
    back = fastbp.load(fastbp.save(est, tmp_path / "named.npz"))
    assert list(back.feature_names_in_) == ["w", "x", "y", "z"]
    assert np.array_equal(back.predict(frame), est.predict(frame))


def test_unfitted_estimator_round_trip(tmp_path):
    est = fastbp.MLPRegressor(hidden_layer_sizes=(7, 2), alpha=0.5, n_jobs=1)
    back = fastbp.load(fastbp.save(est, tmp_path / "unfitted.npz"))
    assert back.get_params() == est.get_params() and not hasattr(back, "coefs_")


def test_estimators_pickle_and_joblib(tmp_path):
    joblib = pytest.importorskip("joblib")
    est = quiet_fit(fastbp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0), X, Y_BIN)
    for back in (pickle.loads(pickle.dumps(est)),
                 joblib.load(joblib.dump(est, tmp_path / "est.joblib")[0])):
        assert np.array_equal(back.predict_proba(X), est.predict_proba(X))


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="save\\(\\) takes a fastbp Network"):
        fastbp.save(object(), tmp_path / "x.npz")
    from sklearn.neural_network import MLPClassifier
    with pytest.raises(TypeError, match="MLPClassifier"):
        fastbp.save(MLPClassifier(), tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_does_not_append_a_suffix_and_keeps_the_usual_file_mode(tmp_path):
    path = fastbp.save(fastbp.Network([2, 1], random_state=0), tmp_path / "model.bin")
    assert path == tmp_path / "model.bin" and path.exists()
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# -- refusals -----------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    """A saved classifier: (path, header dict, arrays dict)."""
    est = quiet_fit(fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, Y_MULTI)
    path = fastbp.save(est, tmp_path / "good.npz")
    header, arrays = fio.read_archive(path)
    return path, header, arrays


def write_raw(path, header, arrays):
    """An archive as np.savez would write it, header and arrays as given (no checks)."""
    np.savez(path, header=np.array(json.dumps(header)), **arrays)
    return path


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("content", [b"", b"garbage" * 50, b"PK\x03\x04" + b"\x00" * 100,
                                     pickle.dumps({"a": 1}), np.arange(3).tobytes()],
                         ids=["empty", "text", "zip magic only", "a pickle", "raw bytes"])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(fastbp.ModelFileError, match="not a fastbp model"):
        fastbp.load(path)


def _rnn_estimator(cls, y):
    est = cls(hidden_size=3, batch_size=1, max_iter=2, random_state=0)  # case updating
    return est.fit(SEQ, y)


def _rnn_checkpoint(path):
    rnn = fastbp.RNN([2, 3, 1], random_state=0)
    fastbp.train(rnn, SEQ, SEQ_Y, epochs=2, learning_rate=0.01, checkpoint=path)
    return path


# Files load() reads, one of each codec's kinds beside the MLP drop-in (whose other kinds the
# tests above damage by name): (how to write one, what its model answers)
SAVED_KINDS = {
    "MLPClassifier": (lambda path: fastbp.save(quiet_fit(fastbp.MLPClassifier(
        hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, Y_MULTI), path),
        lambda model: model.predict_proba(X)),
    "RNN": (lambda path: fastbp.save(fastbp.RNN([2, 3, 1], random_state=0), path),
            lambda model: model.predict(SEQ)),
    "RNNClassifier": (lambda path: fastbp.save(_rnn_estimator(
        fastbp.RNNClassifier, (SEQ[:, -1, 0] > 0).astype(int)), path),
        lambda model: model.predict_proba(SEQ)),
    "RNNRegressor": (lambda path: fastbp.save(_rnn_estimator(
        fastbp.RNNRegressor, SEQ_Y), path), lambda model: model.predict(SEQ)),
    "RNN checkpoint": (_rnn_checkpoint, lambda model: model.predict(SEQ)),
}


@pytest.fixture(params=list(SAVED_KINDS))
def any_saved(request, tmp_path):
    """(path, answer): a saved file of each kind, and what its model answers."""
    write, answer = SAVED_KINDS[request.param]
    return write(tmp_path / "good.npz"), answer


def test_every_truncation_is_refused(any_saved):
    path, _ = any_saved
    data = path.read_bytes()
    cuts = sorted(set(np.linspace(0, len(data) - 1, 60).astype(int)) | {len(data) - 1, len(data) // 2})
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(fastbp.ModelFileError):
            fastbp.load(path)


def test_flipped_bytes_are_refused_or_harmless(any_saved):
    """Any one byte changed: the file is refused (CRC, header checks) -- never a crash."""
    path, answer = any_saved
    data = bytearray(path.read_bytes())
    for position in range(0, len(data), max(1, len(data) // 150)):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            model = fastbp.load(path)
        except fastbp.ModelFileError:
            continue
        # a change the zip format does not cover (e.g. a timestamp) must still give the model
        assert np.isfinite(answer(model)).all()


def test_pickle_bearing_archives_are_refused_without_unpickling(tmp_path, saved):
    path, header, arrays = saved

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    evil = dict(arrays)
    evil["attr.coefs_.0"] = np.array([Boom()], dtype=object)
    write_raw(path, header, evil)
    with pytest.raises(fastbp.ModelFileError, match="Python objects"):
        fastbp.load(path)
    header_evil = tmp_path / "header.npz"
    np.savez(header_evil, header=np.array([Boom()], dtype=object), **arrays)
    with pytest.raises(fastbp.ModelFileError, match="Python objects"):
        fastbp.load(header_evil)
    assert not (tmp_path / "pwned").exists()


def test_a_declared_huge_array_is_refused_before_allocation(tmp_path, saved):
    """A .npy header claiming 10**12 floats in a file of a few bytes."""
    path, header, arrays = saved
    buffer = pyio.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10 ** 12,)})
    buffer.write(b"\x00" * 64)
    write_raw(path, header, arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("huge.npy", buffer.getvalue())
    with pytest.raises(fastbp.ModelFileError, match="declares shape"):
        fastbp.load(path)


def _change(header, path_keys, value):
    header = json.loads(json.dumps(header))
    node = header
    for key in path_keys[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path_keys[-1]]
    else:
        node[path_keys[-1]] = value
    return header


TAMPERED_HEADERS = [
    (("format",), "pickle", "not a fastbp model"),
    (("format_version",), 99, "model format 99"),
    (("format_version",), "1", "format_version must be an integer"),
    (("kind",), "Pipeline", "'kind' must be one of"),
    (("params", "hidden_layer_sizes"), [9], "differ from hidden_layer_sizes"),
    (("params", "activation"), "swish", "invalid parameters"),
    (("params", "learning_rate_init"), -1.0, "invalid parameters"),
    (("params", "os.system"), "x", "unknown MLPClassifier parameters"),
    (("params", "dtype"), "int8", "invalid parameters"),
    (("params",), KeyError, "lacks 'params'"),
    (("attributes", "__class__"), 1, "unknown fitted attributes"),
    (("attributes", "n_layers_"), 5, "coefs_ and"),
    (("attributes", "n_layers_"), "3", "non-negative integer"),
    (("attributes", "n_outputs_"), 2, "do not match n_features_in_"),
    (("attributes", "n_features_in_"), 7, "do not match n_features_in_"),
    (("attributes", "out_activation_"), "relu", "an output activation"),
    (("attributes", "out_activation_"), "logistic", "is not the 'softmax'"),
    (("attributes", "coefs_", "arrays"), 5, "lacks the array"),
    (("attributes", "coefs_"), KeyError, "lack coefs_"),
    (("attributes", "_label_binarizer", "y_type_"), "binary", "do not fit"),
    (("attributes", "_label_binarizer"), KeyError, "needs classes_ and _label_binarizer"),
    (("attributes", "_trainer", "optimizer"), "lbfgs", "invalid trainer"),
    (("attributes", "_trainer", "mode"), "case", None),  # a valid change: loads
    (("attributes", "_random_state", "rng", "state", "bit_generator"), "Evil", "unknown bit generator"),
    (("attributes", "loss_"), "low", "must be a number or null"),
    (("sizes",), [4, 5, 5, 3], "the header describes the network"),
    (("dtype",), "float32", "the header describes the network"),
    (("activation",), "tanh", "the header describes the network"),
    (("loss",), KeyError, "the header describes the network"),
]


@pytest.mark.parametrize("keys, value, message", TAMPERED_HEADERS,
                         ids=[".".join(k) + "=" + str(v)[:12] for k, v, _ in TAMPERED_HEADERS])
def test_tampered_headers_are_refused_by_name(saved, keys, value, message):
    path, header, arrays = saved
    write_raw(path, _change(header, keys, value), arrays)
    if message is None:
        assert isinstance(fastbp.load(path), fastbp.MLPClassifier)
        return
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        fastbp.load(path)


def test_tampered_arrays_are_refused(saved):
    path, header, arrays = saved
    cases = [
        ({"attr.coefs_.0": arrays["attr.coefs_.0"][:2]}, "do not match n_features_in_"),
        ({"attr.coefs_.0": arrays["attr.coefs_.0"][:, :2]}, "do not chain"),
        ({"attr.coefs_.0": np.full_like(arrays["attr.coefs_.0"], np.nan)}, "must be finite"),
        ({"attr.coefs_.1": arrays["attr.coefs_.1"].astype(np.float32)}, "must all be float32 or all float64"),
        ({"attr.coefs_.0": arrays["attr.coefs_.0"].astype(np.int64)}, "has dtype int64"),
        ({"attr._trainer.state": arrays["attr._trainer.state"][:, :3]}, "has shape"),
        ({"attr.classes_": np.array([0, 1, 5])}, "classes differ from classes_"),
        ({"extra": np.zeros(2)}, "unexpected arrays ['extra']"),
    ]
    for replace, message in cases:
        write_raw(path, header, dict(arrays, **replace))
        with pytest.raises(fastbp.ModelFileError, match=message.replace("[", "\\[").replace("]", "\\]")):
            fastbp.load(path)


# -- atomic writes ----------------------------------------------------------------------------
def test_a_failing_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = fastbp.Network([3, 2, 1], random_state=0)
    fastbp.save(old, path)
    new = fastbp.Network([3, 2, 1], random_state=1)
    real_write = np.lib.format.write_array
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_second)
    with pytest.raises(OSError, match="No space"):
        fastbp.save(new, path)
    monkeypatch.undo()
    assert np.array_equal(fastbp.load(path).params, old.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, fastbp
    net = fastbp.Network([400, 400, 400, 10], dtype=np.float64, init=None)
    path = sys.argv[1]
    print("ready", flush=True)
    for k in range(1, 10**6):
        net.params[:] = k
        fastbp.save(net, path)
""")


def test_kill_during_save_never_leaves_a_broken_model(tmp_path):
    """SIGKILL a process that saves a 2.6 MB model over and over: the file at the path is
    always a whole model, one of the versions written (temporaries may remain)."""
    path = tmp_path / "model.npz"
    fastbp.save(fastbp.Network([400, 400, 400, 10], init=None), path)
    seen = set()
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        params = fastbp.load(path).params
        assert params.size == 400 * 400 * 2 + 400 * 10 + 810
        assert np.all(params == params[0])  # one whole version, not a mix
        seen.add(float(params[0]))
    assert len(seen) >= 2 or max(seen) > 0  # the saves did replace the file


def test_paths_must_be_paths(tmp_path):
    with pytest.raises(TypeError, match="path must be a file path"):
        fastbp.save(fastbp.Network([2, 1]), 3)
    with pytest.raises(TypeError, match="path must be a file path"):
        fastbp.load(None)
    with pytest.raises(fastbp.ModelFileError, match="is not a file"):
        fastbp.load(tmp_path)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150 * int(os.environ.get("FASTBP_FUZZ_SCALE", "1")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
                      min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_random_damage_is_refused_or_harmless(tmp_path_factory, edits, cut):
    """Random bytes written over a saved estimator, and/or the file cut short: load() raises
    ModelFileError or returns a model that predicts finite numbers; nothing else, ever."""
    folder = tmp_path_factory.mktemp("damage")
    est = fastbp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X[:20], Y_BIN[:20])
    path = fastbp.save(est, folder / "m.npz")
    data = bytearray(path.read_bytes())
    for position, chunk in edits:
        position %= len(data)
        data[position:position + len(chunk)] = chunk
    if cut is not None:
        data = data[:cut % len(data)]
    path.write_bytes(bytes(data))
    try:
        model = fastbp.load(path)
    except fastbp.ModelFileError:
        return
    assert np.isfinite(model.predict_proba(X[:5])).all()


# -- RNNs -------------------------------------------------------------------------------------------
SEQ = RNG.normal(size=(30, 5, 2))
SEQ_Y = SEQ[:, :, 0].cumsum(axis=1)  # one target per step


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rnn_round_trip_keeps_weights_generator_targets_and_training(tmp_path, dtype):
    rnn = fastbp.RNN([2, 4, 1], activation="tanh", dtype=dtype, random_state=3)
    fastbp.train(rnn, SEQ, SEQ_Y, epochs=2, learning_rate=0.01)
    back = fastbp.load(fastbp.save(rnn, tmp_path / "rnn.npz"))
    assert isinstance(back, fastbp.RNN) and repr(back) == repr(rnn)
    assert back.params.dtype == rnn.params.dtype and np.array_equal(back.params, rnn.params)
    assert back.targets_ == "step" and np.shares_memory(back.W_h, back.params)
    assert np.array_equal(back.predict(SEQ), rnn.predict(SEQ))
    fastbp.train(rnn, SEQ, SEQ_Y, epochs=3, learning_rate=0.01)
    fastbp.train(back, SEQ, SEQ_Y, epochs=3, learning_rate=0.01)  # the generator was saved too
    assert np.array_equal(back.params, rnn.params)


def test_damaged_rnn_files_are_refused(tmp_path):
    path = fastbp.save(fastbp.RNN([2, 4, 1], random_state=0), tmp_path / "rnn.npz")
    header, arrays = fio.read_archive(path)
    cases = [
        (dict(header, sizes=[2, 4]), {}, "list of 3 integers"),
        (dict(header, sizes=[2, 5, 1]), {}, "need 46 params"),
        (dict(header, targets="tuple"), {}, "'targets' must be null or one of"),
        (dict(header, activation="swish"), {}, "activation"),
        (header, {"params": np.full_like(arrays["params"], np.inf)}, "must be finite"),
        (header, {"params": arrays["params"].astype(np.float32)}, "the header says float64"),
        (header, {"layout": arrays["layout"] + 1}, "layout array does not match"),
        (header, {"extra": np.zeros(2)}, "unexpected arrays ['extra']"),
    ]
    for head, replace, message in cases:
        write_raw(path, head, dict(arrays, **replace))
        with pytest.raises(fastbp.ModelFileError, match=message.replace("[", "\\[").replace("]", "\\]")):
            fastbp.load(path)


@pytest.mark.parametrize("cls, y", [(fastbp.RNNClassifier, np.where(SEQ[:, -1, 0] > 0, "up", "down")),
                                    (fastbp.RNNRegressor, SEQ_Y[:, -1])],
                         ids=["classifier", "regressor"])
def test_rnn_estimator_round_trip_predicts_and_trains_on_identically(tmp_path, cls, y):
    unfitted = fastbp.load(fastbp.save(cls(hidden_size=3, batch_size=1, max_iter=2,
                                           random_state=np.random.RandomState(4)), tmp_path / "u.npz"))
    assert type(unfitted) is cls and not hasattr(unfitted, "rnn_")
    est = unfitted.fit(SEQ, y)
    back = fastbp.load(fastbp.save(est, tmp_path / "f.npz"))
    assert type(back) is cls and back.get_params()["hidden_size"] == 3
    assert np.array_equal(back.rnn_.params, est.rnn_.params) and repr(back.rnn_) == repr(est.rnn_)
    assert np.array_equal(back.predict(SEQ), est.predict(SEQ))
    assert back.score(SEQ, y) == est.score(SEQ, y)
    assert (back.n_iter_, back.loss_curve_, back.loss_) == (est.n_iter_, est.loss_curve_, est.loss_)
    assert back.history_.loss == est.history_.loss and back.history_.stopped_by == "epochs"
    for model in (est, back):  # the generators were saved too: training goes on identically
        model.set_params(warm_start=True, max_iter=2).fit(SEQ, y)
    assert np.array_equal(back.rnn_.params, est.rnn_.params)


def test_damaged_rnn_estimator_files_are_refused(tmp_path):
    est = _rnn_estimator(fastbp.RNNClassifier, (SEQ[:, -1, 0] > 0).astype(int))
    path = fastbp.save(est, tmp_path / "clf.npz")
    header, arrays = fio.read_archive(path)
    fitted = header["fitted"]
    cases = [
        (dict(header, params=dict(header["params"], hidden_size=4)), {}, "not one of hidden_size=4"),
        (dict(header, params=dict(header["params"], solver="lbfgs")), {}, "solver must be one of"),
        (dict(header, params=dict(header["params"], colour=1)), {}, "unknown RNNClassifier parameters"),
        (dict(header, fitted=dict(fitted, n_features_in_=3)), {}, "n_features_in_"),
        (dict(header, fitted=dict(fitted, n_iter_=5)), {}, "'loss' has 2 entries for 5 epochs"),
        (dict(header, fitted=dict(fitted, per_step="no")), {}, "per_step"),
        (dict(header, fitted=dict(fitted, rnn=dict(fitted["rnn"], loss="squared_error"))), {},
         "classes do not fit"),
        (header, {"attr.classes_": np.array([0, 1, 2])}, "3 classes do not fit"),
        (header, {"rnn.params": np.full_like(arrays["rnn.params"], np.nan)}, "must be finite"),
        (header, {"rnn.extra": np.zeros(2)}, "unexpected arrays ['rnn.extra']"),
        ({k: v for k, v in header.items() if k != "fitted"}, {}, "unexpected arrays"),
    ]
    for head, replace, message in cases:
        write_raw(path, head, dict(arrays, **replace))
        with pytest.raises(fastbp.ModelFileError, match=message.replace("[", "\\[").replace("]", "\\]")):
            fastbp.load(path)


@pytest.mark.parametrize("cls, y", [(fastbp.RNNClassifier, (SEQ[:, :, 0] > 0).astype(int)),
                                    (fastbp.RNNRegressor, SEQ_Y[:, :, None])],
                         ids=["classifier per step", "regressor per step"])
def test_rnn_estimators_per_step_round_trip(tmp_path, cls, y):
    est = _rnn_estimator(cls, y)
    back = fastbp.load(fastbp.save(est, tmp_path / "m.npz"))
    assert back.rnn_.targets_ == "step" and back.predict(SEQ).shape == y.shape
    assert np.array_equal(back.predict(SEQ), est.predict(SEQ))


def test_damaged_rnn_regressor_files_are_refused(tmp_path):
    path = fastbp.save(_rnn_estimator(fastbp.RNNRegressor, SEQ_Y[:, -1]), tmp_path / "reg.npz")
    header, arrays = fio.read_archive(path)
    fitted, history = header["fitted"], header["fitted"]["history"]
    cases = [
        (dict(fitted, y_ndim=3), "'y_ndim' must be one of (1, 2)"),
        (dict(fitted, y_ndim=True), "'y_ndim' must be one of"),
        (dict(fitted, rnn=dict(fitted["rnn"], targets="step")), "'y_ndim' must be one of (3,)"),
        (dict(fitted, rnn=dict(fitted["rnn"], targets=None)), "'targets' is null"),
        (dict(fitted, history=dict(history, seconds=[])), "'seconds' has 0 entries for 2 epochs"),
        (dict(fitted, history=dict(history, accuracy=[0.5, 0.5])), "'accuracy' has 2 entries"),
        (dict(fitted, history=dict(history, stopped_by="boredom")), "stop rule's name"),
        (dict(fitted, n_features_in_=2.0), "n_features_in_"),
    ]
    for tampered, message in cases:
        write_raw(path, dict(header, fitted=tampered), arrays)
        with pytest.raises(fastbp.ModelFileError, match=re.escape(message)):
            fastbp.load(path)
    for params in (dict(learning_rate_init=-1.0), dict(n_jobs=0), dict(random_state="x"),
                   dict(dtype="float32")):
        write_raw(path, dict(header, params=dict(header["params"], **params)), arrays)
        with pytest.raises(fastbp.ModelFileError, match="invalid parameters|the parameters say"):
            fastbp.load(path)


def test_a_saved_estimator_loads_in_a_process_that_never_imported_the_drop_ins(tmp_path):
    est = quiet_fit(fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, Y_BIN)
    path = fastbp.save(est, tmp_path / "clf.npz")
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import sys, numpy as np, fastbp
        assert "fastbp.estimators" not in sys.modules
        est = fastbp.load({str(path)!r})
        print(type(est).__name__, est.predict(np.load({str(tmp_path / "X.npy")!r})).tolist())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, predictions = out.stdout.split(" ", 1)
    assert name == "MLPClassifier" and json.loads(predictions) == est.predict(X).tolist()


def test_network_and_rnn_answer_one_interface():
    """Both models: predict(X, n_jobs=None), evaluate(X, Y, sample_weight=None), and the
    training interface the epoch driver asks (each model knows its kernels)."""
    import inspect
    for cls in (fastbp.Network, fastbp.RNN):
        assert list(inspect.signature(cls.predict).parameters) == ["self", "X", "n_jobs"]
        assert list(inspect.signature(cls.evaluate).parameters) == ["self", "X", "Y", "sample_weight"]
        for name in ("check_training", "training_kernel", "training_arguments",
                     "validation_arguments", "note_targets"):
            assert getattr(cls, name) is not getattr(fastbp.network.Model, name) or name == "note_targets"
    net = fastbp.Network([4, 3, 1], random_state=0)
    assert np.array_equal(net.predict(X, n_jobs=1), net.predict(X))
    with pytest.raises(ValueError, match="n_jobs"):
        net.predict(X, n_jobs=0)


def test_tampered_trainer_weights_and_numbers_are_model_file_errors(saved):
    """Fields whose bad values once escaped as TypeError, ValueError or OverflowError."""
    path, header, arrays = saved
    cases = [
        (("attributes", "_trainer", "optimizer"), ["sgd"], "invalid trainer"),
        (("attributes", "_trainer", "mode"), "case", None),  # a valid trainer: loads
        (("attributes", "loss_"), 10 ** 400, "must be a number or null"),
        (("attributes", "n_iter_"), 2 ** 64, "non-negative integer"),
        (("params", "class_weight"), {"items": [[[1], 2.0]]}, "class_weight must pair"),
    ]
    for keys, value, message in cases:
        write_raw(path, _change(header, keys, value), arrays)
        if message is None:
            fastbp.load(path)
            continue
        with pytest.raises(fastbp.ModelFileError, match=message):
            fastbp.load(path)
    rprop = _change(_change(header, ("attributes", "_trainer", "optimizer"), "rprop"),
                    ("attributes", "_trainer", "mode"), "case")
    write_raw(path, rprop, dict(arrays, **{"attr._trainer.state": np.zeros(
        (2, arrays["attr._trainer.state"].shape[1]))}))
    with pytest.raises(fastbp.ModelFileError, match="invalid trainer"):
        fastbp.load(path)
