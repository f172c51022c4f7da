"""Kernels run from the cache without Numba (fastbp/_kernels/_native.py).

A process whose kernels are all in the cache links copies of their machine code itself and
imports neither Numba nor llvmlite; it must compute the same bits as Numba's dispatcher
running the same kernels, and hand everything it cannot serve (new kinds of arguments,
parallel kernels, a damaged or foreign copy) to Numba.
"""
import json
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from numba import typeof

import fastbp
from fastbp import _kernels as K
from fastbp._kernels import _native, backprop
from fastbp._kernels.codes import Codes, Optimizer, Pack

PACKAGE = pathlib.Path(fastbp.__file__).resolve().parent


def run_python(code, **env):
    environment = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=environment)
    return json.loads(out.stdout)


PROGRAM = """
import json, sys, warnings
import numpy as np
import fastbp
warnings.simplefilter("ignore")
X, y = fastbp.datasets.xor()
out = {}
for mode in ("case", "epoch", "minibatch"):
    net = fastbp.Network([2, 4, 1], random_state=0)
    h = fastbp.train(net, X, y, mode=mode, epochs=30, batch_size=2)
    out[mode] = [net.params.tobytes().hex(), list(h.loss), net.predict(X).tobytes().hex()]
rng = np.random.default_rng(0)
Xd = rng.normal(size=(150, 6))
yd = (Xd[:, 0] + Xd[:, 1] > 0).astype(int) + (Xd[:, 2] > 1)
clf = fastbp.MLPClassifier(hidden_layer_sizes=(7,), max_iter=15, batch_size=40,
                           random_state=0).fit(Xd, yd)
out["classifier"] = [clf.loss_curve_, clf.predict_proba(Xd).tobytes().hex(), clf.score(Xd, yd)]
out["numba"] = sorted({m.split(".")[0] for m in sys.modules} & {"numba", "llvmlite"})
print(json.dumps(out))
"""


def test_a_cached_program_runs_without_numba_and_computes_the_same_bits():
    """The first run may compile (and keeps copies of what it ran); the second finds every
    kernel it calls in the cache and imports neither Numba nor llvmlite; a third with FASTBP_NATIVE=0 runs
    the same kernels through Numba. All three agree to the bit."""
    first = run_python(PROGRAM)
    second = run_python(PROGRAM)
    through_numba = run_python(PROGRAM, FASTBP_NATIVE="0")
    assert second.pop("numba") == []  # neither Numba nor llvmlite
    assert through_numba.pop("numba") == ["llvmlite", "numba"]
    first.pop("numba")
    assert second == through_numba == first


def test_the_kinds_of_arguments_tell_apart_what_numba_types_apart():
    a = np.zeros((3, 4))
    readonly = a.copy()
    readonly.flags.writeable = False
    unaligned = np.frombuffer(bytes(8 * 12 + 1), dtype=np.float64, offset=1, count=12)
    values = [a, a.T, a[:, ::2], a.astype(np.float32), a.astype(np.int64), a.ravel(), readonly,
              unaligned, np.zeros(3, dtype=np.uint64), np.zeros((2, 2, 2)), np.zeros(0),
              0, 1, -5, 2 ** 62, 2 ** 63, True, False, 1.5, None, np.float32(1), np.float64(1),
              np.int64(3), np.uint64(3), np.bool_(True), (a, None), (a, a), (None, a),
              (1, 2.0), ((a, None), 3), Pack((Optimizer(1), a)), Pack((Optimizer(2), a)),
              Codes(3, 4, 1), Codes(3, 4, 0)]
    keys = [_native.key_of(v) for v in values]
    assert _native._UNSUPPORTED not in keys
    types = [typeof(v) for v in values]
    for i in range(len(values)):
        for j in range(len(values)):
            if keys[i] == keys[j]:
                assert types[i] == types[j], (values[i], values[j])
    # what Numba would type but a copy never serves
    class Subclass(np.ndarray):
        pass

    for value in ([1, 2], a.view(Subclass), object(), 2 ** 64, (a, [1]), {"a": 1}):
        assert _native.key_of(value) is _native._UNSUPPORTED


