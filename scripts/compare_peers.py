"""fastbp against the other backpropagation trainers that are installed (FANN, PyTorch,
scikit-learn): seconds per epoch of case updating (batch size 1) and epoch updating (one
full-batch update per epoch) on fastbp.datasets.WORKLOADS, measured in one run,
the trainers alternating, printed as a Markdown table with the ratios peer / fastbp
(paste it into the README as is).

    python scripts/compare_peers.py                          # tiny and mid, both modes
    python scripts/compare_peers.py --workloads wide --modes epoch
    python scripts/compare_peers.py --peers fann --epochs 5 --rounds 3
    python scripts/compare_peers.py --quick                  # smoke test, under a minute

The peers are optional; each one missing is skipped with a note, never an error:

    apt-get update && apt-get install -y libfann-dev        # FANN 2.2 (libfloatfann.so.2)
    pip install torch==2.13.0                                # PyTorch, CPU build
    (scikit-learn comes with fastbp)

Every trainer gets the same float32 arrays from fastbp.datasets.load_workload (the one
list of workloads, WORKLOADS), the same layer sizes, logistic units everywhere and the
same learning rate (--learning-rate), no momentum, no weight decay:

- fastbp: fastbp.train(net, X, Y, mode=..., epochs=k, n_jobs=--threads) on a
  Network(sizes, dtype=float32) (logistic units, squared error, every other setting at its
  default), the time of the whole call of a block divided by its epochs (what a user
  pays, the call's first epoch included: in epoch mode it also primes the gradient with
  one more pass). The kernels are compiled (or loaded from Numba's cache) by a 2-epoch
  warm-up on 1,000 tuples before any timing. Case updating runs serially (one thread,
  like every peer's); epoch updating on --threads Numba threads.
- FANN 2.2, the float build, called through ctypes (no Python binding needed):
  fann_create_standard_array, FANN_SIGMOID on hidden and output units (steepness 0.5:
  the logistic function), FANN_ERRORFUNC_LINEAR (plain squared error: FANN's default
  tanh error function would change the arithmetic), FANN_TRAIN_INCREMENTAL for case
  updating and FANN_TRAIN_BATCH for epoch updating, fann_train_epoch timed per epoch on
  all the tuples, in their order (FANN does not shuffle; fastbp does). Single-threaded.
- PyTorch, CPU, eager: nn.Sequential of Linear + Sigmoid layers, nn.MSELoss, torch.optim.SGD
  with learning rate --learning-rate × outputs / 2 (MSELoss averages over the outputs and
  has no 1/2, so the updates are fastbp's), torch.set_num_threads(--threads). Epoch
  updating: one full-batch step per epoch. Case updating: a Python loop of steps on
  batches of one tuple, timed on the first --case-subset tuples and scaled to the
  workload's size.
- scikit-learn: MLPClassifier(solver="sgd", activation="logistic", momentum=0, alpha=0),
  batch_size = all tuples (epoch updating) or 1 (case updating, timed on --case-subset
  tuples and scaled), one partial_fit per epoch. Its output layer and loss are its own
  (logistic or softmax output, log loss: MLPClassifier has no squared error), which
  costs about the same per epoch. Its BLAS is limited to --sklearn-blas-threads (1)
  with threadpoolctl while it runs, as compare_sklearn.py --blas-threads 1 does: see the
  notes printed under the table for why.

On `wide`, PyTorch's and scikit-learn's case updating is not measured (as in
a few hundred µs per tuple in Python) unless --case-subset is given,
which makes it a timing of that many tuples, scaled.

The trainers alternate: for each workload and mode, every trainer is built and warmed
up, then --rounds rounds run a block of 1 + --epochs epochs of each in turn, the order
reversed every other round, so a drift in the machine's load falls on all of them. The
first epoch of every peer's block is not timed (it warms caches, allocator and thread
pools after the other trainers ran; fastbp's block is one train() call, timed whole).
The figure is the median of a trainer's
--rounds × --epochs timed epochs. Progress goes to stderr, with
the loss each trainer reports (fastbp's and PyTorch's: mean 1/2 sum of squared errors;
FANN's: its MSE, without the 1/2; scikit-learn's: log loss), the Markdown to stdout.
"""
import argparse
import ctypes
import ctypes.util
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import warnings

import numba
import numpy as np

import fastbp
from fastbp.datasets import WORKLOADS, load_workload

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/_report.py
import _report  # noqa: E402
from _report import LoadAverage, comma_list, int_at_least, positive_float, ratio, sig3  # noqa: E402

MODES = ("case", "epoch")
PEERS = ("fann", "pytorch", "sklearn")
LABELS = {"fastbp": "fastbp", "fann": "FANN", "pytorch": "PyTorch", "sklearn": "scikit-learn",
          "numpy": "numpy loop"}
WARMUP_TUPLES = 1000
QUICK_ROWS = 3000
QUICK_CASE_SUBSET = 500
DEFAULT_CASE_SUBSET = 2000
SLOW_CASE_WORKLOADS = ("wide",)  # PyTorch's and scikit-learn's case updating: not by default


class PeerMissing(Exception):
    """A peer that cannot run here (not installed, library not found); the message says why."""


class NotMeasured:
    """A row a trainer leaves out on purpose; `reason` is shown in the notes."""

    def __init__(self, reason):
        self.reason = reason


def say(*args):
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- fastbp


class Fastbp:
    key = "fastbp"

    def __init__(self, threads, learning_rate):
        self.threads = threads
        self.learning_rate = learning_rate

    def version(self):
        return f"fastbp {fastbp.__version__} (numba {numba.__version__})"

    def session(self, name, X, Y, mode):
        sizes = WORKLOADS[name].sizes
        options = dict(mode=mode, learning_rate=self.learning_rate, n_jobs=self.threads)

        def network():
            return fastbp.Network(sizes, dtype=np.float32, random_state=0)

        fastbp.train(network(), X[:WARMUP_TUPLES], Y[:WARMUP_TUPLES], epochs=2, **options)
        net = network()

        def run(k):
            # what a user pays: the whole train() call, spread evenly over its epochs (the
            # first, untimed, included: in epoch mode it also primes the gradient)
            start = time.perf_counter()
            hist = fastbp.train(net, X, Y, epochs=k, **options)
            seconds = time.perf_counter() - start
            if hist.stopped_by == "diverged":
                say(f"    fastbp diverged ({hist.n_epochs} epochs); lower --learning-rate")
            return [seconds / k] * k, hist.loss[-1] if hist.loss else float("nan")

        return run, lambda: None


