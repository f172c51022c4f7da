"""First contact: what `import fastbp` loads, what a call compiles, where the machine code goes.

New processes, since the point is what a fresh interpreter does. Most share this machine's
cache folder with the rest of the suite, so little of theirs compiles; the tests about what
a first run compiles, or what a process that only loads kernels can do, have caches of
their own.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

import fastbp
from fastbp import _compile, cli
from fastbp._kernels import _cache

PACKAGE = pathlib.Path(fastbp.__file__).resolve().parent


def run_python(code, *args, **env):
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=dict(os.environ, **env))
    return out.stdout


def numba_python(code, *args, **env):
    """run_python with every kernel call served by Numba's dispatchers (FASTBP_NATIVE=0: no
    copy of a kernel's machine code run without Numba, fastbp/_kernels/_native.py), for the
    tests that read what Numba compiled or loaded."""
    return run_python(code, *args, FASTBP_NATIVE="0", **env)


def test_import_loads_neither_numba_nor_scikit_learn():
    loaded = json.loads(run_python(
        "import json, sys, fastbp\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numba', 'sklearn', 'scipy', 'llvmlite'))))"))
    assert loaded == []


def test_a_default_fit_compiles_no_feature_it_does_not_use():
    """XOR with train()'s defaults (plain SGD, track='pass', no dropout, no validation):
    the dropout passes, the other optimizers' updates, the evaluation pass and the parallel
    kernels are neither compiled nor loaded."""
    used = json.loads(numba_python(
        "import json, fastbp\n"
        "from fastbp import _kernels as K\n"
        "X, y = fastbp.datasets.xor()\n"
        "net = fastbp.Network([2, 4, 1], random_state=0)\n"
        "fastbp.train(net, X, y, epochs=10)\n"
        "net.predict(X)\n"
        "names = ['run_case', 'run_case_parallel', 'predict', 'predict_serial', 'forward_dropout',\n"
        "         'errors_and_update_dropout', 'any_update_outer', 'any_update_flat',\n"
        "         'case_pass']\n"
        "print(json.dumps({n: len(getattr(K, n).signatures) for n in names}))"))
    assert used == {"run_case": 1, "run_case_parallel": 0, "predict": 0, "predict_serial": 1,
                    "forward_dropout": 0, "errors_and_update_dropout": 0, "any_update_outer": 0,
                    "any_update_flat": 0, "case_pass": 0}


def test_a_small_epoch_mode_fit_compiles_only_its_tuple_by_tuple_pass(tmp_path):
    """Epoch updating on XOR goes tuple by tuple (four tuples): with an empty cache it compiles
    that pass alone, not the block-at-a-time gradient (chunk_gradient, block_gradient) it does
    not run (Numba prunes only branches on an argument that is None: see Network._tuples)."""
    used = json.loads(numba_python(
        "import json, fastbp\n"
        "from fastbp import _kernels as K\n"
        "X, y = fastbp.datasets.xor()\n"
        "net = fastbp.Network([2, 4, 1], random_state=0)\n"
        "fastbp.train(net, X, y, mode='epoch', learning_rate=2.0, epochs=10)\n"
        "names = ['run_full_batch', 'chunk_gradient', 'block_gradient', 'tuples_gradient']\n"
        "print(json.dumps({n: len(getattr(K, n).signatures) for n in names}))",
        FASTBP_CACHE_DIR=str(tmp_path), FASTBP_GENERIC_KERNELS="0"))  # as users run it
    # tuples_gradient: the generic tuple pass, which the shaped one for 2-4-1 replaces
    assert used == {"run_full_batch": 1, "chunk_gradient": 0, "block_gradient": 0,
                    "tuples_gradient": 0}


def test_the_threading_layer_starts_without_a_kernel():
    """In a new process, threading_layer() starts Numba's layer without compiling anything,
    and the parallel kernels then run on that layer."""
    out = json.loads(run_python(
        "import json, numba, numpy as np, fastbp\n"
        "from fastbp import _threads\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "import gc\n"
        "layer = _threads.threading_layer()\n"
        "compiled = sum(len(d.overloads) for d in gc.get_objects() if isinstance(d, Dispatcher))\n"
        "net = fastbp.Network([64, 512, 1], random_state=0)\n"
        "X = np.random.default_rng(0).random((5000, 64))\n"
        "assert X.shape[0] * net.n_params >= fastbp._model.PARALLEL_FORWARD_WORK\n"
        "net.predict(X, n_jobs=2)\n"
        "from fastbp import _kernels as K\n"
        "print(json.dumps([layer, compiled, numba.threading_layer(),\n"
        "                  len(K.predict.signatures)]))"))
    layer, compiled, after, parallel_predicts = out
    assert compiled == 0 and parallel_predicts == 1  # the predict that ran was the parallel one
    assert layer == after and layer in ("tbb", "omp")


def test_kernels_are_cached_outside_the_package_and_stamped_by_all_its_files(tmp_path):
    from fastbp._kernels import backprop
    locator = backprop.run_case._cache._impl.locator
    assert type(locator).__name__ == "FastbpCacheLocator"
    path = pathlib.Path(locator.get_cache_path()).resolve()
    assert PACKAGE not in path.parents
    assert locator.get_source_stamp() == _cache.source_stamp()
    # the folder follows FASTBP_CACHE_DIR and is named after the version
    where = run_python("from fastbp._kernels._cache import cache_dir; print(cache_dir())",
                       FASTBP_CACHE_DIR=str(tmp_path)).strip()
    assert pathlib.Path(where).parent == tmp_path and fastbp.__version__ in pathlib.Path(where).name


def test_compile_command_where_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTBP_CACHE_DIR", str(tmp_path))
    assert cli.main(["compile", "--where"]) == 0
    where = pathlib.Path(capsys.readouterr().out.strip())
    assert where.parent == tmp_path
    where.mkdir()
    (where / "stale.nbi").write_text("x")
    assert cli.main(["compile", "--clear"]) == 0
    assert not where.exists()


def test_compile_runs_configurations_in_worker_processes():
    names = list(_compile.configurations())
    assert any("MLPClassifier" in n for n in names) and any("float32" in n for n in names)
    lines = []
    seconds = _compile.compile_all(jobs=1, report=lines.append,
                                   names=["train(mode='case') small network, float64"])
    assert len(lines) == 1 and "small network" in lines[0] and seconds > 0


def test_a_run_compiles_the_tuple_orders_it_uses(tmp_path):
    """A drop-in's run copies scikit-learn's shuffles, drawn in Python: its kernel compiles no
    generator of its own (hashed_order); train()'s run draws its orders with that generator.
    (A new cache: a kernel loaded from the cache compiles none of its callees.)"""
    counts = json.loads(numba_python(
        "import json, warnings, numpy as np, fastbp\n"
        "from fastbp import _kernels as K\n"
        "warnings.simplefilter('ignore')\n"
        "X, y = fastbp.datasets.xor()\n"
        "fastbp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, batch_size=2,\n"
        "                     random_state=0).fit(X, y)\n"
        "counts = [len(K.epoch_order.signatures), len(K.hashed_order.signatures)]\n"
        "fastbp.train(fastbp.Network([2, 3, 1], random_state=0), X, y, epochs=2)\n"
        "counts += [len(K.epoch_order.signatures), len(K.hashed_order.signatures)]\n"
        "print(json.dumps(counts))",
        FASTBP_CACHE_DIR=str(tmp_path)))
    assert counts == [1, 0, 2, 1]


def test_passes_are_linked_into_the_run_kernels_as_compiled(tmp_path):
    """A run kernel links its pass in late, as the pass's own library compiled it, after the
    run kernel's own code is optimised (fastbp/_kernels/_linking.py), and the epoch
    bookkeeping early, to be inlined; the judgement reads the linked code, so a pass loaded
    from the cache counts as one, and so does a library that links one in (the generic
    stand-in of a shaped pass). FASTBP_LINK_EARLY=1 leaves Numba's own way."""
    program = (
        "import json, numba.core.codegen as cg, fastbp\n"
        "from fastbp import _kernels as K\n"
        "from fastbp._kernels import _linking\n"
        "X, y = fastbp.datasets.xor()\n"
        "fastbp.train(fastbp.Network([2, 9, 1]), X, y, mode='case', epochs=2)\n"
        "run = next(iter(K.run_case.overloads.values())).library\n"
        "own = next(iter(K.case_pass_small.overloads.values())).library\n"
        "print(json.dumps(dict(patched=getattr(cg.CPUCodeLibrary.finalize, '_fastbp', False), "
        "late=sorted(l.name for l in run._linking_libraries if _linking._is_late(l)), "
        "early=sorted(l.name for l in run._linking_libraries if not _linking._is_late(l)), "
        "own=_linking._is_late(own))))\n")
    for early in ("", "1"):
        out = json.loads(numba_python(program, FASTBP_CACHE_DIR=str(tmp_path / f"c{early}"),
                                    FASTBP_LINK_EARLY=early, FASTBP_GENERIC_KERNELS="1"))
        assert out["patched"] == (not early)
        assert out["late"] == ["generic_case_pass_small"] and out["own"]
        assert {"begin_epoch", "close_epoch", "record_pass"} <= set(out["early"])


