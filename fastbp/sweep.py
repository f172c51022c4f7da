"""Large synthetic training sweeps: a grid of datasets x networks x training settings.

    python scripts/sweep.py --config grid.toml --out results/ [--scheduler tcp://HOST:PORT] [--workers N]

The grid is a TOML file whose keys each hold a list; the sweep is the product of all the
lists (see `SCHEMA` for every key, its default and its check). Every run generates its
data from its seed (fastbp.datasets.teacher) where it runs, trains one network with
fastbp.train and reports one JSON line to `<out>/runs.jsonl`: its full settings, status,
final loss and accuracy, epochs, seconds, tuples per second, peak memory, host and versions.

- Where: by default a local process pool sized to the cores, each run with `n_jobs`
  Numba threads and the pool `cores // n_jobs` wide, so runs never oversubscribe the
  cores; with `--scheduler`, each run is a task on an existing Dask distributed cluster
  (the `sweep` extra). Only settings and results cross the network, never data.
- Nothing lost: the file is appended and fsync'ed after every run; re-running the same
  command skips the runs recorded "ok" and redoes the missing and failed ones (a failed
  run's old line is dropped then, so each run is recorded once). A run that raises is
  recorded "failed" with its error and the sweep goes on.
- Data larger than memory: `memmap = [true]` writes the data in chunks to .npy files
  (fastbp.datasets.write_teacher_npy, cached per data setting under --data-dir) and trains
  on them memory-mapped (np.load(mmap_mode="r")): X is never copied whole into memory.
- At the end: `<out>/summary.csv` (one row per run) and, with matplotlib, the plots
  `<out>/throughput.png` (tuples per second against network size, per mode) and
  `<out>/loss.png` (final loss per configuration).
"""
import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from ._threads import usable_cores
from ._validation import check_bool, check_choice, check_float, check_int

RUNS_FILE, SUMMARY_FILE = "runs.jsonl", "summary.csv"
THROUGHPUT_PLOT, LOSS_PLOT = "throughput.png", "loss.png"


class ConfigError(ValueError):
    """A sweep configuration that cannot run: the message names the key."""


# -- the configuration -------------------------------------------------------------------------
# Each key's check of one list entry: fastbp._validation's checks (the API's own), named
# after the key; their errors become ConfigError ("[section] key must be ...").
def _int(minimum):
    return lambda value, name: check_int(value, name, minimum=minimum)


def _float(minimum=None, strict=False, maximum=None):
    return lambda value, name: check_float(value, name, minimum=minimum, strict_min=strict,
                                           maximum=maximum, strict_max=maximum is not None)


def _choice(*choices):
    return lambda value, name: check_choice(value, name, choices)


def _n_classes(value, name):
    value = check_int(value, name, minimum=0)
    if value == 1:
        raise ValueError(f"{name} must be 0 (regression) or >= 2, got 1")
    return value


def _hidden(value, name):
    if not isinstance(value, list):
        raise ValueError(f"{name}: each entry must be a list of layer sizes like [64, 64], got {value!r}")
    return [check_int(size, name, minimum=1) for size in value]


# section -> key -> (check of one list entry, default list or None when required)
SCHEMA = {
    "data": {
        "n_samples": (_int(1), None),
        "n_features": (_int(1), None),
        "n_classes": (_n_classes, None),   # 0 = regression
        "seed": (_int(0), None),
        "noise": (_float(0.0), [0.0]),      # classification: the fraction of labels flipped
        "memmap": (check_bool, [False]),         # generate to .npy in chunks, train memory-mapped
    },
    "model": {
        "hidden": (_hidden, None),
        "activation": (_choice("identity", "logistic", "sigmoid", "tanh", "relu"), None),
        "dtype": (_choice("float32", "float64"), ["float32"]),
    },
    "train": {
        "mode": (_choice("case", "epoch", "minibatch"), None),
        "learning_rate": (_float(0.0, strict=True), None),
        "epochs": (_int(1), None),
        "batch_size": (_int(1), [200]),      # minibatch mode only
        "n_jobs": (_int(1), [1]),            # Numba threads per run
        "seed": (_int(0), [0]),              # initial weights and shuffles
        "optimizer": (_choice("sgd", "adam"), ["sgd"]),
        "momentum": (_float(0.0, maximum=1.0), [0.0]),
    },
}