# --------------------------------------------------------------------------- FANN


FANN_SIGMOID = 3              # enum fann_activationfunc_enum (fann_data.h, FANN 2.2)
FANN_TRAIN_INCREMENTAL = 0    # enum fann_train_enum
FANN_TRAIN_BATCH = 1
FANN_TRAIN_RPROP = 2
FANN_ERRORFUNC_LINEAR = 0     # enum fann_errorfunc_enum
FANN_LIBRARY = "libfloatfann.so.2"   # the float build: fann_type is float


class FannTrainData(ctypes.Structure):
    """struct fann_train_data of fann_train.h (2.2), public there."""
    _fields_ = [
        ("errno_f", ctypes.c_int),
        ("error_log", ctypes.c_void_p),
        ("errstr", ctypes.c_char_p),
        ("num_data", ctypes.c_uint),
        ("num_input", ctypes.c_uint),
        ("num_output", ctypes.c_uint),
        ("input", ctypes.POINTER(ctypes.POINTER(ctypes.c_float))),
        ("output", ctypes.POINTER(ctypes.POINTER(ctypes.c_float))),
    ]


class Fann:
    key = "fann"

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.lib = None
        self.path = None

    def load(self):
        candidates = [FANN_LIBRARY]
        found = ctypes.util.find_library("floatfann")
        if found and found not in candidates:
            candidates.append(found)
        errors = []
        for candidate in candidates:
            try:
                lib = ctypes.CDLL(candidate)
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            raise PeerMissing(f"{FANN_LIBRARY} not found ({errors[0]}); optional: "
                              "apt-get install libfann-dev")
        ann_p, data_p = ctypes.c_void_p, ctypes.POINTER(FannTrainData)
        uint, enum, flt = ctypes.c_uint, ctypes.c_int, ctypes.c_float
        signatures = {  # name: (restype, argtypes), as declared in fann.h / fann_train.h
            "fann_create_standard_array": (ann_p, [uint, ctypes.POINTER(uint)]),
            "fann_destroy": (None, [ann_p]),
            "fann_randomize_weights": (None, [ann_p, flt, flt]),
            "fann_set_activation_function_hidden": (None, [ann_p, enum]),
            "fann_set_activation_function_output": (None, [ann_p, enum]),
            "fann_set_activation_steepness_hidden": (None, [ann_p, flt]),
            "fann_set_activation_steepness_output": (None, [ann_p, flt]),
            "fann_set_training_algorithm": (None, [ann_p, enum]),
            "fann_set_train_error_function": (None, [ann_p, enum]),
            "fann_set_learning_rate": (None, [ann_p, flt]),
            "fann_set_learning_momentum": (None, [ann_p, flt]),
            "fann_get_total_connections": (uint, [ann_p]),
            "fann_create_train": (data_p, [uint, uint, uint]),
            "fann_length_train_data": (uint, [data_p]),
            "fann_destroy_train": (None, [data_p]),
            "fann_train_epoch": (flt, [ann_p, data_p]),
            "fann_train_on_data": (None, [ann_p, data_p, uint, uint, flt]),
            "fann_get_MSE": (flt, [ann_p]),
        }
        try:
            for name, (restype, argtypes) in signatures.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
        except AttributeError as exc:
            raise PeerMissing(f"{FANN_LIBRARY} lacks a function this script needs ({exc}); "
                              "FANN 2.2 or later is needed") from None
        self.lib = lib
        self.path = self._loaded_path() or FANN_LIBRARY

    @staticmethod
    def _loaded_path():
        try:
            with open("/proc/self/maps") as f:
                for line in f:
                    if "floatfann" in line:
                        return os.path.realpath(line.split()[-1])
        except OSError:
            pass
        return None

    def version(self):
        try:
            version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libfann2"],
                                     capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            version = ""
        return f"FANN {version or '2.2'} ({self.path}, float)"

    def _train_data(self, X, Y):
        """A fann_train_data holding copies of X and Y (fann_create_train + its arrays)."""
        lib = self.lib
        n, n_in = X.shape
        n_out = Y.shape[1]
        data = lib.fann_create_train(n, n_in, n_out)
        if not data or lib.fann_length_train_data(data) != n:
            raise RuntimeError("fann_create_train failed")
        d = data.contents
        for rows, arr, width in ((d.input, X, n_in), (d.output, Y, n_out)):
            src = np.ascontiguousarray(arr, dtype=np.float32)
            # FANN 2.2 allocates one block and points row i at block + i*width; check, and
            # copy row by row if it ever does not
            pointers = np.ctypeslib.as_array(ctypes.cast(rows, ctypes.POINTER(ctypes.c_size_t)),
                                             shape=(n,))
            base = int(pointers[0])
            expected = base + np.arange(n, dtype=np.uint64) * np.uint64(width * 4)
            if np.array_equal(pointers.astype(np.uint64), expected):
                ctypes.memmove(base, src.ctypes.data, src.nbytes)
            else:
                for i in range(n):
                    ctypes.memmove(int(pointers[i]), src[i].ctypes.data, width * 4)
        return data

    def _configure(self, ann, algorithm, learning_rate):
        """Logistic units, plain squared error, `algorithm`, no momentum, fastbp's init range."""
        lib = self.lib
        lib.fann_set_activation_function_hidden(ann, FANN_SIGMOID)
        lib.fann_set_activation_function_output(ann, FANN_SIGMOID)
        lib.fann_set_activation_steepness_hidden(ann, 0.5)  # 1 / (1 + exp(-2 * 0.5 * x))
        lib.fann_set_activation_steepness_output(ann, 0.5)
        lib.fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR)
        lib.fann_set_training_algorithm(ann, algorithm)
        lib.fann_set_learning_rate(ann, learning_rate)
        lib.fann_set_learning_momentum(ann, 0.0)
        lib.fann_randomize_weights(ann, -0.5, 0.5)  # fastbp's default init range

    def session(self, name, X, Y, mode):
        lib = self.lib
        sizes = WORKLOADS[name].sizes
        layers = (ctypes.c_uint * len(sizes))(*sizes)
        ann = lib.fann_create_standard_array(len(sizes), layers)
        if not ann:
            raise RuntimeError("fann_create_standard_array failed")
        data = None
        try:
            self._configure(ann, FANN_TRAIN_INCREMENTAL if mode == "case" else FANN_TRAIN_BATCH,
                            self.learning_rate)
            expected = WORKLOADS[name].n_params
            if lib.fann_get_total_connections(ann) != expected:
                raise RuntimeError(f"FANN built {lib.fann_get_total_connections(ann)} "
                                   f"connections, expected {expected}")
            data = self._train_data(X, Y)
            warm = self._train_data(X[:WARMUP_TUPLES], Y[:WARMUP_TUPLES])
            lib.fann_train_epoch(ann, warm)  # page in the code; nothing to compile
            lib.fann_destroy_train(warm)
        except BaseException:
            if data:
                lib.fann_destroy_train(data)
            lib.fann_destroy(ann)
            raise

        def run(k):
            seconds, mse = [], float("nan")
            for _ in range(k):
                start = time.perf_counter()
                mse = lib.fann_train_epoch(ann, data)
                seconds.append(time.perf_counter() - start)
            return seconds, mse

        def close():
            lib.fann_destroy_train(data)
            lib.fann_destroy(ann)

        return run, close

    def small_run(self, X, Y, sizes, mode, optimizer, epochs, lr):
        """One whole FANN run: create, configure, fann_train_on_data for `epochs` epochs."""
        lib = self.lib
        data = self._train_data(X, Y)
        algorithm = {"case": FANN_TRAIN_INCREMENTAL, "epoch": FANN_TRAIN_BATCH}[mode]
        if optimizer == "rprop":
            algorithm = FANN_TRAIN_RPROP
        layers = (ctypes.c_uint * len(sizes))(*sizes)

        def run():
            ann = lib.fann_create_standard_array(len(sizes), layers)
            try:
                self._configure(ann, algorithm, lr)
                # desired error 0: FANN stops only below it, so every epoch runs
                lib.fann_train_on_data(ann, data, epochs, 0, 0.0)
                return lib.fann_get_MSE(ann) / 2  # fastbp's measure: 1/2 the mean squared error
            finally:
                lib.fann_destroy(ann)
        run.close = lambda: lib.fann_destroy_train(data)
        return run


