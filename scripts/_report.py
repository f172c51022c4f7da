"""What the comparison scripts share: number formats for their Markdown tables, the lines
that describe the machine a run was measured on, and their argument types.

    import _report   (the scripts put their own folder on sys.path first)
"""
import argparse
import os
import platform

import numpy as np


# -- numbers --------------------------------------------------------------------------------
def sig3(x):
    """x with 3 significant digits, never in scientific notation."""
    if x <= 0 or not np.isfinite(x):
        return f"{x:g}"
    decimals = max(0, 2 - int(np.floor(np.log10(x))))
    return f"{x:.{decimals}f}"


def ratio(a, b):
    """a / b as a speed ratio, e.g. 2.35×, 23.5×, 235×."""
    r = a / b
    return f"{r:.0f}×" if r >= 100 else f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


# -- the machine ----------------------------------------------------------------------------
def cpu_line():
    """'- machine: <platform>, <CPU model>, <n> CPUs (<m> usable)'."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if models:
            cpu = models[0]
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"- machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs ({usable} usable)"


def threading_layer():
    """Numba's threading layer, known once a parallel kernel has run."""
    import numba
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: not chosen (and not started here)
        return "not yet chosen"


def blas_libraries():
    """The BLAS libraries threadpoolctl finds, with their thread counts (or 'none found')."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    found = ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} "
                      f"thread{'' if p.get('num_threads') == 1 else 's'})"
                      for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas")
    return found or "none found"


class LoadAverage:
    """The 1-minute load average before a run, and the Markdown line saying before / after."""

    def __init__(self):
        self.before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    def line(self):
        if self.before is None:
            return None
        return (f"- load average (1 min) before / after the run: {self.before:.2f} / "
                f"{os.getloadavg()[0]:.2f} (before: other processes only; well above 0 means "
                "the timings shared the CPUs)")


def print_heading(script, argv, machine):
    """The command that reproduces the run (quoted as run) and the machine's lines."""
    import shlex
    import sys
    command = f"python scripts/{script}" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"`{command}`")
    print()
    for line in machine:
        print(line)
    print()


# -- argument types ----------------------------------------------------------------------------
def comma_list(choices, what):
    """argparse type: 'a,b' -> ['a', 'b'], each one of `choices`, repeats dropped."""
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"no {what} given")
        for item in items:
            if item not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {item!r}; choose from {', '.join(choices)}")
        return list(dict.fromkeys(items))  # drop repeats, keep order
    return parse


def int_at_least(minimum):
    """argparse type: an integer >= minimum."""
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
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value
