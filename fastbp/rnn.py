"""RNN: simple recurrent (Elman) networks, trained by backpropagation through time.

    rnn = fastbp.RNN([n_in, n_hidden, n_out], activation="tanh")
    fastbp.train(rnn, X, Y, mode="case" | "epoch" | "minibatch", bptt_steps=..., clip_norm=...)

X holds sequences, shape (n_sequences, n_steps, n_in). Y is either one target per sequence,
(n_sequences, n_out) (or (n_sequences,) for one output), compared with the output at the
last step; or one per step, (n_sequences, n_steps, n_out) (or (n_sequences, n_steps) for
one output), each step's output against its own, the sequence's loss being the mean over
its steps. The network remembers which from the last training, and `predict` answers in
the same form.

At step t: h_t = f(x_t W_x + h_{t-1} W_h + b_h), with h_0 = 0, and o_t = g(h_t W_y + b_y).
Every weight and bias lives in ONE buffer, `params`: W_x, W_h, b_h, W_y, b_y in that order,
of which the attributes of those names are views.
"""
import copy

import numpy as np

from . import _kernels as K
from ._model import Model, check_random_state, check_units, n_chunks_for, parallel_forward
from ._threads import compute_threads
from ._validation import as_matrix, as_sample_weight, check_float, check_int

TARGETS = ("sequence", "step")