# --------------------------------------------------------------------------- PyTorch


class Torch:
    key = "pytorch"

    def __init__(self, threads, learning_rate, case_subset, case_subset_given):
        self.threads = threads
        self.learning_rate = learning_rate
        self.case_subset = case_subset
        self.case_subset_given = case_subset_given
        self.torch = None

    def load(self):
        try:
            import torch
        except ImportError as exc:
            raise PeerMissing(f"torch cannot be imported ({exc}); optional: "
                              "pip install torch==2.13.0") from None
        self.torch = torch

    def version(self):
        plural = "" if self.threads == 1 else "s"
        return f"PyTorch {self.torch.__version__} ({self.threads} thread{plural})"

    def session(self, name, X, Y, mode):
        torch = self.torch
        n = X.shape[0]
        if mode == "case" and name in SLOW_CASE_WORKLOADS and not self.case_subset_given:
            return NotMeasured(f"PyTorch's case updating on {name} is not measured by "
                               "default (too slow, a few hundred µs a tuple); --case-subset N "
                               "times N tuples and scales")
        torch.set_num_threads(self.threads)
        torch.manual_seed(0)
        sizes = WORKLOADS[name].sizes
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            linear = torch.nn.Linear(fan_in, fan_out)
            torch.nn.init.uniform_(linear.weight, -0.5, 0.5)  # fastbp's default init
            torch.nn.init.uniform_(linear.bias, -0.5, 0.5)
            layers += [linear, torch.nn.Sigmoid()]
        model = torch.nn.Sequential(*layers)
        loss_fn = torch.nn.MSELoss()
        # MSELoss = mean over tuples and outputs of (O - T)^2; fastbp's error is the mean
        # over tuples of 1/2 sum over outputs: the same gradient times outputs / 2
        lr = self.learning_rate * sizes[-1] / 2
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        Xt = torch.from_numpy(np.ascontiguousarray(X))
        Yt = torch.from_numpy(np.ascontiguousarray(Y))

        def step(xb, yb):
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss

        if mode == "epoch":
            step(Xt[:WARMUP_TUPLES], Yt[:WARMUP_TUPLES])

            def run(k):
                seconds, loss = [], None
                for _ in range(k):
                    start = time.perf_counter()
                    loss = step(Xt, Yt)
                    seconds.append(time.perf_counter() - start)
                return seconds, loss.detach().item() * sizes[-1] / 2  # fastbp's measure
            return run, lambda: None

        m = min(n, self.case_subset)
        pairs = list(zip(Xt[:m].split(1), Yt[:m].split(1)))  # views of batch size 1
        for xb, yb in pairs[:100]:
            step(xb, yb)

        def run(k):
            seconds = []
            for _ in range(k):
                start = time.perf_counter()
                for xb, yb in pairs:
                    step(xb, yb)
                seconds.append((time.perf_counter() - start) * n / m)
            return seconds, float("nan")
        run.subset = m
        return run, lambda: None

    def small_run(self, X, Y, sizes, mode, optimizer, epochs, lr, scaled_to):
        torch = self.torch
        torch.set_num_threads(self.threads)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        pairs = list(zip(Xt.split(1), Yt.split(1))) if mode == "case" else [(Xt, Yt)]

        def run():
            layers = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                linear = torch.nn.Linear(fan_in, fan_out, dtype=torch.float64)
                torch.nn.init.uniform_(linear.weight, -0.5, 0.5)
                torch.nn.init.uniform_(linear.bias, -0.5, 0.5)
                layers += [linear, torch.nn.Sigmoid()]
            model = torch.nn.Sequential(*layers)
            loss_fn = torch.nn.MSELoss()
            if optimizer == "rprop":
                opt = torch.optim.Rprop(model.parameters(), lr=0.1, etas=(0.5, 1.2),
                                        step_sizes=(1e-6, 50.0))
            else:
                opt = torch.optim.SGD(model.parameters(), lr=lr * sizes[-1] / 2)
            for _ in range(epochs):
                for xb, yb in pairs:
                    opt.zero_grad()
                    loss = loss_fn(model(xb), yb)
                    loss.backward()
                    opt.step()
            return loss.item() * sizes[-1] / 2 if mode == "epoch" else float("nan")
        run.scale = scaled_to / epochs
        return run