def load_config(path):
    """The grid in the TOML file at `path`, every key checked: {section: {key: [values]}}."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return check_config(raw)


def check_config(raw):
    """Check a parsed grid; returns it with defaults filled in. ConfigError names the key."""
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a table of sections")
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; the sections are {list(SCHEMA)}")
    grid = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[{section}] must be a table")
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise ConfigError(f"[{section}] unknown key(s) {unknown}; known: {sorted(keys)}")
        grid[section] = {}
        for key, (check, default) in keys.items():
            if key not in given:
                if default is None:
                    raise ConfigError(f"[{section}] {key} is missing (a list of values)")
                values = default
            else:
                values = given[key]
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"[{section}] {key} must be a non-empty list, got {values!r}")
            checked = []
            for value in values:
                try:
                    checked.append(check(value, f"[{section}] {key}"))
                except (ValueError, TypeError) as error:
                    raise ConfigError(str(error)) from None
            grid[section][key] = checked
    return grid


def expand(grid):
    """Every run of the grid: one dict {section: {key: value}} per combination, in a fixed
    order; each combination is checked as a whole (e.g. noise <= 1 for classification)."""
    names = [(section, key) for section in SCHEMA for key in SCHEMA[section]]
    runs = []
    for values in itertools.product(*(grid[s][k] for s, k in names)):
        config = {section: {} for section in SCHEMA}
        for (section, key), value in zip(names, values):
            config[section][key] = value
        data = config["data"]
        if data["n_classes"] != 0 and data["noise"] > 1:
            raise ConfigError(f"[data] noise: the fraction of labels flipped must be <= 1 for "
                              f"classification, got {data['noise']}")
        runs.append(config)
    return runs


def run_id(config):
    """A stable name for a run: a hash of its full settings."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def layer_sizes(config):
    data = config["data"]
    n_out = 1 if data["n_classes"] in (0, 2) else data["n_classes"]
    return [data["n_features"], *config["model"]["hidden"], n_out]


def network_for(config):
    """The untrained Network a run trains (output and loss follow the task)."""
    from .network import Network
    n_classes = config["data"]["n_classes"]
    output, loss = (("identity", "squared_error") if n_classes == 0 else
                    ("logistic", "log_loss") if n_classes == 2 else ("softmax", "log_loss"))
    return Network(layer_sizes(config), activation=config["model"]["activation"],
                          output_activation=output, loss=loss, dtype=config["model"]["dtype"],
                          random_state=config["train"]["seed"])


# -- one run (on a worker) -----------------------------------------------------------------------
def _reset_peak_memory():
    """Start the kernel's peak-resident-memory count (VmHWM) afresh for this process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_memory_bytes():
    """This process's peak resident memory since the last reset (Linux), else since it began."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def default_data_dir():
    return Path(tempfile.gettempdir()) / "fastbp-sweep-data"


def make_data(data, dtype, data_dir=None):
    """(X, Y) of a run's data setting: in memory, or written once in chunks to .npy files
    (cached under data_dir, safe against other workers writing the same) and memory-mapped."""
    from . import datasets
    args = dict(n_samples=data["n_samples"], n_features=data["n_features"],
                n_classes=data["n_classes"], noise=data["noise"], seed=data["seed"], dtype=dtype)
    if not data["memmap"]:
        X, y = datasets.teacher(**args)
    else:
        folder = Path(data_dir) if data_dir else default_data_dir()
        folder.mkdir(parents=True, exist_ok=True)
        name = run_id({"data": {k: v for k, v in data.items() if k != "memmap"}, "dtype": dtype})
        x_path, y_path = folder / f"{name}_X.npy", folder / f"{name}_y.npy"
        if not (x_path.exists() and y_path.exists()):
            base = folder / f".{name}.{os.getpid()}.{time.monotonic_ns()}"
            tmp_x, tmp_y = datasets.write_teacher_npy(base, **args)
            os.replace(tmp_y, y_path)  # y first: X's presence says both are complete
            os.replace(tmp_x, x_path)
        X, y = np.load(x_path, mmap_mode="r"), np.load(y_path)
    if data["n_classes"] > 2:
        Y = datasets.one_hot(y, data["n_classes"], dtype=dtype)
    else:
        Y = np.asarray(y, dtype=dtype).reshape(len(y), -1)
    return X, Y


