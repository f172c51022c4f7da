"""What a program compiles: per Numba function, the compile time and the signatures.

Runs the program in a new Python process with an empty Numba cache (its own temporary
NUMBA_CACHE_DIR; --warm runs it once first to fill that cache), records Numba's compile events
("numba:compile", one per signature, nested when a function compiles its callees) and prints,
per function: the signatures compiled, the time including callees compiled on the way, and
its own time (without them). A regression shows as a new row, more signatures or more time.

    python scripts/compile_times.py                      # every program of bench_startup.py
    python scripts/compile_times.py train-xor            # one of them
    python scripts/compile_times.py my_program.py --signatures
    python scripts/compile_times.py train-xor --warm     # what a warm cache still compiles
    python scripts/compile_times.py --summary            # whole processes: empty cache, cached,
                                                         # and scikit-learn's same program

The programs are those the asv start-up suite times (benchmarks/bench_startup.py).
"""
import argparse
import importlib.util
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def startup_programs():
    """PROGRAMS of benchmarks/bench_startup.py: name -> Python source."""
    spec = importlib.util.spec_from_file_location("bench_startup",
                                                  ROOT / "benchmarks" / "bench_startup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PROGRAMS


def child(source, out_path):
    """Run source with a compile-event listener; write the events and wall time as JSON."""
    from numba.core import event

    events, stack = [], []

    class Listener(event.Listener):
        def on_start(self, ev):
            stack.append((time.perf_counter(), len(events)))

        def on_end(self, ev):
            start, first_child = stack.pop()
            dispatcher = ev.data["dispatcher"]
            events.append(dict(
                function=f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}",
                signature=", ".join(str(a) for a in ev.data["args"]),
                seconds=time.perf_counter() - start, depth=len(stack),
                children=list(range(first_child, len(events)))))

    event.register("numba:compile", Listener())
    start = time.perf_counter()
    exec(compile(source, "<program>", "exec"), {"__name__": "__main__"})
    wall = time.perf_counter() - start
    pathlib.Path(out_path).write_text(json.dumps(dict(events=events, wall=wall)))


def measure(source, warm):
    """(events, wall seconds of the program, seconds of the whole process) for source in a
    new process with an empty (or, warm, pre-filled) Numba cache of its own, compiling
    everything itself (FASTBP_COMPILE_ASIDE=0: `fastbp demo` compiles the digits network's
    kernels in a second process otherwise, whose compiles this one would not see)."""
    cache = tempfile.mkdtemp(prefix="fastbp-compile-times-")
    try:
        # every compile in this process: none in a second one (the demo's compile_aside)
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTBP_COMPILE_ASIDE="0")
        env.pop("FASTBP_CACHE_DIR", None)
        out = pathlib.Path(cache) / "events.json"
        command = [sys.executable, __file__, "--child", str(out)]
        runs = 2 if warm else 1
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, input=source, text=True, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            process = time.perf_counter() - start
        result = json.loads(out.read_text())
        return result["events"], result["wall"], process
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def table(events, show_signatures):
    """Rows per function: signatures, seconds including callees, own seconds."""
    rows = {}
    for e in events:
        own = e["seconds"] - sum(events[c]["seconds"] for c in e["children"]
                                 if events[c]["depth"] == e["depth"] + 1)
        row = rows.setdefault(e["function"], dict(signatures=[], total=0.0, own=0.0))
        row["signatures"].append(e["signature"])
        row["own"] += own
        row["total"] += e["seconds"]
    lines = [f"{'own s':>7} {'with callees':>12} {'sigs':>4}  function"]
    for name, row in sorted(rows.items(), key=lambda item: -item[1]["own"]):
        lines.append(f"{row['own']:7.2f} {row['total']:12.2f} {len(row['signatures']):4d}  "
                     f"{name.removeprefix('fastbp._kernels.')}")
        if show_signatures:
            lines.extend(f"{'':26}({s})" for s in row["signatures"])
    own = sum(r["own"] for r in rows.values())
    n_sigs = sum(len(r["signatures"]) for r in rows.values())
    lines.append(f"{own:7.2f} {'':12} {n_sigs:4d}  in all, {len(rows)} functions")
    return "\n".join(lines)


def process_seconds(source, cache):
    """Seconds of a new interpreter running source, its kernel cache in `cache`."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    env.pop("FASTBP_CACHE_DIR", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", source], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def sklearn_twin(source):
    """The same program with scikit-learn's estimator in place of fastbp's, and without
    importing fastbp (None if it has no drop-in, or uses fastbp for anything else)."""
    for name in ("MLPClassifier", "MLPRegressor"):
        if f"fastbp.{name}(" in source:
            twin = source.replace(f"fastbp.{name}(", f"sklearn.neural_network.{name}(").replace(
                "import fastbp\n", "import sklearn.neural_network\n")
            return None if "fastbp" in twin else twin
    return None


def summary(programs, repeat):
    """Per program: a new process on an empty cache, then `repeat` on the filled cache,
    alternating with scikit-learn's same program where there is one (medians)."""
    rows = [("import fastbp", "import fastbp\n")] + list(programs.items())
    print(f"{'program':20} {'empty cache':>12} {'cached':>8} {'scikit-learn':>13}  "
          f"(seconds of a new process; cached and scikit-learn: median of {repeat})")
    for name, source in rows:
        cache = tempfile.mkdtemp(prefix="fastbp-compile-times-")
        try:
            cold = process_seconds(source, cache)
            twin = sklearn_twin(source)
            warm, peer = [], []
            for _ in range(repeat):
                warm.append(process_seconds(source, cache))
                if twin:
                    peer.append(process_seconds(twin, cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        peer_text = f"{statistics.median(peer):13.2f}" if peer else f"{'':13}"
        print(f"{name:20} {cold:12.2f} {statistics.median(warm):8.2f} {peer_text}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Programs: " + ", ".join(startup_programs()) + ", or a path to a .py file.")
    parser.add_argument("programs", nargs="*", help="default: every start-up program")
    parser.add_argument("--warm", action="store_true",
                        help="fill the cache with a first run, report the second")
    parser.add_argument("--signatures", action="store_true", help="list every signature")
    parser.add_argument("--summary", action="store_true",
                        help="whole processes instead: empty cache, cached, scikit-learn")
    parser.add_argument("--repeat", type=int, default=5, help="cached runs for --summary")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(sys.stdin.read(), args.child)
    known = startup_programs()
    if args.summary:
        chosen = {name: known[name] if name in known else pathlib.Path(name).read_text()
                  for name in args.programs or list(known)}
        return summary(chosen, args.repeat)
    for name in args.programs or list(known):
        source = known[name] if name in known else pathlib.Path(name).read_text()
        events, wall, process = measure(source, args.warm)
        print(f"== {name}: {'warm' if args.warm else 'empty'} cache, program {wall:.2f} s, "
              f"process {process:.2f} s")
        print(table(events, args.signatures))
        print()


if __name__ == "__main__":
    sys.exit(main())