# --------------------------------------------------------------------------- scikit-learn


class Sklearn:
    key = "sklearn"

    def __init__(self, learning_rate, case_subset, case_subset_given, blas_threads):
        self.learning_rate = learning_rate
        self.case_subset = case_subset
        self.case_subset_given = case_subset_given
        self.blas_threads = blas_threads

    def load(self):
        try:
            import sklearn
            import threadpoolctl
            from sklearn.neural_network import MLPClassifier
        except ImportError as exc:
            raise PeerMissing(f"scikit-learn cannot be imported ({exc})") from None
        self.sklearn, self.threadpoolctl, self.MLPClassifier = sklearn, threadpoolctl, MLPClassifier

    def version(self):
        plural = "" if self.blas_threads == 1 else "s"
        return (f"scikit-learn {self.sklearn.__version__} "
                f"(BLAS limited to {self.blas_threads} thread{plural})")

    def session(self, name, X, Y, mode):
        n = X.shape[0]
        if mode == "case" and name in SLOW_CASE_WORKLOADS and not self.case_subset_given:
            return NotMeasured(f"scikit-learn's case updating on {name} is not measured by "
                               "default (too slow, a few hundred µs a tuple); --case-subset N "
                               "times N tuples and scales")
        work = WORKLOADS[name]
        y = Y[:, 0].astype(np.int64) if Y.shape[1] == 1 else np.argmax(Y, axis=1)
        classes = np.arange(max(2, Y.shape[1]))
        m = n if mode == "epoch" else min(n, self.case_subset)
        Xs, ys = X[:m], y[:m]
        est = self.MLPClassifier(
            hidden_layer_sizes=work.sizes[1:-1], activation="logistic", solver="sgd",
            batch_size=m if mode == "epoch" else 1, learning_rate="constant",
            learning_rate_init=self.learning_rate, momentum=0.0, alpha=0.0, shuffle=True,
            random_state=0)
        limit = self.threadpoolctl.threadpool_limits

        with limit(limits=self.blas_threads, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the first call sets up the layers; on a slice, so it is quick
            est.partial_fit(Xs[:min(m, 100 if mode == "case" else WARMUP_TUPLES)],
                            ys[:min(m, 100 if mode == "case" else WARMUP_TUPLES)], classes=classes)

        def run(k):
            seconds = []
            with limit(limits=self.blas_threads, user_api="blas"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(k):
                    start = time.perf_counter()
                    est.partial_fit(Xs, ys)
                    seconds.append((time.perf_counter() - start) * n / m)
            return seconds, est.loss_
        if m < n:
            run.subset = m
        return run, lambda: None

    def small_run(self, X, Y, sizes, mode, epochs, lr, scaled_to):
        y = Y[:, 0].astype(np.int64) if Y.shape[1] == 1 else np.argmax(Y, axis=1)

        def run():
            est = self.MLPClassifier(
                hidden_layer_sizes=sizes[1:-1], activation="logistic", solver="sgd",
                batch_size=X.shape[0] if mode == "epoch" else 1, learning_rate_init=lr,
                momentum=0.0, alpha=0.0, max_iter=epochs, n_iter_no_change=epochs + 1, tol=0.0,
                random_state=0)
            with self.threadpoolctl.threadpool_limits(limits=self.blas_threads, user_api="blas"), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            return est.loss_
        run.scale = scaled_to / epochs
        return run


# --------------------------------------------------------------------------- measuring


def measure(trainers, name, X, Y, mode, epochs, rounds):
    """{key: (median seconds per epoch, subset or None) or NotMeasured or an error string}.

    Each trainer runs blocks of 1 + `epochs` epochs in turn, `rounds` times; the first
    epoch of a block is not counted: it warms caches, allocator and thread pools after
    the other trainers ran, and in fastbp's epoch mode it is the train() call's first
    epoch, which also primes the gradient with one more pass.
    """
    sessions, results = {}, {}
    for t in trainers:  # build and warm up every trainer before any timing
        try:
            made = t.session(name, X, Y, mode)
        except Exception as exc:  # noqa: BLE001  a peer that fails is reported, not fatal
            if t.key == "fastbp":
                raise
            say(f"  {LABELS[t.key]}: failed to set up: {exc!r}")
            results[t.key] = f"failed: {type(exc).__name__}"
            continue
        if isinstance(made, NotMeasured):
            say(f"  {LABELS[t.key]}: {made.reason}")
            results[t.key] = made
        else:
            sessions[t.key] = made
    times = {key: [] for key in sessions}
    try:
        for r in range(rounds):
            order = list(sessions) if r % 2 == 0 else list(sessions)[::-1]
            for key in order:
                if key not in times:
                    continue
                run = sessions[key][0]
                try:
                    seconds, loss = run(epochs + 1)  # the first of each block is untimed
                except Exception as exc:  # noqa: BLE001
                    if key == "fastbp":
                        raise
                    say(f"  {LABELS[key]}: failed: {exc!r}")
                    results[key] = f"failed: {type(exc).__name__}"
                    del times[key]
                    continue
                times[key] += seconds[1:]
                shown = f", loss {loss:.4g}" if np.isfinite(loss) else ""
                say(f"  {name} / {mode} / {LABELS[key]} round {r + 1}: untimed "
                    f"{seconds[0]:.4g}, timed " + " ".join(f"{s:.4g}" for s in seconds[1:])
                    + " s/epoch" + shown)
    finally:
        for _, close in sessions.values():
            close()
    for key, seconds in times.items():
        if seconds:
            results[key] = (statistics.median(seconds), getattr(sessions[key][0], "subset", None))
    return results


# --------------------------------------------------------------------------- output


def machine_lines(trainers, threads):
    lines = [
        _report.cpu_line(),
        f"- fastbp: {fastbp.__version__}, Numba {numba.__version__}, threading layer "
        f"{_report.threading_layer()}, n_jobs={threads} "
        f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})",
    ]
    lines += [f"- {t.version()}" for t in trainers if t.key != "fastbp"]
    lines.append(f"- BLAS outside the limits (threadpoolctl): {_report.blas_libraries()}")
    lines.append(f"- Python {platform.python_version()}, NumPy {np.__version__}")
    return lines


