"""fastbp against the other backpropagation trainers that are installed (FANN, PyTorch,
scikit-learn): seconds per epoch of case updating (batch size 1) and epoch updating (one
full-batch update per epoch) on the workloads of BENCHMARKS.md, measured in one run,
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

- fastbp: fastbp.train(net, X, Y, mode=..., epochs=k, track="pass", n_jobs=--threads) on
  a Network(sizes, dtype=float32) (logistic units, squared error), the time per epoch
  from History.seconds. The kernels are compiled (or loaded from Numba's cache) by a
  2-epoch warm-up on 1,000 tuples before any timing. Case updating runs serially (one
  thread, like every peer's); epoch updating on --threads Numba threads. An epoch-mode
  train() call spends one extra pass on its first epoch (it primes the gradient): that
  is the untimed first epoch of each block (below).
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
BENCHMARKS.md: a few hundred µs per tuple in Python) unless --case-subset is given,
which makes it a timing of that many tuples, scaled.

The trainers alternate: for each workload and mode, every trainer is built and warmed
up, then --rounds rounds run a block of 1 + --epochs epochs of each in turn, the order
reversed every other round, so a drift in the machine's load falls on all of them. The
first epoch of every block is not timed (it warms caches, allocator and thread pools
after the other trainers ran; for fastbp in epoch mode it is the train() call's first
epoch, which also primes the gradient). The figure is the median of a trainer's
--rounds × --epochs timed epochs. Progress goes to stderr, with
the loss each trainer reports (fastbp's and PyTorch's: mean 1/2 sum of squared errors;
FANN's: its MSE, without the 1/2; scikit-learn's: log loss), the Markdown to stdout.
"""
import argparse
import ctypes
import ctypes.util
import os
import platform
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

MODES = ("case", "epoch")
PEERS = ("fann", "pytorch", "sklearn")
LABELS = {"fastbp": "fastbp", "fann": "FANN", "pytorch": "PyTorch", "sklearn": "scikit-learn"}
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
        options = dict(mode=mode, learning_rate=self.learning_rate, track="pass",
                       n_jobs=self.threads)

        def network():
            return fastbp.Network(sizes, dtype=np.float32, random_state=0)

        fastbp.train(network(), X[:WARMUP_TUPLES], Y[:WARMUP_TUPLES], epochs=2, **options)
        net = network()

        def run(k):
            # in epoch mode the first epoch of a train() call also primes the gradient (one
            # more pass): the untimed first epoch of each block is that one
            hist = fastbp.train(net, X, Y, epochs=k, **options)
            if hist.stopped_by == "diverged":
                say(f"    fastbp diverged ({hist.n_epochs} epochs); lower --learning-rate")
            return hist.seconds, hist.loss[-1] if hist.loss else float("nan")

        return run, lambda: None


# --------------------------------------------------------------------------- FANN


FANN_SIGMOID = 3              # enum fann_activationfunc_enum (fann_data.h, FANN 2.2)
FANN_TRAIN_INCREMENTAL = 0    # enum fann_train_enum
FANN_TRAIN_BATCH = 1
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

    def session(self, name, X, Y, mode):
        lib = self.lib
        sizes = WORKLOADS[name].sizes
        layers = (ctypes.c_uint * len(sizes))(*sizes)
        ann = lib.fann_create_standard_array(len(sizes), layers)
        if not ann:
            raise RuntimeError("fann_create_standard_array failed")
        data = None
        try:
            lib.fann_set_activation_function_hidden(ann, FANN_SIGMOID)
            lib.fann_set_activation_function_output(ann, FANN_SIGMOID)
            lib.fann_set_activation_steepness_hidden(ann, 0.5)  # 1 / (1 + exp(-2 * 0.5 * x))
            lib.fann_set_activation_steepness_output(ann, 0.5)
            lib.fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR)
            lib.fann_set_training_algorithm(
                ann, FANN_TRAIN_INCREMENTAL if mode == "case" else FANN_TRAIN_BATCH)
            lib.fann_set_learning_rate(ann, self.learning_rate)
            lib.fann_set_learning_momentum(ann, 0.0)
            lib.fann_randomize_weights(ann, -0.5, 0.5)  # fastbp's default init range
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
        return f"PyTorch {self.torch.__version__} ({self.threads} threads)"

    def session(self, name, X, Y, mode):
        torch = self.torch
        n = X.shape[0]
        if mode == "case" and name in SLOW_CASE_WORKLOADS and not self.case_subset_given:
            return NotMeasured(f"PyTorch's case updating on {name} is not measured by "
                               "default (too slow, as in BENCHMARKS.md); --case-subset N "
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
                               "default (too slow, as in BENCHMARKS.md); --case-subset N "
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
        for key, (_, close) in sessions.items():
            close()
    for key, seconds in times.items():
        if seconds:
            results[key] = (statistics.median(seconds), getattr(sessions[key][0], "subset", None))
    return results


# --------------------------------------------------------------------------- output


def sig3(x):
    """x with 3 significant digits, never in scientific notation."""
    if x <= 0 or not np.isfinite(x):
        return f"{x:g}"
    decimals = max(0, 2 - int(np.floor(np.log10(x))))
    return f"{x:.{decimals}f}"


def ratio(a, b):
    r = a / b
    return f"{r:.0f}×" if r >= 100 else f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def machine_lines(trainers, threads):
    try:
        layer = numba.threading_layer()  # known once a parallel kernel has run
    except ValueError:
        layer = "not yet chosen"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if models:
            cpu = models[0]
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"- machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs ({usable} usable)",
        f"- fastbp: {fastbp.__version__}, Numba {numba.__version__}, threading layer {layer}, "
        f"n_jobs={threads} (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})",
    ]
    lines += [f"- {t.version()}" for t in trainers if t.key != "fastbp"]
    try:
        import threadpoolctl
        blas = ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} "
                         f"thread{'' if p.get('num_threads') == 1 else 's'})"
                         for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas")
        lines.append(f"- BLAS outside the limits (threadpoolctl): {blas or 'none found'}")
    except ImportError:
        pass
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


# --------------------------------------------------------------------------- main


def comma_list(choices, what):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"no {what} given")
        for item in items:
            if item not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {item!r}; choose from {', '.join(choices)}")
        return list(dict.fromkeys(items))
    return parse


def int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


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
    parser.add_argument("--rounds", type=int_at_least(1), default=2,
                        help="rounds of alternation, the order reversed each round (default: 2)")
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
    args = parser.parse_args(argv)
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
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
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
    if load_before is not None:
        machine.append(f"- load average (1 min) before / after the run: {load_before:.2f} / "
                       f"{os.getloadavg()[0]:.2f} (before: other processes only; well above 0 "
                       "means the timings shared the CPUs)")

    command = "python scripts/compare_peers.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"`{command}`")
    print()
    for line in machine:
        print(line)
    print()
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
        "fastbp: train(track=\"pass\") History.seconds after a warm-up that compiled the "
        f"kernels; case updating is serial, epoch updating on {args.threads} Numba threads "
        "(the untimed epoch of an epoch-mode block is the train() call's first, which also "
        "primes the gradient with one more pass). It shuffles the tuples every case-mode "
        "epoch.",
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