def run_one(config, data_dir=None):
    """Train one run of the grid; its record (without status). Raises what training raises."""
    import numba

    from ._version import __version__
    from .train import DivergenceWarning
    from .train import train as train_network
    tracked = _reset_peak_memory()
    start = time.perf_counter()
    data, model, train = config["data"], config["model"], config["train"]
    X, Y = make_data(data, model["dtype"], data_dir)
    options = dict(mode=train["mode"], batch_size=train["batch_size"],
                   learning_rate=train["learning_rate"], n_jobs=train["n_jobs"],
                   optimizer=train["optimizer"], momentum=train["momentum"], track="pass")
    # Load (or compile) the kernels first, on two tuples: the timed epochs measure training.
    train_network(network_for(config), X[:2], Y[:2], epochs=1, random_state=0, **options)
    net = network_for(config)
    with warnings.catch_warnings():  # a divergence is in the record (stopped_by), not on stderr
        warnings.simplefilter("ignore", DivergenceWarning)
        history = train_network(net, X, Y, epochs=train["epochs"], random_state=train["seed"], **options)
    if history.stopped_by == "interrupted":
        raise KeyboardInterrupt  # the sweep stops; the run is not recorded
    loss, accuracy = net.evaluate(X, Y)  # at the final weights, once
    return {
        "final_loss": float(loss),
        "accuracy": None if data["n_classes"] == 0 else float(accuracy),
        "epochs": history.n_epochs, "stopped_by": history.stopped_by,
        "seconds": float(sum(history.seconds)), "wall_seconds": time.perf_counter() - start,
        "tuples_per_second": float(history.tuples_per_second),
        "n_params": int(net.n_params),
        "peak_memory_bytes": _peak_memory_bytes(), "peak_memory_scope": "run" if tracked else "process",
        "host": socket.gethostname(), "pid": os.getpid(),
        "fastbp_version": __version__, "numba_version": numba.__version__,
        "python_version": platform.python_version(),
    }


def safe_run(config, data_dir=None):
    """run_one as a record that never raises (but on Ctrl-C): status "ok", or "failed" with the error."""
    record = {"run_id": run_id(config), "config": config}
    try:
        record.update(run_one(config, data_dir), status="ok")
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001  a run's failure is data, not a crash
        record.update(status="failed", error=f"{type(error).__name__}: {error}",
                      traceback=traceback.format_exc(limit=8), host=socket.gethostname())
    return record


# -- the results file ----------------------------------------------------------------------------
def read_records(path):
    """The records in runs.jsonl, the last one per run; a torn last line (a kill mid-write)
    is cut off the file."""
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # a line without its newline: cut it off, it is redone
        with open(path, "r+b") as f:
            f.truncate(end)
        data = data[:end]
    records = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("run_id"), str):
            records[record["run_id"]] = record
    return records