def table(rows, peer_keys):
    header = "| workload | mode | fastbp s/epoch | fastbp µs/tuple |"
    align = "|---|---|---:|---:|"
    for key in peer_keys:
        header += f" {LABELS[key]} s/epoch | {LABELS[key]} / fastbp |"
        align += "---:|---:|"
    lines = [header, align]
    for name, mode, n, results in rows:
        fb, _ = results["fastbp"]
        line = f"| {name} | {mode} | {sig3(fb)} | {sig3(1e6 * fb / n)} |"
        for key in peer_keys:
            res = results.get(key)
            if isinstance(res, tuple):
                seconds, subset = res
                mark = "‡" if subset else ""
                line += f" {sig3(seconds)}{mark} | {ratio(seconds, fb)} |"
            elif isinstance(res, NotMeasured):
                line += " not measured | — |"
            else:
                line += f" {res or '—'} | — |"
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- small problems
#
# --small: whole calls, as a user pays them. Every trainer builds its network and runs all the
# problem's epochs in one call (fastbp: Network(...) + train(...) with its defaults apart from
# mode, learning rate and epochs; FANN: fann_create_standard_array + fann_train_on_data; the
# others: their Python loop or fit()). The calls alternate, --rounds times, the order reversed
# every other round, after two untimed calls each (fastbp's first compiles or loads its
# kernels); a short call is repeated within a turn (TURN_SECONDS).


class SmallProblem:
    def __init__(self, key, title, data, sizes, mode, epochs, learning_rate, optimizer="sgd",
                 python_epochs=None):
        self.key, self.title, self.data, self.sizes = key, title, data, sizes
        self.mode, self.epochs, self.learning_rate = mode, epochs, learning_rate
        self.optimizer = optimizer
        # the Python-loop peers (PyTorch's case updating, scikit-learn's batch size 1) run this
        # many epochs, scaled to `epochs` (a per-epoch cost, marked ‡)
        self.python_epochs = python_epochs or epochs


def _xor():
    X, y = fastbp.datasets.xor()
    return X, y.reshape(-1, 1).astype(np.float64)


def _parity8():
    X, y = fastbp.datasets.parity(8)
    return X, y.reshape(-1, 1).astype(np.float64)


def _proben_like(n, n_in, n_out):
    """A PROBEN1-sized table: n tuples of n_in features in [0, 1], n_out one-hot classes
    (1: a 0/1 target) from a fixed random linear rule."""
    rng = np.random.default_rng(n * 1000 + n_in * 10 + n_out)
    X = rng.random((n, n_in))
    scores = X @ rng.standard_normal((n_in, max(2, n_out)))
    labels = np.argmax(scores - scores.mean(0), axis=1)
    Y = np.eye(max(2, n_out))[labels][:, :n_out] if n_out > 1 else labels[:, None] % 2
    return X, Y.astype(np.float64)


SMALL_PROBLEMS = {p.key: p for p in [
    # the seeds' code: learning rate 0.5 on the summed gradient = 2.0 on the mean
    SmallProblem("xor-epoch", "XOR 2-2-1, epoch updating, 5,000 epochs", _xor, [2, 2, 1],
                 "epoch", 5000, 2.0),
    SmallProblem("xor-case", "XOR 2-2-1, case updating, 5,000 epochs", _xor, [2, 2, 1],
                 "case", 5000, 0.5),
    SmallProblem("parity8-case", "parity(8) 8-16-1, case updating, 1,000 epochs", _parity8,
                 [8, 16, 1], "case", 1000, 0.1, python_epochs=20),
    SmallProblem("parity8-rprop", "parity(8) 8-16-1, RPROP, 1,000 epochs", _parity8,
                 [8, 16, 1], "epoch", 1000, 0.1, optimizer="rprop"),
] + [
    SmallProblem(f"proben-{n}x{n_in}-{n_out}",
                 f"{n:,} tuples, {n_in}-32-{n_out}, case updating, {epochs} epochs",
                 lambda n=n, n_in=n_in, n_out=n_out: _proben_like(n, n_in, n_out),
                 [n_in, 32, n_out], "case", epochs, 0.1, python_epochs=1)
    for n, n_in, n_out, epochs in [(400, 8, 1, 200), (768, 8, 2, 200), (2000, 32, 4, 50),
                                   (4096, 64, 10, 20), (12000, 128, 20, 5)]
]}
_PROBEN_KEY = re.compile(r"proben-(\d+)x(\d+)-(\d+)$")
_PROBEN_LIMITS = (1_000_000, 10_000, 1_000)  # tuples, inputs, outputs


