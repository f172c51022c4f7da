"""Tests of fastbp.datasets: determinism, shapes and dtypes, the workload table, the
chunked generator agreeing with itself on disk and in memory, and argument checking."""

import tracemalloc

import numpy as np
import pytest

from fastbp import datasets as ds

# ----------------------------------------------------------------------------- xor, one_hot


def test_xor_is_exclusive_or_of_the_corners():
    X, y = ds.xor()
    assert X.shape == (4, 2) and X.dtype == np.float64
    assert y.shape == (4,) and y.dtype.kind == "i"
    assert set(np.unique(X)) == {0.0, 1.0}
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]).astype(int))
    assert ds.xor(np.float32)[0].dtype == np.float32


def test_one_hot_round_trip():
    y = np.array([2, 0, 1, 2, 0])
    Y = ds.one_hot(y)
    assert Y.shape == (5, 3) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.sum(axis=1), 1)
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    Y5 = ds.one_hot(y, n_classes=5, dtype=np.float32)
    assert Y5.shape == (5, 5) and Y5.dtype == np.float32
    np.testing.assert_array_equal(Y5.argmax(axis=1), y)


@pytest.mark.parametrize(
    "y, n_classes, match",
    [
        ([0, 3], 3, "labels must lie in 0..2"),
        ([-1, 0], None, "labels must lie"),
        ([0.0, 1.0], None, "integer labels"),
        ([[0, 1]], None, "1-D"),
        ([], None, "n_classes must be given"),
    ],
)
def test_one_hot_rejects_bad_labels(y, n_classes, match):
    with pytest.raises(ValueError, match=match):
        ds.one_hot(np.array(y), n_classes)


# ----------------------------------------------------------------------------- teacher


