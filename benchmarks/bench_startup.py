"""Start-up: wall time of a NEW Python process that imports fastbp and trains a little,
with Numba's disk cache cold (every kernel compiled: the first run after installing) or
warm (the machine code loaded from the cache: every later run).

numba's own suite keeps compilation and execution apart the same way: here the cold and
warm timings of the same program differ by the compile work alone. Each process gets its
own NUMBA_CACHE_DIR, so the developer's cache is neither used nor disturbed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import timeit

# What the new process runs: a default estimator fit on XOR (scikit-learn's defaults: adam,
# minibatches, relu) and the textbook's case updating through fastbp.train.
PROGRAMS = {
    "estimator-xor": (
        "import warnings\n"
        "import fastbp\n"
        "warnings.simplefilter('ignore')  # max_iter=20 does not converge: a warning, as sklearn's\n"
        "X, y = fastbp.datasets.xor()\n"
        "fastbp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0)"
        ".fit(X, y.ravel()).predict(X)\n"),
    "train-case-xor": (
        "import fastbp\n"
        "X, y = fastbp.datasets.xor()\n"
        "net = fastbp.Network([2, 4, 1], random_state=0)\n"
        "fastbp.train(net, X, y, mode='case', learning_rate=0.5, epochs=20)\n"
        "net.predict(X)\n"),
}


def run_program(program, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    subprocess.run([sys.executable, "-c", PROGRAMS[program]], env=env, check=True,
                   stdout=subprocess.DEVNULL)


class StartupSuite:
    """Seconds from starting the interpreter to the end of the program, cache cold or warm."""
    timer = timeit.default_timer
    processes = 1
    number = 1
    warmup_time = 0
    repeat = (1, 3, 300.0)  # a cold start compiles for a minute or more
    timeout = 1800
    params = (list(PROGRAMS), ["cold", "warm"])
    param_names = ["program", "cache"]

    def setup(self, program, cache):
        self.cache_dir = tempfile.mkdtemp(prefix="fastbp-numba-cache-")
        if cache == "warm":
            run_program(program, self.cache_dir)  # fill the cache outside the timing

    def teardown(self, program, cache):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def time_new_process(self, program, cache):
        run_program(program, self.cache_dir)