def small_problem(key):
    """SMALL_PROBLEMS[key], or for a key "proben-<tuples>x<inputs>-<outputs>" of another
    shape a PROBEN1-like problem of it (one hidden layer of 32, case updating, learning
    rate 0.1, as many epochs as make about 100,000 tuples)."""
    if key in SMALL_PROBLEMS:
        return SMALL_PROBLEMS[key]
    match = _PROBEN_KEY.match(key)
    sizes = [int(g) for g in match.groups()] if match else []
    if not sizes or not all(1 <= size <= top for size, top in zip(sizes, _PROBEN_LIMITS)):
        raise ValueError(f"unknown problem {key!r}; choose from {', '.join(SMALL_PROBLEMS)} "
                         "or proben-<tuples>x<inputs>-<outputs> (at least 1 and at most "
                         "{:,} tuples, {:,} inputs, {:,} outputs)".format(*_PROBEN_LIMITS))
    n, n_in, n_out = sizes
    key = f"proben-{n}x{n_in}-{n_out}"  # canonical: proben-0400x8-1 is the table's row
    if key in SMALL_PROBLEMS:
        return SMALL_PROBLEMS[key]
    epochs = max(1, 100_000 // n)
    return SmallProblem(key, f"{n:,} tuples, {n_in}-32-{n_out}, case updating, {epochs} epochs",
                        lambda: _proben_like(n, n_in, n_out), [n_in, 32, n_out], "case", epochs,
                        0.1, python_epochs=1)


def problem_list(text):
    """argparse type of --problems: comma-separated keys of small_problem, repeats dropped."""
    items = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not items:
        raise argparse.ArgumentTypeError("no problem given")
    try:
        return [small_problem(item).key for item in items]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


SMALL_PEERS = ("numpy", "fann", "pytorch", "sklearn")
# A trainer's turn in a round repeats a short call until about TURN_SECONDS have passed (at
# most TURN_REPEATS calls) and counts the median call: one call of a millisecond or two is at
# the mercy of a single interrupt or a neighbour's cache traffic on a shared machine.
TURN_SECONDS, TURN_REPEATS = 0.05, 25


def seeds_numpy_xor(X, Y, sizes, epochs, learning_rate, rng):
    """The seeds' plain numpy loop: epoch updating of a logistic network, the textbook's
    Err_j = O_j (1 - O_j)(T_j - O_j) propagated back, the increments summed over the tuples
    (learning_rate / n on the sum is learning_rate on the mean)."""
    Ws = [rng.uniform(-0.5, 0.5, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.uniform(-0.5, 0.5, b) for b in sizes[1:]]
    lr = learning_rate / X.shape[0]
    for _ in range(epochs):
        outs = [X]
        for W, b in zip(Ws, bs):
            outs.append(1.0 / (1.0 + np.exp(-(outs[-1] @ W + b))))
        O = outs[-1]
        err = O * (1.0 - O) * (Y - O)
        for k in range(len(Ws) - 1, -1, -1):
            back = err @ Ws[k].T
            Ws[k] += lr * outs[k].T @ err
            bs[k] += lr * err.sum(axis=0)
            if k:
                err = outs[k] * (1.0 - outs[k]) * back
    return 0.5 * np.mean(np.sum((Y - O) ** 2, axis=1))


def small_runner(key, problem, X, Y, loaded):
    """A function running the whole problem once (returning its final loss, or nan), or a
    NotMeasured."""
    sizes, epochs, lr = problem.sizes, problem.epochs, problem.learning_rate
    if key == "fastbp":
        def run():
            net = fastbp.Network(sizes)
            hist = fastbp.train(net, X, Y, mode=problem.mode, learning_rate=lr, epochs=epochs,
                                optimizer=problem.optimizer)
            return hist.loss[-1]
        return run
    if key == "numpy":
        if problem.mode != "epoch" or problem.optimizer != "sgd":
            return NotMeasured("the seeds' numpy loop is epoch updating with plain SGD")
        rng = np.random.default_rng(0)
        return lambda: seeds_numpy_xor(X, Y, sizes, epochs, lr, rng)
    if key == "fann":
        return loaded.small_run(X, Y, sizes, problem.mode, problem.optimizer, epochs, lr)
    if key == "pytorch":
        return loaded.small_run(X, Y, sizes, problem.mode, problem.optimizer,
                                problem.python_epochs, lr, epochs)
    if problem.optimizer != "sgd":
        return NotMeasured("scikit-learn has no RPROP")
    return loaded.small_run(X, Y, sizes, problem.mode, problem.python_epochs, lr, epochs)


def small_section(args):
    """Time whole calls on the small problems; print the Markdown table."""
    loaded, skipped = {}, []
    makers = {"fann": lambda: Fann(0.1),
              "pytorch": lambda: Torch(1, 0.1, 0, False),
              "sklearn": lambda: Sklearn(0.1, 0, False, args.sklearn_blas_threads)}
    for key in args.small_peers:
        if key == "numpy":
            loaded[key] = None
            continue
        peer = makers[key]()
        try:
            peer.load()
            loaded[key] = peer
        except PeerMissing as exc:
            skipped.append(f"{LABELS[key]}: skipped, {exc}")
            say(skipped[-1])
    keys = ["fastbp"] + list(loaded)
    rows = []
    started = time.perf_counter()
    for name in args.problems:
        problem = small_problem(name)
        X, Y = problem.data()
        runners, results = {}, {}
        for key in keys:
            made = small_runner(key, problem, X, Y, loaded.get(key))
            if isinstance(made, NotMeasured):
                results[key] = made
                continue
            made()  # untimed: fastbp compiles or loads its kernels here
            start = time.perf_counter()
            made()  # untimed too: how many calls make a turn (see TURN_SECONDS)
            made.repeats = max(1, min(TURN_REPEATS, int(TURN_SECONDS / (time.perf_counter() - start))))
            runners[key] = made
        times = {key: [] for key in runners}
        for r in range(args.rounds):
            for key in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
                turn = []
                for _ in range(runners[key].repeats):
                    start = time.perf_counter()
                    loss = runners[key]()
                    turn.append(time.perf_counter() - start)
                seconds = statistics.median(turn) * getattr(runners[key], "scale", 1)
                times[key].append(seconds)
                say(f"  {name} / {LABELS.get(key, key)} round {r + 1}: {seconds * 1e3:.3g} ms"
                    + (f", loss {loss:.4g}" if np.isfinite(loss) else ""))
        for key, run in runners.items():
            getattr(run, "close", lambda: None)()
            results[key] = (statistics.median(times[key]), getattr(run, "scale", 1) != 1)
        rows.append((problem, results))
    elapsed = time.perf_counter() - started

    command = "python scripts/compare_peers.py" + "".join(
        " " + shlex.quote(a) for a in sys.argv[1:])
    print(f"`{command}`")
    print()
    for line in machine_lines([p for p in loaded.values() if p is not None], 1):
        print(line)
    print()
    peer_keys = [k for k in keys if k != "fastbp"]
    header = "| problem | fastbp |" + "".join(f" {LABELS[k]} | {LABELS[k]} / fastbp |"
                                                for k in peer_keys)
    print(header)
    print("|---|---:|" + "---:|---:|" * len(peer_keys))
    for problem, results in rows:
        fb = results["fastbp"][0]
        line = f"| {problem.title} | {ms(fb)} |"
        for k in peer_keys:
            res = results.get(k)
            if isinstance(res, tuple):
                line += f" {ms(res[0])}{'‡' if res[1] else ''} | {ratio(res[0], fb)} |"
            else:
                line += " — | — |"
        print(line)
    print()
    notes = [
        f"Whole calls, the median of {args.rounds} turns per trainer, the trainers "
        "alternating in one process after two untimed calls each; a turn's figure is the "
        f"median of as many calls as fit in {TURN_SECONDS * 1e3:.0f} ms (1 to {TURN_REPEATS}); "
        "ratio = peer's time / fastbp's (above 1: fastbp is faster).",
        "fastbp: Network(sizes) + train(X, Y, mode=..., learning_rate=..., epochs=...) with "
        "every other setting at its default (float64, track=\"pass\", shuffled case updating, "
        "the stop rules checked in the compiled loop); its kernels already compiled.",
        "FANN: fann_create_standard_array + fann_train_on_data (float build, FANN_SIGMOID with "
        "steepness 0.5 = logistic, FANN_ERRORFUNC_LINEAR, no shuffling, FANN_TRAIN_INCREMENTAL "
        "/ FANN_TRAIN_BATCH / FANN_TRAIN_RPROP with its defaults).",
        "numpy: the seeds' epoch-updating loop (seeds_numpy_xor in this script), float64.",
        "PyTorch: eager float64, one thread, Linear + Sigmoid, MSELoss, SGD or Rprop (FANN's "
        "factors); case updating is a Python loop of one-tuple steps.",
        "scikit-learn: MLPClassifier(solver=\"sgd\", activation=\"logistic\", momentum=0, "
        "alpha=0, tol=0, max_iter=epochs), its own log loss and output layer; no RPROP.",
        "‡ the Python-loop peers ran fewer epochs, scaled to the problem's (a per-epoch cost).",
        "PROBEN1-sized rows: synthetic tables of the sizes of PROBEN1's sets (400-12,000 "
        "tuples, 8-128 inputs, 1-20 outputs, one hidden layer of 32).",
    ]
    notes += [s + "." for s in skipped]
    for note in notes:
        print(f"- {note}")
    say(f"\n({elapsed:.0f} s in all.)")


def ms(seconds):
    return f"{sig3(seconds * 1e3)} ms"


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    workloads = tuple(WORKLOADS)
    parser.add_argument("--workloads", type=comma_list(workloads, "workload"),
                        default=["tiny", "mid"],
                        help=f"comma-separated, from {', '.join(workloads)} (default: tiny,mid)")
    parser.add_argument("--modes", type=comma_list(MODES, "mode"), default=list(MODES),
                        help="comma-separated, from case,epoch (default: both)")
    parser.add_argument("--peers", type=comma_list(PEERS, "peer"), default=list(PEERS),
                        help=f"comma-separated, from {', '.join(PEERS)} (default: all; "
                             "those not installed are skipped)")
    parser.add_argument("--epochs", type=int_at_least(1), default=3,
                        help="timed epochs per trainer and round (default: 3)")
    parser.add_argument("--rounds", type=int_at_least(1), default=None,
                        help="rounds of alternation, the order reversed each round (default: 2; "
                             "5 with --small)")
    parser.add_argument("--case-subset", type=int_at_least(1), default=None,
                        help="tuples PyTorch's and scikit-learn's case updating is timed on, "
                             f"scaled to the workload's size (default: {DEFAULT_CASE_SUBSET}, "
                             f"{QUICK_CASE_SUBSET} with --quick); given, it also measures them "
                             "on wide")
    parser.add_argument("--threads", type=int_at_least(1), default=2,
                        help="fastbp's n_jobs and PyTorch's threads (default: 2)")
    parser.add_argument("--learning-rate", type=positive_float, default=0.1,
                        help="of every trainer (default: 0.1)")
    parser.add_argument("--sklearn-blas-threads", type=int_at_least(1), default=1,
                        help="BLAS threads while scikit-learn runs (default: 1)")
    parser.add_argument("--rows", type=int_at_least(WARMUP_TUPLES), default=None,
                        help="tuples of every workload (default: the workload's own; "
                             f"{QUICK_ROWS} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_ROWS} tuples per workload, case subset "
                             f"{QUICK_CASE_SUBSET}, every row measured; the numbers mean little")
    parser.add_argument("--small", action="store_true",
                        help="the small-problem section instead: whole Network + train() calls "
                             "against FANN, the seeds' numpy loop, PyTorch and scikit-learn")
    parser.add_argument("--problems", type=problem_list, default=list(SMALL_PROBLEMS),
                        help=f"with --small: comma-separated, from {', '.join(SMALL_PROBLEMS)}, "
                             "or proben-<tuples>x<inputs>-<outputs> for another PROBEN1-like "
                             "shape (default: all)")
    parser.add_argument("--small-peers", type=comma_list(SMALL_PEERS, "peer"),
                        default=list(SMALL_PEERS),
                        help=f"with --small: from {', '.join(SMALL_PEERS)} (default: all)")
    args = parser.parse_args(argv)
    if args.small:
        args.rounds = args.rounds or 5
        small_section(args)
        return
    args.rounds = args.rounds or 2
    rows_override = args.rows or (QUICK_ROWS if args.quick else None)
    subset_given = args.case_subset is not None or args.quick
    case_subset = args.case_subset or (QUICK_CASE_SUBSET if args.quick else DEFAULT_CASE_SUBSET)

    fast = Fastbp(args.threads, args.learning_rate)
    candidates = {
        "fann": Fann(args.learning_rate),
        "pytorch": Torch(args.threads, args.learning_rate, case_subset, subset_given),
        "sklearn": Sklearn(args.learning_rate, case_subset, subset_given,
                           args.sklearn_blas_threads),
    }
    peers, skipped = [], []
    for key in args.peers:
        try:
            candidates[key].load()
            peers.append(candidates[key])
        except PeerMissing as exc:
            skipped.append(f"{LABELS[key]}: skipped, {exc}")
            say(f"{LABELS[key]}: skipped, {exc}")
        except Exception as exc:  # noqa: BLE001  a broken install is a skip too
            skipped.append(f"{LABELS[key]}: skipped, loading it failed: {exc!r}")
            say(f"{LABELS[key]}: skipped, loading it failed: {exc!r}")
    trainers = [fast] + peers

    started = time.perf_counter()
    load = LoadAverage()
    rows, not_measured = [], []
    for name in args.workloads:
        X, Y = load_workload(name, n_samples=rows_override)
        say(f"{name}: {X.shape[0]:,} tuples × {X.shape[1]}, network "
            f"{'-'.join(map(str, WORKLOADS[name].sizes))}, {X.dtype}")
        for mode in args.modes:
            results = measure(trainers, name, X, Y, mode, args.epochs, args.rounds)
            rows.append((name, mode, X.shape[0], results))
            not_measured += [r.reason for r in results.values() if isinstance(r, NotMeasured)]
        del X, Y
    elapsed = time.perf_counter() - started
    machine = machine_lines(trainers, args.threads)
    if load.line():
        machine.append(load.line())

    _report.print_heading("compare_peers.py", argv, machine)
    for line in table(rows, [p.key for p in peers]):
        print(line)
    print()
    notes = [
        f"Seconds per epoch, the median of {args.rounds} × {args.epochs} epochs per trainer, the "
        "trainers alternating (order reversed every other round) in one process on the same "
        "float32 data, each block of epochs after one untimed epoch; ratio = peer's time / "
        "fastbp's (above 1: fastbp is faster). Learning "
        f"rate {args.learning_rate:g}, no momentum, no weight decay, logistic units.",
        "case = case updating (batch size 1, one update per tuple); epoch = epoch updating "
        "(one update per epoch with the mean gradient of all tuples).",
        "fastbp: the whole train() call of a block divided by its epochs, after a warm-up that "
        f"compiled the kernels; case updating is serial, epoch updating on {args.threads} "
        "Numba threads (an epoch-mode call's first epoch also primes the gradient with one "
        "more pass). It shuffles the tuples every case-mode epoch.",
    ]
    keys = {p.key for p in peers}
    if "fann" in keys:
        notes.append("FANN: the C library through ctypes, float build, FANN_SIGMOID units "
                     "(steepness 0.5 = logistic), FANN_ERRORFUNC_LINEAR, "
                     "FANN_TRAIN_INCREMENTAL (case) / FANN_TRAIN_BATCH (epoch), "
                     "fann_train_epoch on all tuples in their order; single-threaded.")
    if "pytorch" in keys:
        notes.append(f"PyTorch: eager, {args.threads} threads (torch.set_num_threads), "
                     "Linear + Sigmoid layers, MSELoss, SGD; epoch = one full-batch step; "
                     "case = a Python loop of steps on one tuple each.")
    if "sklearn" in keys:
        notes.append("scikit-learn: MLPClassifier(solver=\"sgd\", activation=\"logistic\", "
                     "momentum=0, alpha=0), one partial_fit per epoch, batch_size = all "
                     "tuples (epoch) or 1 (case); its output and loss are its own (logistic "
                     "or softmax output with log loss; it has no squared error). Its BLAS "
                     f"(numpy's OpenBLAS) is limited to {args.sklearn_blas_threads} "
                     f"thread{'' if args.sklearn_blas_threads == 1 else 's'} with threadpoolctl "
                     "while it runs: OpenBLAS's worker threads spin-wait between calls, and "
                     "on a 2-core machine whose cores Numba's and PyTorch's thread pools also "
                     "use, that made scikit-learn many times slower and erratic "
                     "(compare_sklearn.py --blas-threads); with batch size 1 extra BLAS "
                     "threads only add overhead. Its epoch-mode figure is thus one-core BLAS; "
                     "--sklearn-blas-threads 2 measures the other setting.")
    if any(isinstance(r, tuple) and r[1] for _, _, _, res in rows for r in res.values()):
        notes.append(f"‡ timed on the first {case_subset:,} tuples each epoch and scaled to "
                     "the workload's tuples (× tuples / subset): a per-tuple cost.")
    notes += [f"Not measured: {reason}." for reason in dict.fromkeys(not_measured)]
    notes += [s + "." for s in skipped]
    if rows_override:
        notes.append(f"Every workload cut to its first {rows_override:,} tuples"
                     f"{' (--quick: a smoke test, not a benchmark)' if args.quick else ''}.")
    for note in notes:
        print(f"- {note}")
    say(f"\n({elapsed:.0f} s in all.)")


if __name__ == "__main__":
    main()