def test_inlined_helpers_are_translated_once_and_left_unchanged(tmp_path):
    """Numba inlines a helper by translating it again at every call site and copying its IR
    block by block; fastbp keeps each helper's translation (fastbp/_kernels/_inlining.py) and
    copies an IR's blocks with one memo. Each of fastbp's helpers is then translated once per
    process, the kept IR is never altered by the inlining that uses it, and the kernels,
    serial and parallel, compute the same bits as with Numba's own way
    (FASTBP_INLINE_UNCACHED=1)."""
    program = (
        "import collections, json, numpy as np, fastbp\n"
        "from fastbp._kernels import _inlining\n"
        "from numba.core.inline_closurecall import InlineWorker\n"
        "translate = InlineWorker.run_untyped_passes\n"
        "made, seen = {}, collections.Counter()\n"
        "def text(ir):\n"
        "    return [str(s) for _, b in sorted(ir.blocks.items()) for s in b.body]\n"
        "def counted(self, func, enable_ssa=False):\n"
        "    ir = translate(self, func, enable_ssa)\n"
        "    if func.__module__.startswith('fastbp.') and not enable_ssa:\n"
        "        seen[func.__qualname__] += 1\n"
        "        made[id(ir)] = (ir, text(ir))\n"
        "    return ir\n"
        "InlineWorker.run_untyped_passes = counted\n"
        "X, y = fastbp.datasets.xor()\n"
        "out = {}\n"
        "for mode in ('case', 'epoch'):\n"
        "    net = fastbp.Network([2, 4, 1], random_state=0)\n"
        "    fastbp.train(net, X, y, mode=mode, epochs=50)\n"
        "    out[mode] = net.predict(X).tolist()\n"
        "# a parallel run kernel (10,000 tuples: chunks on threads), whose parfors inline too\n"
        "rng = np.random.default_rng(0)\n"
        "Xp = rng.normal(size=(10_000, 3)); Yp = (Xp.sum(axis=1, keepdims=True) > 0) * 1.0\n"
        "net = fastbp.Network([3, 5, 1], random_state=0)\n"
        "fastbp.train(net, Xp, Yp, mode='minibatch', batch_size=2_000, epochs=2, n_jobs=2)\n"
        "out['parallel'] = net.params.tolist()\n"
        "# the implementations of fastbp's inline='always' overloads, and how often each was\n"
        "# compiled on its own\n"
        "from numba.core.typing.templates import _OverloadFunctionTemplate as T\n"
        "alone = [len(d.overloads) for t in T.__subclasses__()\n"
        "         if getattr(t._overload_func, '_fastbp_inlined', False)\n"
        "         and t._inline.is_always_inline for d, _ in t._impl_cache.values() if d]\n"
        "print(json.dumps(dict(out=out, seen=seen, kept=len(_inlining._KEPT), alone=alone,\n"
        "    unchanged=all(text(ir) == before for ir, before in made.values()))))\n")
    runs = {flag: json.loads(numba_python(program, FASTBP_CACHE_DIR=str(tmp_path / f"c{flag}"),
                                        FASTBP_INLINE_UNCACHED=flag))
            for flag in ("", "1")}
    kept, numba_way = runs[""], runs["1"]
    assert kept["kept"] > 10 and numba_way["kept"] == 0
    assert max(kept["seen"].values()) == 1  # once each
    assert max(numba_way["seen"].values()) > 1  # (what it saves: translations per call site)
    assert kept["unchanged"]
    assert kept["out"] == numba_way["out"]
    # inline="always" overloads are typed and inlined, never compiled alone, where Numba's
    # way compiled each implementation to machine code as well
    assert len(kept["alone"]) >= 5 and set(kept["alone"]) == {0}
    assert len(numba_way["alone"]) == len(kept["alone"]) and min(numba_way["alone"]) >= 1


