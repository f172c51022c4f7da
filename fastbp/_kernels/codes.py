"""The codes, table columns and sizes fastbp's kernels freeze in: plain Python and numpy, so
the Python layer reads them without importing Numba (`import fastbp` stays quick).

The compiled functions (backprop.py) import every name here; Numba compiles them in as
constants. The disk cache of those functions is stamped with a hash of every file of this
package (see _cache.py), so an edit here recompiles them.
"""
import os

import numpy as np

# Columns of the layout table: one row per weight layer, int64.
FAN_IN, FAN_OUT, W_OFF, B_OFF, ACT = 0, 1, 2, 3, 4
LAYOUT_COLUMNS = 5

# Training with dropout passes the kernels the table with two more columns: the rate at which
# the layer's outputs are dropped, in units of 2**-32 (0: none; never on the output layer),
# and the pass's seed. Which units a pass drops is a hash of (seed, tuple, layer, unit): the
# same in every mode and on any number of threads, recomputed where the backward pass needs
# it, so no mask is stored. Predict and evaluate get the 5-column table: no dropout.
DROP, DROP_SEED = 5, 6
TRAIN_LAYOUT_COLUMNS = 7
DROP_ONE = 2 ** 32

# Activation codes (hidden layers: identity, logistic, tanh, relu; output: identity, logistic, softmax, exp).
IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP, LEAKY_RELU, ELU, SOFTPLUS = range(9)
ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU, "softmax": SOFTMAX, "exp": EXP, "leaky_relu": LEAKY_RELU,
               "elu": ELU, "softplus": SOFTPLUS}

# leaky_relu: a for a > 0, else LEAKY_SLOPE a (PyTorch's default slope); elu: a, else exp(a) - 1
# (alpha 1); softplus: log(1 + exp(a)), taken as a above SOFTPLUS_LINEAR (exact in float64).
LEAKY_SLOPE = 0.01
SOFTPLUS_LINEAR = 36.0

# Loss codes.
SQUARED_ERROR, LOG_LOSS, POISSON = 0, 1, 2
LOSSES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS, "poisson": POISSON}

# Optimizer codes.
SGD, ADAM, RPROP, QUICKPROP = 0, 1, 2, 3
OPTIMIZERS = {"sgd": SGD, "adam": ADAM, "rprop": RPROP, "quickprop": QUICKPROP}
BATCH_ONLY = (RPROP, QUICKPROP)  # FANN's batch algorithms: epoch updating only
RPROP_MIN_STEP = 0.0001  # FANN's floor under a weight's last step

# Slots of the float64 `hyper` array that carries an optimizer's scalars into a kernel.
# STEP (Adam's t) and LR_T (Adam's bias-corrected rate) are written by the kernels.
# RPROP's and Quickprop's parameters follow (FANN's names: rprop_increase_factor, ...).
(LR, MOMENTUM, NESTEROV, ALPHA, BETA_1, BETA_2, EPSILON, STEP, LR_T, RPROP_INCREASE,
 RPROP_DECREASE, RPROP_DELTA_MIN, RPROP_DELTA_MAX, QUICKPROP_DECAY, QUICKPROP_MU) = range(15)
N_HYPER = 15

# Columns of `geo`, the uint64 offsets every kernel derives from the layout table: fan_in,
# fan_out, where W and the biases start in params, where the layer's inputs and outputs
# start in act/delta.
G_IN, G_OUT, G_W, G_B, G_A_IN, G_A_OUT = 0, 1, 2, 3, 4, 5

# Each layer's units start in act/delta at a multiple of UNIT_ALIGN (and the case-updating
# buffers at a 64-byte boundary, Network.training_kernel): a layer's vector loads and stores
# then never straddle two cache lines. Packed, a 9-32-4 network's hidden units started 72
# bytes in, and case updating ran at one of several speeds set by where malloc put the buffer.
UNIT_ALIGN = 8


