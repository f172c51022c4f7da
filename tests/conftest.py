"""Shared test setup: import the working tree's fastbp, and make small data sets."""

import os

# before scipy is imported: without it scikit-learn skips check_array_api_input for numpy-only estimators
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# One kernel for every activation (read from the layout at run time), so the suite compiles
# once per dtype, mode and loss instead of once per activation pair as well; this process's
# subprocesses inherit it. tests/test_codes.py compares the kernels users run, with the
# activations compiled in, against these, for every activation.
os.environ["FASTBP_GENERIC_KERNELS"] = "1"

import sys

import numpy as np
import pytest

# test the working tree (not some installed copy), and let tests `import naive`
HERE = os.path.dirname(os.path.abspath(__file__))
for path in (os.path.dirname(HERE), HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import naive  # noqa: E402


@pytest.fixture(scope="session")
def make_xy():
    """make_xy(sizes, output_activation, loss, n, seed) -> (X, Y), float64, X standard normal."""

    def make(sizes, output_activation, loss, n, seed=0):
        rng = np.random.RandomState(seed)
        X = rng.normal(size=(n, sizes[0]))
        return X, naive.targets_for(output_activation, loss, n, sizes[-1], rng)

    return make


@pytest.fixture
def spy_kernels(monkeypatch):
    """spy_kernels(*names) -> calls: the named kernels of fastbp._kernels, as the Python layer
    calls them, are wrapped, for this test, so that each call appends the kernel's name to
    `calls`."""
    from fastbp import _kernels
    calls = []

    def spy(name):
        kernel = getattr(_kernels, name)

        def call(*args):
            calls.append(name)
            return kernel(*args)
        return call

    def install(*names):
        for name in names:
            monkeypatch.setattr(_kernels, name, spy(name))
        return calls

    return install