COPY_PROGRAM = """
import json, sys
import numpy as np
import fastbp
from fastbp._kernels import _cache, _native, backprop

folder = _cache.cache_dir() / "native"
folder.mkdir(parents=True)
stale = folder / "squared_weights-0123456789-abc.json"  # a copy of other sources
other = folder / "squared_weights_more-0123456789-abc.json"  # another kernel's
stale.write_text("{}")
other.write_text("{}")
net = fastbp.Network([3, 5, 2], random_state=0)
args = (net.params, net.layout)
kernel = _native.kernel("squared_weights")
out = dict(numba=kernel(*args))  # an empty cache: Numba compiles it; a copy is kept
out.update(direct=backprop.squared_weights(*args),
           numpy=float(sum((w ** 2).sum() for w in net.coefs)),
           again=kernel(*args),  # this process goes on with Numba for these arguments
           stale=stale.exists(), other=other.exists())
key = _native.key_of(args)
copy = _native._load("squared_weights", key)
out["copy"] = copy(*args)
json_path, object_path = _native._paths("squared_weights", _native._text(key))
record, code = json.loads(json_path.read_text()), object_path.read_bytes()
defined, undefined = _native.elf_symbols(code)
out["symbols"] = [record["wrapper"] in defined, sorted(undefined) == record["undefined"]]

def loads(record_change=None, code_change=None):
    _native._LOADED.clear()
    json_path.write_text(json.dumps(dict(record, **(record_change or {}))))
    object_path.write_bytes(code_change(code) if code_change else code)
    return _native._load("squared_weights", key) is not None

out["loads"] = [
    loads(code_change=lambda c: c[:-1] + bytes([c[-1] ^ 1])),  # a bit flipped
    loads(code_change=lambda c: c[: len(c) // 2]),  # cut short
    loads({"undefined": record["undefined"] + ["fastbp_no_such_symbol"]}),
    loads({"host": ["another machine", "another cpu", []]}),
    loads({"format": _native.FORMAT + 1}),
    loads({"key": "another key"}),
    loads(),  # as it was made
]
json_path.write_text("{not json")
out["not_json"] = _native._load("squared_weights", key) is not None
print(json.dumps(out))
"""


def test_a_copy_runs_what_numba_ran_and_damaged_or_foreign_copies_are_refused(tmp_path):
    """In a cache of its own: Numba compiles squared_weights, a copy is kept (and the copies
    of that kernel from other sources go); the copy returns Numba's bits; a copy whose code
    or description does not fit is refused."""
    out = run_python(COPY_PROGRAM, FASTBP_CACHE_DIR=str(tmp_path))
    assert out["numba"] == out["direct"] == out["again"] == out["copy"]
    assert out["numba"] == pytest.approx(out["numpy"], rel=1e-12)
    assert not out["stale"] and out["other"]
    assert out["symbols"] == [True, True]
    assert out["loads"] == [False] * 6 + [True]
    assert not out["not_json"]


def test_a_parallel_kernel_is_left_to_numba():
    """A parallel kernel needs Numba's threads: its copy (if any) is refused, Numba runs it."""
    program = (
        "import json, sys, numpy as np, fastbp\n"
        "from fastbp import _kernels as K\n"
        "net = fastbp.Network([64, 512, 1], random_state=0)\n"
        "X = np.random.default_rng(0).random((5000, 64))\n"
        "p = net.predict(X, n_jobs=2)\n"
        "print(json.dumps([p.tobytes().hex(), 'numba' in sys.modules,\n"
        "                  [v is None for v in K.predict._plans.values()]]))")
    first, second = run_python(program), run_python(program)
    assert first[0] == second[0]
    assert second[1] is True and second[2] == [True]