def rewrite_records(path, records):
    """runs.jsonl holding exactly `records` (one line each), replaced atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        for record in records:
            f.write(json.dumps(_finite_or_none(record), sort_keys=True, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _finite_or_none(value):
    """Records are strict JSON: NaN and infinity (e.g. the throughput of a run that diverged
    in its first epoch, so has no epoch to time) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def append_record(f, record):
    f.write(json.dumps(_finite_or_none(record), sort_keys=True, allow_nan=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


# -- where runs run --------------------------------------------------------------------------------
def _ignore_sigint():
    """Worker processes ignore Ctrl-C (the terminal sends it to the whole process group): an
    interrupt landing in Numba's compiler is printed as an ignored exception, and a run cut
    short is not recorded anyway. The sweep's own process answers it and ends the workers."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_local(todo, workers, threads, data_dir):
    """Yield the records of `todo`, run `workers` at a time in fresh processes (spawned: no
    forked threading layer) with NUMBA_NUM_THREADS=threads; in this process when workers == 0."""
    if workers == 0:
        for config in todo:
            yield safe_run(config, data_dir)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    saved = os.environ.get("NUMBA_NUM_THREADS")
    os.environ["NUMBA_NUM_THREADS"] = str(threads)  # inherited by the spawned workers
    try:
        remaining = list(todo)
        while remaining:
            pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint,
                                       mp_context=multiprocessing.get_context("spawn"))
            try:
                futures = {pool.submit(safe_run, config, data_dir): config for config in remaining}
                remaining = []
                for future in as_completed(futures):
                    try:
                        yield future.result()
                    except BrokenProcessPool:  # a worker died (killed, out of memory): record
                        config = futures[future]  # the run as failed, start a new pool for the rest
                        yield {"run_id": run_id(config), "config": config, "status": "failed",
                               "error": "BrokenProcessPool: the worker process running it died"}
                        remaining = [c for f, c in futures.items() if not f.done()]
                        break
            except BaseException:  # Ctrl-C: this process stops the workers (see _ignore_sigint)
                for process in list(getattr(pool, "_processes", None) or {}):
                    pool._processes[process].terminate()
                raise
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
    finally:
        if saved is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
        else:
            os.environ["NUMBA_NUM_THREADS"] = saved


def run_dask(todo, scheduler, data_dir):
    """Yield the records of `todo` run as tasks on the Dask cluster at `scheduler`."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler needs Dask distributed: pip install 'fastbp[sweep]'") from None
    with Client(scheduler) as client:
        futures = {client.submit(safe_run, config, data_dir, pure=False,
                                 key=f"fastbp-run-{run_id(config)}-{time.time_ns()}"): config
                   for config in todo}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as error:  # noqa: BLE001  e.g. KilledWorker: the run failed
                config = futures[future]
                yield {"run_id": run_id(config), "config": config, "status": "failed",
                       "error": f"{type(error).__name__}: {error}"}


# -- summary and plots -----------------------------------------------------------------------------
SUMMARY_COLUMNS = [
    "run_id", "status", "n_samples", "n_features", "n_classes", "data_seed", "noise", "memmap",
    "hidden", "activation", "dtype", "mode", "learning_rate", "epochs_asked", "batch_size",
    "n_jobs", "seed", "optimizer", "momentum", "n_params", "final_loss", "accuracy", "epochs",
    "stopped_by", "seconds", "tuples_per_second", "peak_memory_mb", "host", "error"]


def summary_rows(records):
    rows = []
    for r in records:
        c = r["config"]
        d, m, t = c["data"], c["model"], c["train"]
        peak = r.get("peak_memory_bytes")
        rows.append({
            "run_id": r["run_id"], "status": r["status"], "n_samples": d["n_samples"],
            "n_features": d["n_features"], "n_classes": d["n_classes"], "data_seed": d["seed"],
            "noise": d["noise"], "memmap": d["memmap"], "hidden": "-".join(map(str, m["hidden"])),
            "activation": m["activation"], "dtype": m["dtype"], "mode": t["mode"],
            "learning_rate": t["learning_rate"], "epochs_asked": t["epochs"],
            "batch_size": t["batch_size"], "n_jobs": t["n_jobs"], "seed": t["seed"],
            "optimizer": t["optimizer"], "momentum": t["momentum"], "n_params": r.get("n_params"),
            "final_loss": r.get("final_loss"), "accuracy": r.get("accuracy"), "epochs": r.get("epochs"),
            "stopped_by": r.get("stopped_by"), "seconds": r.get("seconds"),
            "tuples_per_second": r.get("tuples_per_second"),
            "peak_memory_mb": None if peak is None else round(peak / 2 ** 20, 1),
            "host": r.get("host"), "error": r.get("error")})
    return rows


def write_summary(out, records):
    rows = summary_rows(records)
    with open(Path(out) / SUMMARY_FILE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def label(row):
    return (f"{row['n_samples']}x{row['n_features']} c{row['n_classes']} | "
            f"{row['hidden'] or '-'} {row['activation']} {row['dtype']} | {row['mode']} "
            f"lr {row['learning_rate']:g}")


def write_plots(out, rows):
    """throughput.png and loss.png from the ok rows; the paths written (none without matplotlib).
    A run whose loss is not finite (diverged) is a bar marked "diverged", and the title counts
    the runs each plot leaves out (failed ones, which have no numbers)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    ok = [r for r in rows if r["status"] == "ok" and r["tuples_per_second"] is not None]
    if not ok:
        return []
    left_out = len(rows) - len(ok)
    note = f" ({left_out} of {len(rows)} runs failed: not shown)" if left_out else ""
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, mode in enumerate(sorted({r["mode"] for r in ok})):
        color = f"C{k}"  # one colour per mode for its runs and their median
        points = sorted((r["n_params"], r["tuples_per_second"]) for r in ok if r["mode"] == mode)
        sizes = sorted({p for p, _ in points})
        medians = [float(np.median([t for p, t in points if p == s])) for s in sizes]
        ax.scatter([p for p, _ in points], [t for _, t in points], s=14, alpha=0.4, color=color)
        ax.plot(sizes, medians, marker="o", color=color, label=f"{mode} (median of its runs)")
    ax.set(xscale="log", yscale="log", xlabel="network size (weights and biases)",
           ylabel="training throughput (tuples / s)", title="fastbp sweep: throughput per mode" + note)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(Path(out) / THROUGHPUT_PLOT)
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    ordered = sorted(ok, key=lambda r: label(r))
    height = max(3.0, min(40.0, 0.22 * len(ordered) + 1.0))
    fig, ax = plt.subplots(figsize=(9, height))
    losses = [r["final_loss"] for r in ordered]
    ax.barh(range(len(ordered)), [0.0 if v is None else v for v in losses], color="tab:blue")
    for y, value in enumerate(losses):
        if value is None:  # diverged: no finite loss to draw, said on its row
            ax.annotate("diverged", (0, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7, color="tab:red")
    ax.set_yticks(range(len(ordered)))
    ax.set_yticklabels([label(r) for r in ordered], fontsize=6 if len(ordered) > 40 else 8)
    ax.invert_yaxis()
    diverged = sum(v is None for v in losses)
    title = "fastbp sweep: final loss per configuration" + note
    if diverged:
        title += f"\n{diverged} run(s) diverged: marked, no bar"
    ax.set(xlabel="final training loss", title=title)
    fig.tight_layout()
    paths.append(Path(out) / LOSS_PLOT)
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


# -- the command ---------------------------------------------------------------------------------
def build_parser(prog="sweep.py"):
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0],
        epilog="The grid's keys: " + "; ".join(
            f"[{s}] " + ", ".join(k + ("" if d is None else f" (default {d})") for k, (_, d) in keys.items())
            for s, keys in SCHEMA.items()))
    parser.add_argument("--config", required=True, help="the grid, a TOML file")
    parser.add_argument("--out", required=True, help="results folder (made if missing)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a Dask distributed scheduler (tcp://HOST:PORT); default: "
                             "this machine's cores")
    parser.add_argument("--workers", type=int, default=None,
                        help="local runs at a time (default: cores // the largest n_jobs; 0: one "
                             "after another in this process)")
    parser.add_argument("--data-dir", default=None,
                        help="where memmap data is generated and cached (default: "
                             f"{default_data_dir()}); on a cluster, a path on each worker")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plots", action="store_true", help="summary.csv only")
    return parser


def main(argv=None, prog="sweep.py"):
    """Run a sweep; returns the exit code (0: every run ok, 1: some failed, 2: bad
    arguments or config, 130: interrupted)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already reported
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        grid = load_config(args.config)
        runs = expand(grid)
        for config in runs:  # every network must build, before anything runs
            try:
                network_for(config)
            except (ValueError, TypeError) as error:
                raise ConfigError(f"run {json.dumps(config)}: {error}") from None
        if args.workers is not None and args.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {args.workers}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    except (ConfigError, OSError) as error:
        print(f"sweep: error: {error}", file=sys.stderr)
        return 2

    path = out / RUNS_FILE
    records = read_records(path)
    ids = [run_id(c) for c in runs]
    done = {i for i in ids if records.get(i, {}).get("status") == "ok"}
    todo = [c for c, i in zip(runs, ids) if i not in done]
    # failed runs are redone: drop their old lines, so each run ends up recorded once
    keep = [r for i, r in records.items() if r.get("status") == "ok" or i not in set(ids)]
    if len(keep) != len(records) or path.exists():
        rewrite_records(path, keep)
    threads = max(c["train"]["n_jobs"] for c in runs)
    cores = usable_cores()
    if args.scheduler:
        where = f"Dask cluster {args.scheduler}"
        results = run_dask(todo, args.scheduler, args.data_dir)
    else:
        workers = max(1, cores // threads) if args.workers is None else args.workers
        where = (f"{workers} local process(es) x {threads} Numba thread(s) on {cores} core(s)"
                 if workers else "this process")
        results = run_local(todo, workers, threads, args.data_dir)
    print(f"sweep: {len(runs)} runs, {len(done)} already recorded ok, {len(todo)} to run on {where}; "
          f"results in {path}", flush=True)

    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(runs), initial=len(done), unit="run", desc="sweep")
    failed = 0
    try:
        with open(path, "a") as f:
            for record in results:
                append_record(f, record)
                failed += record["status"] != "ok"
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(failed=failed, refresh=False)
    except KeyboardInterrupt:
        print(f"\nsweep: interrupted; finished runs are in {path}; run the same command to go on",
              file=sys.stderr)
        return 130
    except ConfigError as error:
        print(f"sweep: error: {error}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()

    records = read_records(path)
    final = [records[i] for i in dict.fromkeys(ids) if i in records]
    rows = write_summary(out, final)
    plots = [] if args.no_plots else write_plots(out, rows)
    n_failed = sum(r["status"] != "ok" for r in final)
    print(f"sweep: {len(final) - n_failed} ok, {n_failed} failed; {out / SUMMARY_FILE}"
          + "".join(f", {p}" for p in plots))
    if n_failed:
        print("sweep: run the same command again to redo the failed runs", file=sys.stderr)
    return 1 if n_failed else 0
