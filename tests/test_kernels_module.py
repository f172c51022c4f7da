"""Every compiled function lives in fastbp/_kernels/ (one module per concern, gathered by
backprop.py), every one is cached, and an edit to any kernel file recompiles them all.

Numba keys a cached kernel on the content of the file that defines it only: a change in a
helper of another file would leave its callers' cached machine code stale. fastbp's cache
locator stamps every kernel with a hash of all of fastbp/_kernels instead, and the last test
here proves it on a copy of the package.
"""
import importlib
import inspect
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import numba.core.caching
import numba.core.registry
import numpy as np
from numba import njit

import fastbp
from fastbp._kernels import backprop

PACKAGE = pathlib.Path(fastbp.__file__).parent
KERNEL_MODULES = ("fastmath", "optimizers", "steps", "blocks", "passes", "rnn", "batch_norm", "runs")
JIT_DECORATOR = re.compile(r"^\s*@(numba\.)?(n?jit|vectorize|guvectorize|cfunc)\b", re.MULTILINE)


def test_only_the_kernel_modules_compile():
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if JIT_DECORATOR.search(p.read_text()))
    assert users == sorted(f"_kernels/{m}.py" for m in KERNEL_MODULES)


def test_kernel_modules_hold_only_cached_compiled_functions():
    total = 0
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"fastbp._kernels.{name}")
        plain = [n for n, obj in vars(module).items()
                 if inspect.isfunction(obj) and obj.__module__ == module.__name__]
        assert plain == [], name
        kernels = [obj for obj in vars(module).values()
                   if isinstance(obj, numba.core.registry.CPUDispatcher)
                   and obj.py_func.__module__ == module.__name__]
        assert kernels, name
        uncached = [k.py_func.__name__ for k in kernels
                    if isinstance(k._cache, numba.core.caching.NullCache)]
        assert uncached == [], name
        assert all(getattr(backprop, k.__name__) is k for k in kernels)  # gathered there
        total += len(kernels)
    assert total >= 90