def test_n_jobs_waits_for_numba_and_applies_once_it_starts():
    """compute_threads entered before Numba is imported pins BLAS at once (the copies' serial
    kernels call it), and sets Numba's threads when a kernel inside first needs Numba, or an
    inner compute_threads starts after Numba was imported; both are restored at the end, as
    if set on entry."""
    out = run_python(
        "import json, sys\n"
        "import scipy.linalg.cython_blas\n"
        "from threadpoolctl import threadpool_info\n"
        "from fastbp import _threads\n"
        "from fastbp import _kernels as K\n"
        "def blas():\n"
        "    return sorted(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas')\n"
        "out = dict(blas_before=blas())\n"
        "with _threads.compute_threads(1):\n"
        "    out['pending'] = 'numba' not in sys.modules\n"
        "    out['blas'] = blas()\n"
        "    K.run_case.dispatcher  # a kernel about to run through Numba\n"
        "    import numba\n"
        "    out['inside'] = numba.get_num_threads()\n"
        "out.update(after=numba.get_num_threads(), blas_after=blas(),\n"
        "           default=numba.config.NUMBA_NUM_THREADS)\n"
        "print(json.dumps(out))")
    assert out["pending"] and out["inside"] == 1 and out["after"] == out["default"]
    assert out["blas"] and set(out["blas"]) == {1} and out["blas_after"] == out["blas_before"]
    nested = run_python(
        "import json\n"
        "from fastbp import _threads\n"
        "with _threads.compute_threads(1):\n"
        "    import numba  # imported another way than by a kernel\n"
        "    with _threads.compute_threads(None):  # the outer setting applies first\n"
        "        inside = numba.get_num_threads()\n"
        "print(json.dumps([inside, numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS]))")
    assert nested[0] == 1 and nested[1] == nested[2]


def test_the_math_functions_bind_as_numbas():
    from numba.core.intrinsics import INTR_MATH
    assert _native.MATH == INTR_MATH


def test_a_kernel_is_the_dispatchers_stand_in():
    run_case = K.run_case
    assert isinstance(run_case, _native.Kernel) and K.run_case is run_case
    assert pickle.loads(pickle.dumps(run_case)) is run_case
    assert run_case.py_func is backprop.run_case.py_func  # attributes: the dispatcher's
    assert K.fast_exp is backprop.fast_exp  # a kernel Python does not call: as before


def test_every_kernel_python_calls_is_served_by_a_stand_in():
    called = set()
    for path in PACKAGE.glob("*.py"):
        called |= set(re.findall(r"\bK\.([a-z_][a-z0-9_]*)\(", path.read_text()))
    called -= {name for name in called if not hasattr(backprop, name)
               or not hasattr(getattr(backprop, name), "py_func")}  # codes (plain Python)
    assert called <= K.CALLED_FROM_PYTHON
    for name in K.CALLED_FROM_PYTHON:
        assert hasattr(getattr(backprop, name), "py_func"), name


def test_native_is_off_where_asked(monkeypatch):
    assert _native.enabled()
    for name, value in (("FASTBP_NATIVE", "0"), ("NUMBA_DISABLE_JIT", "1"),
                        ("NUMBA_CPU_NAME", "generic")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            assert not _native.enabled()


def test_the_cache_stamp_follows_the_code_switches():
    stamps = [run_python("import json; from fastbp._kernels import _cache; "
                         "print(json.dumps(_cache.source_stamp()))", **env)
              for env in ({}, {"FASTBP_LINK_EARLY": "1"}, {"FASTBP_EMIT_ALL": "1"},
                          {"FASTBP_LINK_EARLY": "0"})]
    assert len(set(stamps[:3])) == 3 and stamps[3] == stamps[0]


def test_the_planned_thread_count_is_numbas():
    """planned_threads (what `fastbp demo` prints) finds, without importing Numba, the count
    Numba's threads take under compute_threads(n_jobs)."""
    planned, numbas = run_python(
        "import json\n"
        "from fastbp import _threads\n"
        "jobs = (None, 1, 2, -1, -2, 99)\n"
        "planned = [_threads.planned_threads(n) for n in jobs]\n"
        "import numba\n"
        "numbas = []\n"
        "for n in jobs:\n"
        "    with _threads.compute_threads(n):\n"
        "        numbas.append(numba.get_num_threads())\n"
        "print(json.dumps([planned, numbas]))")
    assert planned == numbas