def test_teacher_same_seed_same_data_other_seed_other_data():
    X1, y1 = ds.teacher(500, 7, seed=3)
    X2, y2 = ds.teacher(500, 7, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, y3 = ds.teacher(500, 7, seed=4)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(y1, y3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_teacher_shapes_and_dtypes(dtype):
    X, y = ds.teacher(300, 5, dtype=dtype)
    assert X.shape == (300, 5) and X.dtype == dtype and X.flags.c_contiguous
    assert y.shape == (300,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}

    X, y = ds.teacher(300, 5, n_classes=4, dtype=dtype)
    assert y.shape == (300,) and set(np.unique(y)) <= {0, 1, 2, 3}

    X, y = ds.teacher(300, 5, n_classes=0, dtype=dtype)
    assert y.shape == (300,) and y.dtype == dtype
    X, y = ds.teacher(300, 5, n_classes=0, n_outputs=3, dtype=dtype)
    assert y.shape == (300, 3) and y.dtype == dtype


def test_teacher_inputs_are_standard_normal():
    X, _ = ds.teacher(20_000, 4, dtype=np.float64)
    assert np.all(np.abs(X.mean(axis=0)) < 0.03)
    assert np.all(np.abs(X.std(axis=0) - 1) < 0.03)


def test_float32_teacher_is_float64_teacher_rounded_with_the_same_labels():
    X32, y32 = ds.teacher(1000, 6, n_classes=3, dtype=np.float32)
    X64, y64 = ds.teacher(1000, 6, n_classes=3, dtype=np.float64)
    np.testing.assert_array_equal(X32, X64.astype(np.float32))
    np.testing.assert_array_equal(y32, y64)


def test_float32_request_never_holds_a_float64_copy_of_X():
    # 2**18 x 32 float32 = 32 MiB; a float64 copy would add 64 MiB. Allowed on top of X:
    # one float64 chunk (2**14 x 32 x 8 = 4 MiB) and small per-chunk temporaries.
    tracemalloc.start()
    try:
        X, _ = ds.teacher(2**18, 32, dtype=np.float32, chunk_size=2**14)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert X.dtype == np.float32
    assert peak < 1.5 * X.nbytes, (peak, X.nbytes)


def test_binary_labels_are_balanced():
    for seed in range(3):
        _, y = ds.teacher(20_000, 10, seed=seed)
        assert 0.45 < y.mean() < 0.55, (seed, y.mean())


def test_multiclass_labels_use_every_class():
    _, y = ds.teacher(20_000, 64, n_classes=10)
    counts = np.bincount(y, minlength=10)
    assert counts.size == 10 and np.all(counts > 0.01 * y.size), counts


def test_teacher_does_not_depend_on_chunk_size_and_smaller_n_is_a_prefix():
    X, y = ds.teacher(1000, 3, n_classes=5, chunk_size=1000)
    Xc, yc = ds.teacher(1000, 3, n_classes=5, chunk_size=37)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)
    Xp, yp = ds.teacher(100, 3, n_classes=5)
    np.testing.assert_array_equal(Xp, X[:100])
    np.testing.assert_array_equal(yp, y[:100])


def test_label_noise_flips_that_fraction():
    _, clean = ds.teacher(2000, 4)
    _, noisy = ds.teacher(2000, 4, noise=0.1)
    assert np.sum(clean != noisy) == 200
    _, clean = ds.teacher(2000, 4, n_classes=5)
    _, noisy = ds.teacher(2000, 4, n_classes=5, noise=0.25)
    assert np.sum(clean != noisy) == 500
    assert noisy.min() >= 0 and noisy.max() <= 4


def test_regression_noise_adds_gaussian_of_that_scale():
    _, clean = ds.teacher(20_000, 4, n_classes=0, dtype=np.float64)
    _, noisy = ds.teacher(20_000, 4, n_classes=0, noise=0.5, dtype=np.float64)
    assert abs(np.std(noisy - clean) - 0.5) < 0.02


# ----------------------------------------------------------------------------- write_teacher_npy


@pytest.mark.parametrize("n_classes", [2, 3, 0])
def test_write_teacher_npy_equals_teacher(tmp_path, n_classes):
    # 1000 rows in chunks of 64: many chunks and a partial last one.
    x_path, y_path = ds.write_teacher_npy(
        tmp_path / "data", 1000, 6, n_classes=n_classes, seed=5, chunk_size=64, noise=0.1)
    assert x_path.exists() and y_path.exists()
    X, y = ds.teacher(1000, 6, n_classes=n_classes, seed=5, noise=0.1, chunk_size=64)
    Xd = np.load(x_path, mmap_mode="r")
    assert Xd.dtype == np.float32 and Xd.shape == (1000, 6)
    np.testing.assert_array_equal(Xd, X)
    np.testing.assert_array_equal(np.load(y_path), y)


def test_write_teacher_npy_does_not_hold_X_in_memory(tmp_path):
    tracemalloc.start()
    try:
        x_path, _ = ds.write_teacher_npy(tmp_path / "big.npy", 2**17, 64, chunk_size=2**12)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    nbytes = 2**17 * 64 * 4  # 32 MiB of float32 on disk
    assert x_path.name == "big_X.npy"
    assert x_path.stat().st_size >= nbytes
    assert peak < nbytes / 2, (peak, nbytes)


# ----------------------------------------------------------------------------- workloads


# The benchmark workloads: tuples, layer sizes, weights+biases.
BENCHMARK_TABLE = {
    "tiny": (100_000, (3, 8, 8, 1), 113),
    "mid": (100_000, (32, 64, 64, 1), 6_337),
    "wide": (200_000, (64, 256, 256, 10), 85_002),
}


def test_workloads_match_benchmarks_md():
    assert set(ds.WORKLOADS) == set(BENCHMARK_TABLE)
    for name, (n, sizes, n_params) in BENCHMARK_TABLE.items():
        w = ds.WORKLOADS[name]
        assert (w.name, w.n_samples, w.sizes, w.n_params) == (name, n, sizes, n_params)
        assert w.n_classes == (10 if name == "wide" else 2)


def test_workload_is_frozen():
    with pytest.raises(AttributeError):
        ds.WORKLOADS["tiny"].n_samples = 5


@pytest.mark.parametrize("name", sorted(BENCHMARK_TABLE))
def test_load_workload_is_ready_for_train(name):
    w = ds.WORKLOADS[name]
    X, Y = ds.load_workload(name, n_samples=500)
    assert X.shape == (500, w.sizes[0]) and X.dtype == np.float32
    assert Y.shape == (500, w.sizes[-1]) and Y.dtype == np.float32
    assert set(np.unique(Y)) == {0.0, 1.0}
    if w.n_classes > 2:
        np.testing.assert_array_equal(Y.sum(axis=1), 1)
    X64, Y64 = ds.load_workload(name, n_samples=500, dtype=np.float64)
    assert X64.dtype == Y64.dtype == np.float64
    np.testing.assert_array_equal(Y64, Y)


def test_load_workload_small_n_is_the_start_of_the_full_one():
    X, Y = ds.load_workload("tiny", n_samples=2000, seed=1)
    Xs, Ys = ds.load_workload("tiny", n_samples=300, seed=1)
    np.testing.assert_array_equal(Xs, X[:300])
    np.testing.assert_array_equal(Ys, Y[:300])


# ----------------------------------------------------------------------------- diabetes


def test_diabetes_example_is_plausible_and_deterministic():
    X, y = ds.diabetes_example()
    assert X.shape == (768, 3) and X.dtype == np.float64 and y.shape == (768,)
    assert ds.DIABETES_FEATURES == ("age", "bmi", "glucose")
    age, bmi, glucose = X.T
    assert age.min() >= 21 and age.max() <= 81 and 28 < age.mean() < 40
    assert bmi.min() >= 18 and bmi.max() <= 60 and 28 < bmi.mean() < 36
    assert glucose.min() >= 60 and 90 < glucose.mean() < 125
    assert 0.2 < y.mean() < 0.5
    X2, y2 = ds.diabetes_example()
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, ds.diabetes_example(seed=1)[0])
    assert ds.diabetes_example(10, dtype=np.float32)[0].dtype == np.float32