def unit_offset(fan_in):
    """Room a layer's inputs take in act/delta: fan_in rounded up to UNIT_ALIGN."""
    return -(-fan_in // UNIT_ALIGN) * UNIT_ALIGN


def units_length(sizes):
    """Length of a unit buffer (act/delta) of a network of these layer sizes (geometry's
    offsets: every layer padded to UNIT_ALIGN)."""
    return sum(unit_offset(size) for size in sizes)


def turned_room(sizes):
    """Room past the units in case updating's act for the output layer's weights turned, one
    row of unit_offset(inputs) per output unit (see passes.turned_output): 0 for a network
    without a hidden layer or of one output."""
    return sizes[-1] * unit_offset(sizes[-2]) if len(sizes) > 2 and sizes[-1] >= 2 else 0


# Small unsigned constants for offset arithmetic (an integer literal would make it float64).
ZERO, ONE, TWO, THREE, FOUR = np.uint64(0), np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
EIGHT = np.uint64(8)

# Layers of at most NARROW units go column by column in case updating's steps (a dot product
# per unit, one loop over its column of W for errors and update): swept row by row, each row
# would be a loop of a few iterations whose set-up costs more than its work.
NARROW = np.uint64(4)

# Rows of the optimizer state array (n_rows, n_params): SGD's velocity / Adam's first moment,
# then Adam's second moment (row 1 is read by the Adam branches only).
# RPROP and Quickprop: row 0 each weight's last step (RPROP: its size, started at delta_zero),
# row 1 its last gradient.
STATE_ROWS = {SGD: 1, ADAM: 2, RPROP: 2, QUICKPROP: 2}

# Networks of at most this many weights and biases (and no dropout) update case by case with
# case_pass_small, everything inlined; past it, case_pass calls the forward and backward
# passes. Inlined, larger networks ran faster too (32-32-4: 250 against 337 ns a tuple,
# 128-32-20 910-1010 against 1280, both with the turned output layer), but a digits-sized
# network's case updating then compiled twice as long (`fastbp demo`: 23 -> 28 s).
SMALL_NETWORK = 1024

# The gradient and forward passes run BLOCK tuples at a time as matrix products (BLAS's gemm,
# blocks.gemm, single-threaded inside the parallel kernels): a weight loaded once serves the whole
# block instead of one tuple. A block's unit values live in a flat buffer laid out like act,
# BLOCK times wider: layer l's units form a b x size matrix starting at BLOCK * (its act offset).
BLOCK = 128

# Passes of at most SMALL_PASS tuples through networks whose layers are all at most
# SMALL_LAYER wide go tuple by tuple instead (by_tuples): their matrix products are too small
# to pay for a BLAS call each. From 32 tuples on, blocks were faster even for 2-2-1 (3-8-8-1:
# 260 against 371 ns a tuple at 32, 151 against 310 at 4,096).
SMALL_LAYER = 16
SMALL_PASS = 16

# Case updating with plain SGD (no momentum), and passes of at most SMALL_PASS tuples, of
# networks whose every layer has at most SHAPED_LAYER units (and at most SHAPED_LAYERS weight
# layers; no dropout) run passes compiled for that one shape (shaped.py): every
# loop bound and offset a constant, so each layer is straight-line code. On such layers a
# tuple's update is a chain of short dependent steps, and the loop set-up and address
# arithmetic of the generic pass were most of it (2-2-1 and 3-8-1: 2.5x faster). Each new
# shape compiles its own run kernel once (then cached); wider layers gain nothing.
SHAPED_LAYER = 8
SHAPED_LAYERS = 4

# An Elman network's params hold, in this order: W_x (n_in x n_hid), W_h (n_hid x n_hid), b_h,
# W_y (n_hid x n_out), b_y; `rl`, an int64 table, says where (the R_* slots). Sequences come
# flattened: X2 row s*T + t is step t of sequence s; Y2 likewise for per-step targets, row s
# for per-sequence ones (the output at the last step). The hidden states of one sequence
# live in H, (T + 1) x n_hid flat, H[0] = 0; DA (same layout) holds dE/da for each step.
R_IN, R_HID, R_OUT, R_WX, R_WH, R_BH, R_WY, R_BY, R_ACT_H, R_ACT_Y = range(10)
RNN_LAYOUT_SLOTS = 10

# A network with batch normalisation normalises each hidden layer's net inputs over the batch,
# I' = gamma (I - mean) / sqrt(var + eps) + beta, before the activation. gamma and beta live in
# params after the last layer (the `bn` table's slots say where); the running mean and variance
# (for predict) in `stats`. Normalising couples the tuples of a batch, so these kernels work
# on a whole batch at once, as matrices, one thread; layer l's units for b tuples form the
# b x size matrix at b * (its act offset) of a flat buffer.
BN_ON, BN_GAMMA, BN_BETA, BN_STAT = 0, 1, 2, 3
BN_COLUMNS = 4

# A run kernel trains epoch after epoch -- the tuple order, the learning rate, the pass, the
# history, the stop rules -- and returns to Python only when its slice ends: after the
# slice's last epoch (C_END), once its time budget is spent, or when a rule stops the run.
# Python (fastbp.train.Run) owns the run's state between slices, in three arrays:
#   ctl   int64    settings and counters (the C_* slots)
#   num   float64  settings and running values (the N_* slots)
#   hist  float64  (H_ROWS, capacity): column e-1 is epoch e's record, a row per series
# Each family of network and mode has its run kernel, a loop around its pass; they share
# begin_epoch (learning rate), epoch_order (tuple order) and end_epoch (the rules).
(C_EPOCH, C_END, C_LAST, C_STATUS, C_SEED, C_ORDER, C_ORDERS_FIRST, C_SCHEDULE, C_TRACK_END,
 C_TOL_RULE, C_PATIENCE, C_NO_IMPROVEMENT, C_ES_RULE, C_STALL, C_WEIGHT_CHANGE, C_PENDING,
 C_SAMPLES, C_BUDGET_NS, C_CLASSIFIER, C_DIVERGED_AT, C_PENALTY, C_SCORE, C_BEST_EPOCH,
 C_LOSS_DIVERGES, C_CLOCK_FROM, C_CLOCK_GROUP) = range(26)
N_CTL = 26
# The clock: read after every epoch, except that epochs shorter than CLOCK_GROUP_BELOW_NS
# are timed CLOCK_GROUP at a time, each booked at their mean (a reading costs ~20 ns, a
# tenth of an XOR epoch). C_CLOCK_FROM: the epochs done at the last reading; C_CLOCK_GROUP:
# the epochs per reading now.
CLOCK_GROUP, CLOCK_GROUP_BELOW_NS = 16, 4000
# C_LOSS_DIVERGES: 1 (train()'s rule): a non-finite loss is divergence, as a non-finite weight
# is; 0 (scikit-learn's): only a non-finite weight is -- an infinite loss is booked and
# training goes on, as scikit-learn's MLP does.
(N_LR0, N_LR, N_POWER_T, N_TOL, N_VAL_TOL, N_MAX_MISCLASSIFIED, N_MIN_WEIGHT_CHANGE,
 N_BEST_LOSS, N_BEST_VAL, N_DATA_SCALE, N_PEND_LOSS, N_PEND_PENALTY, N_PEND_CORRECT,
 N_PEND_WEIGHT) = range(14)
N_NUM = 14

# Rows of hist; the first seven are History's lists, in this order.
(H_LOSS, H_ACCURACY, H_SECONDS, H_LEARNING_RATE, H_WEIGHT_CHANGE, H_VAL_LOSS, H_VAL_ACCURACY,
 H_VAL_SCORE, H_EVENT) = range(9)
H_ROWS = 9

# C_STATUS: why the run stopped (RUNNING: it has not).
# STOP_CALLBACK is set by Python, when a per-epoch callback asks to stop.
RUNNING, STOP_EPOCHS, STOP_MISCLASSIFIED, STOP_WEIGHT_CHANGE, STOP_NO_IMPROVEMENT, \
    STOP_EARLY_STOPPING, STOP_DIVERGED, STOP_CALLBACK = range(8)
STOP_NAMES = ("", "epochs", "misclassified", "weight_change", "no_improvement", "early_stopping",
              "diverged", "callback")

# C_ORDER: the tuple order of an epoch: 0..n-1, hashed_order of (seed, epoch), or row
# epoch - C_ORDERS_FIRST of orders drawn in Python (the drop-ins: scikit-learn's stream).
ORDER_NATURAL, ORDER_HASHED, ORDER_GIVEN = range(3)

# C_SCHEDULE: the learning rate of epoch e (1-based): lr0, lr0 / e, lr0 / e**power_t, whatever
# Python set for the epoch (a callable schedule); scikit-learn's "invscaling" (lr0 / (t + 1)
# **power_t after each epoch, t the tuples passed so far) and "adaptive" (divided by
# ADAPTIVE_DIVISOR when the loss stalls, the run stopping once it is at most MIN_ADAPTIVE_RATE).
SCHED_CONSTANT, SCHED_INV_T, SCHED_INVSCALING, SCHED_GIVEN, SCHED_SAMPLES_INVSCALING, \
    SCHED_ADAPTIVE = range(6)
ADAPTIVE_DIVISOR = 5.0
MIN_ADAPTIVE_RATE = 1e-6

# C_TOL_RULE and C_ES_RULE: the no-improvement and early-stopping rules as train() states them,
# or as scikit-learn's MLP does (one counter, fed by the validation score under early stopping,
# and the "adaptive" schedule's answer to a stall).
RULE_OFF, RULE_TRAIN, RULE_SKLEARN = range(3)

# C_SCORE: scikit-learn's validation score: accuracy (its predict's labels) or R^2.
SCORE_NONE, SCORE_ACCURACY, SCORE_R2 = range(3)

# hist[H_EVENT]: what scikit-learn's verbose loop prints after the epoch's loss.
EVENT_NONE, EVENT_STOP, EVENT_LR_LOWERED, EVENT_LR_TOO_SMALL = range(4)

# Validation sums per chunk: loss, weight (the tuples), right (train()'s count), any output not
# finite, scikit-learn's weighted count right and weight sum, then its squared error per output.
V_LOSS, V_WEIGHT, V_RIGHT, V_NONFINITE, V_SK_RIGHT, V_SK_WEIGHT, V_SQUARED = range(7)

# Dropout masks of the pass serving epoch e follow from splitmix64(seed ^ DROPOUT_KEY ^ e').
DROPOUT_KEY = np.uint64(0xD1B54A32D192ED03)


class Pack(tuple):
    """A kernel's tuple argument that holds a compiled-in value (an Optimizer) besides its
    arrays, such as run kernels' `optim`. Numba's dispatcher cannot fingerprint such a tuple
    in C, so it typed it in Python on every call (40-50 us of a call that may last a
    millisecond); its type is made once per kind of contents instead
    (fastbp._kernels._jit's typeof for Pack)."""

    __slots__ = ()


class CompiledIn:
    """A value a kernel compiles in (Codes, Optimizer, Shape): Numba sees its fields in the
    argument's type (fastbp._kernels._jit.CompiledInType), so a kernel is compiled for the
    values it runs and no other."""

    __slots__ = ("_type",)

    def fields(self):
        """The fields the type carries: {name: value}."""
        return {name: getattr(self, name) for name in self.__slots__}

    def type_name(self):
        return repr(self)

    @property
    def _numba_type_(self):  # read by Numba's dispatcher on every call: made once
        if self._type is None:
            from ._jit import compiled_in_type
            self._type = compiled_in_type(self)
        return self._type


class Codes(CompiledIn):
    """What an MLP kernel compiles in: the hidden activation, the output activation and the
    loss (codes above; activations None: read from the layout at run time), so a kernel is
    compiled for the activations and loss it runs, and no other."""

    __slots__ = ("hidden", "output", "loss")

    def __init__(self, hidden, output, loss):
        self.hidden = None if hidden is None else int(hidden)
        self.output = None if output is None else int(output)
        self.loss = int(loss)
        self._type = None

    @classmethod
    def of(cls, hidden, output, loss):
        """Codes from names ("relu", "softmax", "log_loss"). With the environment variable
        FASTBP_GENERIC_KERNELS=1 the activations are left out (None): the kernels then read
        them from the layout table at run time, one kernel for every activation (a sweep over
        activations, or a test suite, compiles once instead of once per activation)."""
        generic = os.environ.get("FASTBP_GENERIC_KERNELS", "") not in ("", "0")
        key = (cls, hidden, output, loss, generic)
        if key not in _MADE:  # one value per key: its Numba type is made once (_numba_type_)
            _MADE[key] = cls(None, None, LOSSES[loss]) if generic else \
                cls(ACTIVATIONS[hidden], ACTIVATIONS[output], LOSSES[loss])
        return _MADE[key]

    def __repr__(self):
        return f"Codes(hidden={self.hidden}, output={self.output}, loss={self.loss})"


class Optimizer(CompiledIn):
    """The optimizer a run kernel compiles in (SGD, ADAM, RPROP or QUICKPROP), so a kernel
    compiles the update of the optimizer it runs and no other."""

    __slots__ = ("code",)

    def __init__(self, code):
        self.code = int(code)
        self._type = None

    @classmethod
    def of(cls, name):
        """The Optimizer of a name ("adam"); with FASTBP_GENERIC_KERNELS=1 (see Codes.of) its
        plain int code instead: every optimizer's update compiled in, chosen at run time."""
        if os.environ.get("FASTBP_GENERIC_KERNELS", "") not in ("", "0"):
            return OPTIMIZERS[name]
        if (cls, name) not in _MADE:
            _MADE[cls, name] = cls(OPTIMIZERS[name])
        return _MADE[cls, name]

    def __repr__(self):
        return f"Optimizer({self.code})"


_MADE = {}  # Codes.of's and Optimizer.of's values


class Shape(CompiledIn):
    """A network's layer table (fan_in, fan_out, w_off, b_off per layer) as the shaped case
    pass compiles it in."""

    __slots__ = ("layers",)

    def __init__(self, layout):
        self.layers = tuple((int(r[FAN_IN]), int(r[FAN_OUT]), int(r[W_OFF]), int(r[B_OFF]))
                            for r in np.asarray(layout))
        self._type = None

    def type_name(self):
        return f"Shape{self.layers}"

    def __repr__(self):
        return f"Shape({self.layers})"