def test_a_callee_is_emitted_only_when_python_calls_it(tmp_path):
    """A kernel compiled while another compiles runs inside its caller's machine code: its
    own is emitted only if Python calls it, and the cache keeps it as LLVM bitcode until
    then, as machine code after (fastbp/_kernels/_linking.py). squared_weights is both: a
    callee of the drop-ins' run kernels (the L2 term of the loss), and called from Python.
    FASTBP_EMIT_ALL=1 emits every kernel at once, as Numba does."""
    program = (
        "import json, sys, numpy as np, fastbp\n"
        "from fastbp import _kernels as K\n"
        "from numba.core import codegen\n"
        "kinds = []\n"
        "load = codegen.JITCodeLibrary._unserialize\n"
        "def recorded(cls, cg, state):\n"
        "    if state[0] == 'squared_weights':\n"
        "        kinds.append(state[1])\n"
        "    return load.__func__(cls, cg, state)\n"
        "codegen.JITCodeLibrary._unserialize = classmethod(recorded)\n"
        "net = fastbp.Network([3, 5, 2], random_state=0)\n"
        "out = {}\n"
        "if sys.argv[1].startswith('fit'):\n"
        "    X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)\n"
        "    est = fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)\n"
        "    out['loss'] = est.fit(X, y).loss_curve_\n"
        "if sys.argv[1] != 'fit':\n"
        "    out['value'] = K.squared_weights(net.params, net.layout)\n"
        "    out['numpy'] = float(sum((W ** 2).sum() for W in net.coefs))\n"
        "cres = next(iter(K.squared_weights.overloads.values()))\n"
        "out.update(loaded=kinds, waits=getattr(cres.library, '_fastbp_unemitted', False))\n"
        "print(json.dumps(out))\n")

    def run(step, cache, **env):
        return json.loads(numba_python(program, step, FASTBP_CACHE_DIR=str(tmp_path / cache), **env))

    fit = run("fit", "c")
    assert fit["waits"] and fit["loaded"] == []  # compiled as a callee: not emitted
    called = run("call", "c")  # loaded as bitcode, emitted when Python called it
    assert called["loaded"] == ["bitcode"] and not called["waits"]
    assert called["value"] == pytest.approx(called["numpy"], rel=1e-12)
    again = run("call", "c")  # saved again as machine code
    assert again["loaded"] == ["object"] and again["value"] == called["value"]
    both = run("fit+call", "d")  # compiled as a callee, then called in the same process
    assert not both["waits"] and both["loaded"] == [] and both["value"] == called["value"]
    assert both["loss"] == fit["loss"]
    assert run("call", "d")["loaded"] == ["object"]
    numba_way = run("fit", "e", FASTBP_EMIT_ALL="1")
    assert not numba_way["waits"] and numba_way["loss"] == fit["loss"]