def test_diabetes_risk_rises_with_every_feature():
    X, y = ds.diabetes_example(50_000)
    for j, feature in enumerate(ds.DIABETES_FEATURES):
        high = X[:, j] > np.median(X[:, j])
        assert y[high].mean() > y[~high].mean() + 0.03, feature


def test_standardize():
    X, _ = ds.diabetes_example()
    Xs, mean, std = ds.standardize(X, return_stats=True)
    np.testing.assert_allclose(Xs.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Xs.std(axis=0), 1)
    np.testing.assert_allclose(ds.standardize(X[:5], mean=mean, std=std), Xs[:5])
    constant = ds.standardize(np.ones((4, 2), dtype=np.float32))
    assert constant.dtype == np.float32 and np.all(constant == 0)


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=-5), "n_samples"),
        (dict(n_features=0), "n_features"),
        (dict(n_classes=1), "n_classes"),
        (dict(n_outputs=2), "n_outputs"),
        (dict(hidden=0), "hidden"),
        (dict(noise=-0.1), "noise"),
        (dict(noise=1.5), "noise"),
        (dict(seed=-1), "seed"),
        (dict(noise=float("nan")), "noise"),
        (dict(dtype=np.int32), "dtype"),
        (dict(dtype="no-such-dtype"), "dtype must be float32 or float64"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_teacher_rejects_bad_arguments(kwargs, match):
    args = dict(n_samples=10, n_features=3) | kwargs
    with pytest.raises(ValueError, match=match):
        ds.teacher(**args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # not integers: a TypeError, as for every integer argument in fastbp
        (dict(n_samples=2.5), "n_samples must be an integer"),
        (dict(n_features="3"), "n_features must be an integer"),
        (dict(hidden=True), "hidden must be an integer"),
        (dict(seed=1.0), "seed must be an integer"),
        (dict(chunk_size=None), "chunk_size must be an integer"),
        (dict(noise="0.1"), "noise must be a real number"),
    ],
)
def test_teacher_rejects_arguments_of_the_wrong_type(kwargs, match):
    args = dict(n_samples=10, n_features=3) | kwargs
    with pytest.raises(TypeError, match=match):
        ds.teacher(**args)


def test_numpy_integers_are_integers():
    X, y = ds.teacher(np.int64(10), np.int32(3), seed=np.uint8(1))
    assert X.shape == (10, 3)
    np.testing.assert_array_equal(X, ds.teacher(10, 3, seed=1)[0])


@pytest.mark.parametrize("function", [ds.xor, ds.one_hot, ds.diabetes_example, ds.load_workload])
def test_unsupported_dtype_is_a_value_error(function):
    args = {ds.one_hot: ([0, 1],), ds.load_workload: ("tiny", 10)}.get(function, ())
    for dtype in (np.int64, np.float16, "no-such-dtype"):
        with pytest.raises(ValueError, match="dtype must be float32 or float64"):
            function(*args, dtype=dtype)


def test_bad_workload_and_sizes_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown workload 'huge'"):
        ds.load_workload("huge")
    with pytest.raises(ValueError, match="n_samples"):
        ds.load_workload("tiny", n_samples=0)
    with pytest.raises(ValueError, match="n_samples"):
        ds.diabetes_example(0)
    with pytest.raises(ValueError, match="n_samples"):
        ds.write_teacher_npy(tmp_path / "d", 0, 3)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        ds.diabetes_example(10.0)
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        ds.one_hot([0], n_classes=0)
    with pytest.raises(ValueError, match="does not exist"):
        ds.write_teacher_npy(tmp_path / "missing" / "d", 10, 3)