class RNN(Model):
    """An Elman network [n_in, n_hidden, n_out] whose weights and biases live in one buffer.

    Parameters
    ----------
    sizes : [n_in, n_hidden, n_out]
    activation : {"tanh", "logistic", "relu", "identity"} of the hidden (recurrent) units
    output_activation, loss : as for Network (identity/logistic/softmax/exp; squared_error,
        log_loss, poisson), with the same pairing rules
    dtype : float32 or float64
    random_state : None, int, RandomState or Generator: the initial weights, and the
        shuffles of train() when it is given none
    init_range : every weight and bias is drawn uniform in [-r, r]; default 1/sqrt(n_hidden),
        PyTorch's nn.RNN rule

    Attributes
    ----------
    params : ndarray
        Every weight and bias in one buffer: W_x, W_h, b_h, W_y, b_y in that order, of which
        the attributes of those names are views.
    targets_ : {None, "sequence", "step"}
        What the last training's targets were: predict answers in the same form.

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> rnn = fastbp.RNN([2, 4, 1], random_state=0)
    >>> X = np.random.default_rng(0).normal(size=(16, 5, 2))   # 16 sequences of 5 steps
    >>> history = fastbp.train(rnn, X, X[:, :, 0].sum(axis=1), epochs=3, learning_rate=0.01)
    >>> rnn.predict(X).shape, rnn.targets_
    ((16, 1), 'sequence')
    """

    def __init__(self, sizes, activation="tanh", output_activation="identity",
                 loss="squared_error", dtype=np.float64, random_state=None, *, init_range=None):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or \
                (isinstance(sizes, np.ndarray) and sizes.ndim != 1):
            raise TypeError(f"sizes must be [n_in, n_hidden, n_out], got {sizes!r}")
        if len(sizes) != 3:
            raise ValueError(f"sizes must be [n_in, n_hidden, n_out] (3 numbers), got {list(sizes)}")
        check_units(self, sizes, activation, output_activation, loss, dtype)
        n_in, nh, no = self.sizes
        if init_range is None:
            init_range = 1.0 / np.sqrt(nh)
        init_range = check_float(init_range, "init_range", minimum=0.0, maximum=1e300, strict_min=True)
        self.random_state_ = check_random_state(random_state)
        self.targets_ = None  # "sequence" or "step", from the last training
        offsets = np.cumsum([0, n_in * nh, nh * nh, nh, nh * no, no])
        self.layout = np.array([n_in, nh, no, offsets[0], offsets[1], offsets[2], offsets[3],
                                offsets[4], K.ACTIVATIONS[self.activation],
                                K.ACTIVATIONS[self.output_activation]], dtype=np.int64)
        self.params = self.random_state_.uniform(-init_range, init_range, int(offsets[5])).astype(self.dtype)
        self._make_views()

    def _make_views(self):
        n_in, nh, no = self.sizes
        wx, wh, bh, wy, by = (int(self.layout[k]) for k in (K.R_WX, K.R_WH, K.R_BH, K.R_WY, K.R_BY))
        p = self.params
        self.W_x = p[wx:wh].reshape(n_in, nh)
        self.W_h = p[wh:bh].reshape(nh, nh)
        self.b_h = p[bh:wy]
        self.W_y = p[wy:by].reshape(nh, no)
        self.b_y = p[by:]

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("W_x", "W_h", "b_h", "W_y", "b_y"):
            del state[name]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._make_views()

    def copy(self):
        """An independent network: weights, generator state and remembered target kind."""
        return copy.deepcopy(self)


    # -- input --------------------------------------------------------------------------------
    def check_X(self, X, name="X"):
        """X as a C-contiguous (n_sequences, n_steps, n_in) array of the network's dtype."""
        if hasattr(X, "toarray") and hasattr(X, "nnz"):
            raise TypeError(f"{name} is a sparse matrix; an RNN takes a 3-D array of sequences")
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError):
            raise ValueError(f"{name} holds sequences of different lengths (ragged) or is not an "
                             f"array of numbers; pad the sequences to one length") from None
        if arr.dtype == object:
            raise ValueError(f"{name} holds sequences of different lengths (ragged) or objects; "
                             f"an RNN takes a 3-D array of numbers")
        if arr.ndim != 3:
            raise ValueError(f"{name} must be 3-D (n_sequences, n_steps, n_features), got "
                             f"{arr.ndim}-D with shape {arr.shape}")
        n, T, f = arr.shape
        if n == 0 or T == 0:
            raise ValueError(f"{name} is empty: shape {arr.shape}")
        if f != self.n_inputs:
            raise ValueError(f"{name} has {f} features per step, the network expects {self.n_inputs}")
        flat = as_matrix(arr.reshape(n * T, f), name, self.dtype)
        return flat.reshape(n, T, f)

    def _check_Y(self, Y, n, T):
        """Y as (n, n_out) per-sequence or (n, T, n_out) per-step targets; (Y, targets)."""
        try:
            arr = np.asarray(Y)
        except (ValueError, TypeError):
            raise ValueError("Y is ragged or not an array of numbers") from None
        no = self.n_outputs
        if arr.ndim >= 1 and arr.shape[0] != n:
            raise ValueError(f"X has {n} sequences but Y has {arr.shape[0]} rows")
        if arr.ndim == 1 and no == 1:
            kind, shape = "sequence", (n, 1)
        elif arr.ndim == 2 and arr.shape[1] == no:
            kind, shape = "sequence", (n, no)
        elif arr.ndim == 2 and no == 1 and arr.shape[1] == T:
            kind, shape = "step", (n, T, 1)
        elif arr.ndim == 3 and arr.shape[1:] == (T, no):
            kind, shape = "step", (n, T, no)
        else:
            raise ValueError(f"Y must be per sequence, ({n}, {no}), or per step, ({n}, {T}, {no}); "
                             f"got shape {arr.shape}")
        Y2 = as_matrix(arr.reshape(-1, no), "Y", self.dtype, n_columns=no, columns="outputs")
        self.check_target_range(Y2)
        return Y2.reshape(shape), kind

    def check_XY(self, X, Y):
        X = self.check_X(X)
        Y, kind = self._check_Y(Y, X.shape[0], X.shape[1])
        return X, Y

    def targets_of(self, Y):
        return "step" if np.ndim(Y) == 3 else "sequence"

    # -- training: the kernels a run of this network calls (see Model) -------------------------
    def check_training(self, mode, dropout, bptt_steps, clip_norm):
        if dropout is not None:
            raise ValueError("dropout: not supported for fastbp.RNN (feed-forward Networks only)")

    def note_targets(self, Y):
        self.targets_ = self.targets_of(Y)

    def training_kernel(self, run):
        trainer, n = run.trainer, run.n
        batch = 0 if trainer.mode == "case" else n if trainer.mode == "epoch" \
            else min(trainer.batch_size, n)
        work = (np.empty((n_chunks_for(max(batch, 1)), self.n_params), self.dtype),
                np.empty(self.n_params, self.dtype))
        run.batch_size = None if batch == 0 else batch  # None: no batch code compiled
        # the evaluations after each epoch run on threads only when they are large (as
        # Network's); a batch's gradient runs on threads whenever it has several chunks
        val, T = run.validation, run.X.shape[1]
        parallel = (run.rules.track_end and parallel_forward(n, self.n_params, T)) or \
            (val is not None and parallel_forward(val.X.shape[0], self.n_params, val.X.shape[1]))
        kernel = K.run_rnn_parallel if parallel else K.run_rnn
        return kernel, work, parallel or work[0].shape[0] > 1

    def validation_arguments(self, val):
        n, T, f = val.X.shape
        return (val.X.reshape(n * T, f), val.Y.reshape(-1, self.n_outputs), np.int64(T),
                val.Y.ndim == 3, n_chunks_for(n))

    def training_arguments(self, run, optim, state):
        trainer = run.trainer
        X2, Y2, T, per_step = self._flat(run.X, run.Y)
        shape = (T, per_step, np.int64(trainer.bptt), trainer.max_norm)
        evaluation = n_chunks_for(run.n) if run.rules.track_end else None
        return (self.params, self.layout, X2, Y2, run.weights, shape, K.LOSSES[self.loss],
                run.batch_size, optim, state) + run.scratch + (run.val_arguments, evaluation)

    # -- use ----------------------------------------------------------------------------------
    def predict(self, X, n_jobs=None):
        """Outputs: at the last step, (n_sequences, n_out), or at every step, (n_sequences,
        n_steps, n_out), as the network was trained (per sequence before any training)."""
        X = self.check_X(X)
        n, T, f = X.shape
        per_step = self.targets_ == "step"
        result = np.empty((n * T if per_step else n, self.n_outputs), dtype=self.dtype)
        parallel = parallel_forward(n, self.n_params, T)  # threads only for a large X
        with compute_threads(n_jobs, parallel=parallel):
            (K.rnn_predict if parallel else K.rnn_predict_serial)(
                self.params, self.layout, X.reshape(n * T, f), np.int64(T), per_step, result,
                n_chunks_for(n))
        return result.reshape(n, T, self.n_outputs) if per_step else result

    def _parallel_forward(self, X):
        """Whether forward passes over the sequences X run on threads (parallel_forward)."""
        return parallel_forward(X.shape[0], self.n_params, X.shape[1])

    def _flat(self, X, Y):
        n, T, f = X.shape
        return X.reshape(n * T, f), Y.reshape(-1, self.n_outputs), np.int64(T), Y.ndim == 3

    def _evaluate_sums(self, X, Y, weights):
        X2, Y2, T, per_step = self._flat(X, Y)
        kernel = K.rnn_evaluate if self._parallel_forward(X) else K.rnn_evaluate_serial
        return kernel(self.params, self.layout, X2, Y2, weights, T, per_step, K.LOSSES[self.loss],
                      n_chunks_for(X.shape[0]))

    def _squared_weights(self):
        return K.rnn_squared_weights(self.params, self.layout)

    def loss_gradient(self, X, Y, alpha=0.0, sample_weight=None, *, bptt_steps=None):
        """(loss, gradient) of the mean loss over the sequences (+ alpha/2 ||W||^2 / n), as
        epoch updating follows it; the gradient in the params layout."""
        X, Y = self.check_XY(X, Y)
        alpha = check_float(alpha, "alpha", minimum=0.0)
        bptt = 0 if bptt_steps is None else check_int(bptt_steps, "bptt_steps", minimum=1)
        weights = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        X2, Y2, T, per_step = self._flat(X, Y)
        n = X.shape[0]
        rows = np.empty((n_chunks_for(n), self.n_params), dtype=self.dtype)
        grad = np.empty(self.n_params, dtype=self.dtype)
        loss_sum, weight_sum, _ = K.rnn_gradient(self.params, self.layout, X2, Y2, weights,
                                                 np.arange(n, dtype=np.int64), 0, n, T, per_step,
                                                 np.int64(bptt), K.LOSSES[self.loss], rows, grad)
        grad = grad / weight_sum
        loss = loss_sum / weight_sum + 0.5 * alpha * self._squared_weights() / weight_sum
        if alpha:  # the weight blocks, W_x and W_h, then W_y (their offsets are in the layout)
            for start, stop in ((K.R_WX, K.R_BH), (K.R_WY, K.R_BY)):
                block = slice(self.layout[start], self.layout[stop])
                grad[block] += alpha * self.params[block] / weight_sum
        return loss, grad