def test_an_edited_helper_recompiles_its_callers(tmp_path):
    """In a copy of the package, predict's kernel (passes.py) compiled and cached, then the
    logistic function it reaches through its forward pass edited in another file (fastmath.py): a
    new process runs the edited helper, not the cached code."""
    shutil.copytree(PACKAGE, tmp_path / "fastbp", ignore=shutil.ignore_patterns("__pycache__"))
    program = textwrap.dedent("""
        import numpy as np, fastbp
        from fastbp._kernels import backprop as K
        net = fastbp.Network([1, 1], init=None)  # zero weights: the output is logistic(0)
        print(net.predict(np.zeros((1, 1)))[0, 0], sum(K.predict_serial.stats.cache_hits.values()))
    """)
    env = {"PATH": "", "FASTBP_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}

    def run(native="1"):
        out = subprocess.run([sys.executable, "-c", program], cwd=tmp_path,
                             env=dict(env, FASTBP_NATIVE=native), capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        value, hits = out.stdout.split()
        return float(value), int(hits)

    assert run("0") == (0.5, 0)  # compiled
    assert run("0") == (0.5, 1)  # loaded from the cache
    assert run() == (0.5, 1)  # loaded by Numba again, and a copy of its machine code kept
    assert run() == (0.5, 0)  # that copy ran, not Numba's dispatcher (_native.py)
    fast_math = tmp_path / "fastbp" / "_kernels" / "fastmath.py"
    text = fast_math.read_text()
    edited = text.replace('    """1 / (1 + exp(-x))', '    x = x + 1.0  # edited\n    """1 / (1 + exp(-x))', 1)
    assert edited != text
    fast_math.write_text(edited)
    value, hits = run()
    # logistic(0 + 1): recompiled (the copy was of the old sources: never run again)
    assert hits == 0 and abs(value - 1 / (1 + math.exp(-1))) < 1e-12


def test_training_runs_leave_no_array_behind():
    """The per-epoch helpers compile without reference counts (NO_REFCOUNT in _setup.py):
    each run kernel's arrays are still freed, in every mode, on the shaped and the generic
    passes, with validation data (Numba's own allocation counts, NUMBA_NRT_STATS)."""
    program = textwrap.dedent("""
        import os, numpy as np, fastbp
        from numba.core.runtime import rtsys
        X, y = fastbp.datasets.xor()
        Y = y.reshape(-1, 1).astype(float)
        def live():
            s = rtsys.get_allocation_stats()
            return s.alloc - s.free, s.mi_alloc - s.mi_free
        runs = [dict(mode="case"), dict(mode="epoch"), dict(mode="minibatch", batch_size=2),
                dict(mode="epoch", validation=(X, Y), track="end"), dict(mode="case", momentum=0.5)]
        for sizes in ([2, 2, 1], [2, 9, 1]):
            for kw in runs:
                fastbp.train(fastbp.Network(sizes), X, Y, epochs=3, **kw)  # compiled, cached
                before = live()
                for _ in range(20):
                    fastbp.train(fastbp.Network(sizes), X, Y, epochs=3, **kw)
                print(sizes, kw["mode"], before == live(), live()[1] - before[1])
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 10 and all(" True " in line for line in lines), out.stdout


def test_each_kernel_module_imports_first():
    """A kernel module imported on its own, first thing in a process, loads (the package's
    lazy attribute lookup must not import backprop, which imports it, half-way)."""
    for name in KERNEL_MODULES:
        out = subprocess.run([sys.executable, "-c", f"import fastbp._kernels.{name}"],
                             capture_output=True, text=True)
        assert out.returncode == 0, (name, out.stderr)


def test_noalias_kernels_tell_llvm_their_arrays_do_not_overlap():
    """NOALIAS (C's restrict on every array argument) reaches the compiled code on this Numba:
    without it the case passes still run, only slower, so a Numba that drops the option must
    fail here, not in a benchmark."""
    from fastbp._kernels import _setup, passes, steps

    assert _setup.NOALIAS == {"_noalias": True}
    for kernel in (passes.case_pass, passes.case_pass_small, steps.errors_and_update,
                   steps.forward):
        assert kernel.targetoptions.get("_noalias") is True, kernel.__name__
        assert kernel.targetoptions.get("_nrt") is False, kernel.__name__

    def scale(out, x):
        for i in range(x.shape[0]):
            out[i] = 2.0 * x[i]

    plain, restricted = njit(scale), njit(**_setup.NOALIAS)(scale)
    args = (np.zeros(3), np.arange(3.0))
    for kernel in (plain, restricted):
        kernel(*args)
        np.testing.assert_array_equal(args[0], [0.0, 2.0, 4.0])
    (sig,) = restricted.signatures

    def data_pointer(kernel, arg):  # how the compiled function declares arg's data pointer
        define = next(line for line in kernel.inspect_llvm(sig).splitlines()
                      if line.startswith("define") and "scale" in line and "cpython" not in line)
        return re.search(rf"ptr ([^%]*)%arg\.{arg}\.4\b", define).group(1).split()
    for arg in ("out", "x"):
        assert "noalias" not in data_pointer(plain, arg)
        assert "noalias" in data_pointer(restricted, arg)


def test_concurrent_saves_never_send_a_signature_to_another_ones_code(tmp_path, monkeypatch):
    """Two processes saving two signatures of one kernel at once, from one read of its
    index (fastbp compile's workers, the test suite's): whatever the order of their writes,
    every signature the index keeps loads its own code (a lost one is compiled again). With
    Numba's numbered files, one order left signature B pointing at A's code: a crash."""
    from fastbp._kernels import _cache
    monkeypatch.setenv("FASTBP_CACHE_DIR", str(tmp_path))
    folder = str(_cache.cache_dir())
    os.makedirs(folder)
    steps = ("_save_data", "_save_index", "_load_index")
    for step in steps:  # B's whole save runs just before A's `step`
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        a, b = (numba.core.caching.IndexDataCacheFile(folder, "runs.kernel-1.py311", "stamp")
                for _ in range(2))
        snapshot = a._load_index()
        monkeypatch.setattr(b, "_load_index", lambda snapshot=snapshot: dict(snapshot))  # read before A wrote

        real = getattr(a, step)

        def then_a(*args, real=real, b=b):
            if not hasattr(then_a, "done"):
                then_a.done = b.save(("sig", "B"), "code of B")
            return real(*args)
        monkeypatch.setattr(a, step, then_a)
        a.save(("sig", "A"), "code of A")
        fresh = numba.core.caching.IndexDataCacheFile(folder, "runs.kernel-1.py311", "stamp")
        kept = fresh._load_index()
        assert kept, step
        for key in kept:
            assert fresh.load(key) == f"code of {key[1]}", (step, key)
    # the numbering is Numba's own outside fastbp's folder
    other = numba.core.caching.IndexDataCacheFile(str(tmp_path), "elsewhere-1.py311", "stamp")
    other.save(("sig", "C"), "code of C")
    assert os.path.exists(tmp_path / "elsewhere-1.py311.1.nbc")


def test_a_new_source_stamp_leaves_no_old_code_behind(tmp_path, monkeypatch):
    """After an edit (a new source stamp) a kernel's first save removes its files of the old
    stamp, and only its own: hashed names are never reused, so they would pile up."""
    from fastbp._kernels import _cache
    monkeypatch.setenv("FASTBP_CACHE_DIR", str(tmp_path))
    folder = str(_cache.cache_dir())
    os.makedirs(folder)
    pattern = "runs.kernel-1.py311"
    old = numba.core.caching.IndexDataCacheFile(folder, pattern, "old stamp")
    old.save(("sig", "A"), "old code of A")
    old.save(("sig", "B"), "old code of B")
    other = numba.core.caching.IndexDataCacheFile(folder, "runs.kernel_twin-1.py311", "old stamp")
    other.save(("sig", "A"), "the twin's code")
    pathlib.Path(folder, pattern + ".3.nbc").write_bytes(b"a numbered file of Numba's own")
    assert len(os.listdir(folder)) == 6
    new = numba.core.caching.IndexDataCacheFile(folder, pattern, "new stamp")
    assert new.load(("sig", "A")) is None  # stale: compiled again
    new.save(("sig", "A"), "new code of A")
    mine = sorted(n for n in os.listdir(folder) if n.startswith(pattern + ".") and n.endswith(".nbc"))
    assert len(mine) == 1 and new.load(("sig", "A")) == "new code of A"
    assert other.load(("sig", "A")) == "the twin's code"