def test_a_process_that_only_loads_kernels_runs_them(tmp_path):
    """Kernels load from the cache without Numba's registry refresh (fastbp/_kernels/
    _cache.py): a process that compiles nothing runs a parallel run kernel, a batch-normalised
    network's, a recurrent one's and float32 epoch updating, taken from a cache another
    process filled, and agrees bit for bit with the process that compiled them (which runs
    the callers' code, as the loading ones do: fastbp/_kernels/_linking.py)."""
    program = (
        "import json, numpy as np, fastbp\n"
        "from numba.core import event\n"
        "compiled = []\n"
        "class Count(event.Listener):\n"
        "    def on_start(self, ev): compiled.append(1)\n"
        "    def on_end(self, ev): pass\n"
        "event.register('numba:compile', Count())\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(10_000, 3)); Y = (X.sum(axis=1, keepdims=True) > 0) * 1.0\n"
        "net = fastbp.Network([3, 5, 1], random_state=0)\n"
        "fastbp.train(net, X, Y, mode='minibatch', batch_size=2_000, epochs=2, n_jobs=2)\n"
        "bn = fastbp.Network([3, 6, 1], batch_norm=True, random_state=0)\n"
        "fastbp.train(bn, X[:200], Y[:200], mode='minibatch', batch_size=50, epochs=2)\n"
        "S = rng.normal(size=(40, 5, 3))\n"
        "rnn = fastbp.RNN([3, 4, 1], random_state=0)\n"
        "fastbp.train(rnn, S, S.sum(axis=(1, 2))[:, None] / 10, epochs=2)\n"
        "n32 = fastbp.Network([3, 8, 1], dtype=np.float32, random_state=0)\n"
        "fastbp.train(n32, X[:500].astype(np.float32), Y[:500].astype(np.float32),\n"
        "             mode='epoch', epochs=5)\n"
        "print(json.dumps(dict(compiled=len(compiled), out=[net.params.tolist(),\n"
        "    bn.predict(X[:5]).tolist(), rnn.predict(S[:5]).tolist(), n32.params.tolist()])))\n")
    first, second, third = (json.loads(run_python(program, FASTBP_CACHE_DIR=str(tmp_path)))
                            for _ in range(3))
    assert first["compiled"] > 0 and second["compiled"] == third["compiled"] == 0
    assert third["out"] == second["out"] == first["out"]  # the same bits every time


def test_the_blas_libraries_are_found_as_threadpoolctl_finds_them():
    """fastbp pins BLAS to one thread around its kernels; it finds the BLAS libraries among
    the files mapped into the process (fastbp._threads._blas_of_mapped_files), not by
    threadpoolctl's slower scan of every library: the same libraries either way."""
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels call)
    from threadpoolctl import ThreadpoolController

    from fastbp import _threads
    quick = _threads._blas_of_mapped_files(ThreadpoolController)
    full = ThreadpoolController().select(user_api="blas")
    assert quick is not None and full.lib_controllers
    assert sorted(c.filepath for c in quick.lib_controllers) == \
        sorted(c.filepath for c in full.lib_controllers)
