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

# What the new process runs, per entry point a newcomer meets first: train() on XOR (the
# README's first lines), each drop-in with scikit-learn's defaults on its usual first data,
# predict of a saved model in a new process, and the CLI demo.
PROGRAMS = {
    "train-xor": (
        "import fastbp\n"
        "X, y = fastbp.datasets.xor()\n"
        "net = fastbp.Network([2, 4, 1], random_state=0)\n"
        "fastbp.train(net, X, y, epochs=10)\n"
        "net.predict(X)\n"),
    "classifier-digits": (
        "import warnings\n"
        "from sklearn.datasets import load_digits\n"
        "import fastbp\n"
        "warnings.simplefilter('ignore')  # max_iter=20 does not converge: a warning, as sklearn's\n"
        "X, y = load_digits(return_X_y=True)\n"
        "fastbp.MLPClassifier(max_iter=20, random_state=0).fit(X, y).score(X, y)\n"),
    "regressor-diabetes": (
        "import warnings\n"
        "from sklearn.datasets import load_diabetes\n"
        "import fastbp\n"
        "warnings.simplefilter('ignore')\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "fastbp.MLPRegressor(max_iter=20, random_state=0).fit(X, y).score(X, y)\n"),
    "predict-loaded": (
        "import os, tempfile\n"
        "import numpy as np\n"
        "import fastbp\n"
        "path = os.path.join(tempfile.mkdtemp(), 'model.npz')\n"
        "fastbp.save(fastbp.Network([8, 32, 2], random_state=0), path)\n"
        "fastbp.load(path).predict(np.random.default_rng(0).random((100, 8)))\n"),
    "train-rnn": (
        "import numpy as np\n"
        "import fastbp\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(200, 10, 3))\n"
        "Y = X.sum(axis=(1, 2))[:, None] / 10\n"
        "rnn = fastbp.RNN([3, 8, 1], random_state=0)\n"
        "fastbp.train(rnn, X[:150], Y[:150], epochs=20, validation=(X[150:], Y[150:]))\n"
        "rnn.evaluate(X[150:], Y[150:])\n"),
    "cli-demo": (
        "from fastbp.cli import main\n"
        "main(['demo', '--no-progress', '--plot', ''])\n"),
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
