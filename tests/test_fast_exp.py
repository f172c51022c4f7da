"""fast_exp, the kernels' vectorisable exp, against numpy's exp: within 2 eps, the same
special values, in float32 and float64."""
import numpy as np
import pytest
from numba import njit

from fastbp._kernels.backprop import fast_exp


@njit(cache=True)
def exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = fast_exp(x[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_within_two_eps_of_numpy(dtype):
    info = np.finfo(dtype)
    lo, hi = np.log(info.tiny), np.log(info.max)
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.uniform(lo, hi, 200_000), rng.uniform(-1, 1, 100_000),
                        np.linspace(lo, hi, 10_001)]).astype(dtype)
    got = np.empty_like(x)
    exp_all(x, got)
    exact = np.exp(x.astype(np.longdouble))
    inside = (exact > info.tiny * 4) & (exact < info.max / 4)
    error = np.abs(got[inside] - exact[inside]) / exact[inside]
    assert got.dtype == dtype
    assert float(error.max()) <= 2 * info.eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    info = np.finfo(dtype)
    x = np.array([0.0, np.nan, np.inf, -np.inf, 1e4, -1e4, np.log(info.max) * 1.01,
                  np.log(info.tiny) * 1.01], dtype=dtype)
    got = np.empty_like(x)
    exp_all(x, got)
    assert got[0] == 1.0 and np.isnan(got[1])
    assert got[2] == np.inf and got[3] == 0.0
    assert got[4] == np.inf and got[5] == 0.0
    assert got[6] == np.inf    # overflows as numpy's does
    assert got[7] == 0.0       # below the smallest normal number: flushed to 0
