"""Every compiled function lives in fastbp/_kernels/backprop.py, and every one is cached.

Numba keys a cached kernel on the content of the file that defines it only; fastbp's cache
locator stamps every kernel with a hash of all of fastbp/_kernels instead (the codes in
codes.py, the helpers of _jit.py), which tests/test_startup.py checks. One file of compiled
code keeps the kernels readable top-down; this test keeps it so.
"""
import inspect
import pathlib
import re

import numba.core.caching
import numba.core.registry

import fastbp
from fastbp._kernels import backprop

PACKAGE = pathlib.Path(fastbp.__file__).parent


JIT_DECORATOR = re.compile(r"^\s*@(numba\.)?(n?jit|vectorize|guvectorize|cfunc)\b", re.MULTILINE)


def test_only_backprop_module_compiles():
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if JIT_DECORATOR.search(p.read_text()))
    assert users == ["_kernels/backprop.py"]


def test_backprop_module_holds_only_compiled_functions():
    plain = [name for name, obj in vars(backprop).items()
             if inspect.isfunction(obj) and obj.__module__ == backprop.__name__]
    assert plain == []
    kernels = [obj for obj in vars(backprop).values()
               if isinstance(obj, numba.core.registry.CPUDispatcher)]
    assert len(kernels) >= 10
    uncached = [k.py_func.__name__ for k in kernels
                if isinstance(k._cache, numba.core.caching.NullCache)]
    assert uncached == []
