"""fast_exp, fast_tanh and fast_logistic, the kernels' vectorisable exp, tanh and logistic
function, against numpy's: within 2 eps (the logistic function: 3), the same special values,
in float32 and float64."""
import numpy as np
import pytest
from numba import njit

from fastbp._kernels.backprop import fast_exp, fast_logistic, fast_tanh


@njit(cache=True)
def exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = fast_exp(x[i])


@njit(cache=True)
def tanh_all(x, out):
    for i in range(x.shape[0]):
        out[i] = fast_tanh(x[i])


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_within_two_eps_of_numpy(dtype):
    rng = np.random.RandomState(0)
    # wide, around 1, near 0 (where 1 - 2/(e^2x + 1) would cancel), and across the switch at 0.625
    x = np.concatenate([rng.uniform(-30, 30, 100_000), rng.uniform(-1, 1, 100_000),
                        rng.uniform(-1e-4, 1e-4, 10_000), np.linspace(0.62, 0.63, 1001),
                        -np.linspace(0.62, 0.63, 1001)]).astype(dtype)
    got = np.empty_like(x)
    tanh_all(x, got)
    exact = np.tanh(x.astype(np.longdouble))
    nonzero = exact != 0
    error = np.abs(got[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])
    assert got.dtype == dtype
    assert float(error.max()) <= 2 * np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_special_values(dtype):
    x = np.array([0.0, np.nan, np.inf, -np.inf, 1e4, -1e4, 1e-30], dtype=dtype)
    got = np.empty_like(x)
    tanh_all(x, got)
    assert got[0] == 0.0 and np.isnan(got[1])
    assert got[2] == 1.0 and got[3] == -1.0 and got[4] == 1.0 and got[5] == -1.0
    assert got[6] == dtype(1e-30)


@njit(cache=True)
def logistic_all(x, out):
    for i in range(x.shape[0]):
        out[i] = fast_logistic(x[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_within_three_eps_of_numpy(dtype):
    """1 / (1 + exp(-x)) with one division: within 3 eps wherever the result is normal."""
    info = np.finfo(dtype)
    rng = np.random.RandomState(1)
    x = np.concatenate([rng.uniform(-40, 40, 200_000), rng.uniform(-1, 1, 100_000),
                        rng.uniform(np.log(info.tiny), -np.log(info.tiny), 100_000)]).astype(dtype)
    got = np.empty_like(x)
    logistic_all(x, got)
    exact = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    normal = exact > info.tiny * 4
    error = np.abs(got[normal] - exact[normal]) / exact[normal]
    assert got.dtype == dtype
    assert float(error.max()) <= 3 * info.eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_special_values(dtype):
    x = np.array([0.0, np.nan, np.inf, -np.inf, 1e4, -1e4, -1e-30], dtype=dtype)
    got = np.empty_like(x)
    logistic_all(x, got)
    assert got[0] == 0.5 and np.isnan(got[1])
    assert got[2] == 1.0 and got[3] == 0.0 and got[4] == 1.0 and got[5] == 0.0
    assert got[6] == 0.5
