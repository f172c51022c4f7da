"""The codes and compiler flags every kernel shares: one fact, one place.

Kernels take plain arrays and integer codes, never Python objects. The Python layer
(`fastbp.network`, `fastbp.train`) translates names into these codes once.
"""

# Columns of the layout table: one row per weight layer, int64.
FAN_IN, FAN_OUT, W_OFF, B_OFF, ACT = 0, 1, 2, 3, 4
LAYOUT_COLUMNS = 5

# Activation codes (hidden layers: identity, logistic, tanh, relu; output: identity, logistic, softmax, exp).
IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP = 0, 1, 2, 3, 4, 5
ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU, "softmax": SOFTMAX, "exp": EXP}

# Loss codes.
SQUARED_ERROR, LOG_LOSS, POISSON = 0, 1, 2
LOSSES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS, "poisson": POISSON}

# Optimizer codes.
SGD, ADAM = 0, 1
OPTIMIZERS = {"sgd": SGD, "adam": ADAM}

# Slots of the float64 `hyper` array that carries an optimizer's scalars into a kernel.
# STEP (Adam's t) and LR_T (Adam's bias-corrected rate) are written by the kernels.
LR, MOMENTUM, NESTEROV, ALPHA, BETA_1, BETA_2, EPSILON, STEP, LR_T = range(9)
N_HYPER = 9

# Rows of the optimizer state array (2, n_params): SGD velocity / Adam first moment, Adam second moment.
N_STATE = 2

# fastmath without nnan/ninf, so NaN and inf checks keep working; reassoc lets reductions vectorise.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Options of every kernel. error_model="numpy" drops Python's ZeroDivisionError checks from hot loops;
# nogil lets several fits run at once in Python threads.
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
