"""Network: layer sizes -> layout table -> ONE contiguous params buffer, with views into it."""
import copy

import numpy as np

from . import _kernels as K
from ._model import (  # noqa: F401
    ACTIVATION_ALIASES,
    DTYPES,
    HIDDEN_ACTIVATIONS,
    INITS,
    LOSS_OUTPUTS,
    MAX_CHUNKS,
    MAX_SIZE,
    MIN_CHUNK_TUPLES,
    OUTPUT_ACTIVATIONS,
    Model,
    check_random_state,
    check_units,
    draw_seed,
    n_chunks_for,
    parallel_forward,
    parallel_gradient,
)
from ._threads import compute_threads
from ._validation import as_matrix, as_sample_weight, check_bool, check_choice, check_float, is_dask_array


def narrow_layers(layout):
    """Whether every layer is at most SMALL_LAYER units wide: where a matrix product's call
    costs more than its arithmetic, so passes go a tuple at a time."""
    return int(layout[:, K.FAN_IN:K.FAN_OUT + 1].max()) <= K.SMALL_LAYER  # (adjacent columns)


def by_tuples(layout, n):
    """True when gradient passes of n tuples go a tuple at a time (at most SMALL_PASS tuples,
    narrow_layers), None when they go a block at a time as matrix products (see
    gradient_pass in the kernels; Network._tuples makes the run kernels' (tuples, blocks)
    from it)."""
    return True if n <= K.SMALL_PASS and narrow_layers(layout) else None


def _aligned_empty(n, dtype, boundary=64):
    """np.empty(n, dtype) starting at a multiple of `boundary` bytes (malloc gives 16): the
    weight buffer and case updating's unit buffers, whose rows and layers then start on cache
    lines (codes.UNIT_ALIGN); where malloc put them set case updating's speed for a whole
    run (8-32-1: one run in three about 20% slower)."""
    buf = np.empty(n + boundary // np.dtype(dtype).itemsize, dtype)
    skip = (-buf.ctypes.data % boundary) // buf.itemsize
    return buf[skip:skip + n]


def _aligned_copy(values):
    """A copy of the 1-d array `values` in a buffer from _aligned_empty."""
    out = _aligned_empty(values.shape[0], values.dtype)
    out[:] = values
    return out


class Network(Model):
    """A multilayer feed-forward network whose weights and biases live in one buffer.

    Layer l (0-based) maps sizes[l] inputs to sizes[l+1] units. In `params` it owns its
    weight matrix W_l (fan_in x fan_out, row-major: w_ij at w_off + i*fan_out + j) followed by
    its bias vector theta_l. `coefs[l]` and `intercepts[l]` are views of those slices:
    writing them writes `params`.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, input first, e.g. ``[3, 2, 1]``.
    activation : {"identity", "logistic", "tanh", "relu"}
        Activation of the hidden units ("sigmoid" is accepted for "logistic").
    output_activation : {"identity", "logistic", "softmax", "exp"}
    loss : {"squared_error", "log_loss", "poisson"}
        squared_error is 1/2 sum_k (T_k - O_k)^2 per tuple; log_loss is the binary
        cross-entropy summed over logistic outputs, or the categorical one with softmax.
    dtype : float32 or float64
        The dtype of params and of every computation on them; inputs are converted once.
    init : {"uniform", "glorot"} or None
        "uniform": every weight and bias uniform in [-init_range, init_range] (the
        textbook's choice); "glorot": scikit-learn's rule, bound sqrt(6/(fan_in+fan_out)),
        sqrt(2/(fan_in+fan_out)) for logistic units; None: all zero, nothing drawn (for
        weights you set yourself; see also `Network.from_coefs`).
    random_state : None, int, numpy RandomState or Generator
        Seeds initialisation; `train` continues drawing shuffles from the same generator.
        None: numpy's global RandomState, as in scikit-learn (``np.random.seed`` seeds it).

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        Every weight and bias, the one buffer the kernels train.
    coefs : list of ndarray
        coefs[l] is layer l's (fan_in, fan_out) weight matrix, a view of `params`.
    intercepts : list of ndarray
        intercepts[l] is layer l's (fan_out,) bias vector, a view of `params`.
    layout : ndarray of int64
        One row per layer: fan_in, fan_out, the offsets of W and theta in params, and the
        layer's activation code.
    sizes, activation, output_activation, loss, dtype
        As given (checked, canonical spelling).
    random_state_ : RandomState or Generator
        The generator train() continues from (numpy's global RandomState for random_state=None,
        shared with np.random; a copy, a pickle or a saved file keeps a snapshot of its state).

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> net = fastbp.Network([3, 2, 1], random_state=0)
    >>> net.n_params, net.coefs[0].shape, net.intercepts[1].shape
    (11, (3, 2), (1,))
    >>> net.coefs[0][0, 0] = 0.25          # a view: writing it writes params
    >>> float(net.params[0])
    0.25
    >>> net.predict(np.zeros((2, 3))).shape
    (2, 1)
    """

    def __init__(self, sizes, activation="logistic", output_activation="logistic",
                 loss="squared_error", dtype=np.float64, random_state=None, *, init="uniform",
                 init_range=0.5, batch_norm=False, bn_momentum=0.1, bn_eps=1e-5):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or \
                (isinstance(sizes, np.ndarray) and sizes.ndim != 1):
            raise TypeError(f"sizes must be a sequence of layer sizes, got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output layer, got {list(sizes)}")
        check_units(self, sizes, activation, output_activation, loss, dtype)
        if init is not None:
            init = check_choice(init, "init", INITS)
        init_range = check_float(init_range, "init_range", minimum=0.0, maximum=1e300,
                                 strict_min=True)
        self.random_state_ = check_random_state(random_state)

        self.batch_norm = check_bool(batch_norm, "batch_norm")
        self.bn_momentum = check_float(bn_momentum, "bn_momentum", 0.0, 1.0)
        self.bn_eps = check_float(bn_eps, "bn_eps", minimum=0.0, strict_min=True)
        if self.batch_norm and len(self.sizes) < 3:
            raise ValueError("batch_norm needs a hidden layer; this network has none")
        self.layout = self._make_layout()
        last = self.layout[-1]
        n_weights = int(last[K.B_OFF] + last[K.FAN_OUT])
        self.bn_layout, n_bn = self._make_bn_layout(n_weights)
        self.params = _aligned_copy(np.zeros(n_weights + 2 * n_bn, dtype=self.dtype))
        # running mean then variance of each normalised layer's net inputs (for predict)
        self.bn_stats = np.zeros(2 * n_bn)
        self._make_views()
        self._reset_bn()
        if init is not None:
            self.initialize(init, init_range)

    @classmethod
    def from_coefs(cls, coefs, intercepts, activation="logistic", output_activation="logistic",
                   loss="squared_error", dtype=None, random_state=None):
        """A network holding copies of the given weight matrices and bias vectors, in one buffer.

        coefs[l] is (fan_in, fan_out) and intercepts[l] (fan_out,), as scikit-learn's MLP
        attributes of those names; dtype defaults to theirs.
        """
        coefs = [np.asarray(c) for c in coefs]
        intercepts = [np.asarray(b) for b in intercepts]
        if len(coefs) == 0 or len(coefs) != len(intercepts) or any(c.ndim != 2 for c in coefs):
            raise ValueError("coefs must be a non-empty list of 2-D arrays, one per intercepts entry")
        sizes = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        for l, (c, b) in enumerate(zip(coefs, intercepts)):
            if c.shape != (sizes[l], sizes[l + 1]) or b.shape != (sizes[l + 1],):
                raise ValueError(f"layer {l}: coefs {c.shape} and intercepts {b.shape} do not chain "
                                 f"into layer sizes {sizes}")
        net = cls(sizes, activation, output_activation, loss,
                  np.result_type(*coefs) if dtype is None else dtype, random_state, init=None)
        for l, (c, b) in enumerate(zip(coefs, intercepts)):
            net.coefs[l][:] = c
            net.intercepts[l][:] = b
        if not np.isfinite(net.params).all():
            raise ValueError("coefs and intercepts must be finite")
        return net

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["coefs"], state["intercepts"]  # views: rebuilt from params on load
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "batch_norm" not in state:  # pickled before batch normalisation existed
            self.batch_norm, self.bn_momentum, self.bn_eps = False, 0.1, 1e-5
            self.bn_layout = np.zeros((len(self.sizes) - 1, K.BN_COLUMNS), dtype=np.int64)
            self.bn_stats = np.zeros(0)
        self.params = _aligned_copy(self.params)
        self._make_views()

    # -- layout --------------------------------------------------------------------------------
    def _make_layout(self):
        n_layers = len(self.sizes) - 1
        layout = np.zeros((n_layers, K.LAYOUT_COLUMNS), dtype=np.int64)
        offset = 0
        for l in range(n_layers):
            fan_in, fan_out = self.sizes[l], self.sizes[l + 1]
            act = self.output_activation if l == n_layers - 1 else self.activation
            layout[l] = (fan_in, fan_out, offset, offset + fan_in * fan_out, K.ACTIVATIONS[act])
            offset += fan_in * fan_out + fan_out
        return layout

    def _make_bn_layout(self, n_weights):
        """The `bn` table of the kernels (BN_ON, gamma's and beta's offsets in params, the
        running statistics' offset in bn_stats), and the number of normalised units."""
        table = np.zeros((len(self.sizes) - 1, K.BN_COLUMNS), dtype=np.int64)
        if not self.batch_norm:
            return table, 0
        hidden = list(self.sizes[1:-1])
        n_bn = sum(hidden)
        g, stat = n_weights, 0
        for l, size in enumerate(hidden):
            table[l] = (1, g, g + n_bn, stat)
            g += size
            stat += 2 * size
        return table, n_bn

    def _reset_bn(self):
        """gamma 1, beta 0, running mean 0 and variance 1 (as PyTorch starts them)."""
        for l, (on, g, b, stat) in enumerate(self.bn_layout):
            if on:
                size = self.sizes[l + 1]
                self.params[g:g + size] = 1
                self.params[b:b + size] = 0
                self.bn_stats[stat:stat + size] = 0
                self.bn_stats[stat + size:stat + 2 * size] = 1

    def _make_views(self):
        self.coefs = [self.params[w:b].reshape(fi, fo) for fi, fo, w, b, _ in self.layout]
        self.intercepts = [self.params[b:b + fo] for _, fo, _, b, _ in self.layout]

    @property
    def n_layers(self):
        """Number of weight layers (len(sizes) - 1)."""
        return len(self.sizes) - 1


    def set_params(self, values):
        """Copy `values` (n_params numbers) into the buffer; views stay valid."""
        values = np.asarray(values)
        if values.shape != self.params.shape:
            raise ValueError(f"params must have shape {self.params.shape}, got {values.shape}")
        if values.dtype.kind not in "biuf" or not np.isfinite(values).all():
            raise ValueError("params must be finite real numbers")
        self.params[:] = values

    def initialize(self, init="uniform", init_range=0.5):
        """Draw fresh weights and biases from the network's generator, layer by layer (coefs, then intercepts)."""
        rng = self.random_state_
        for l, (fan_in, fan_out, _, _, _) in enumerate(self.layout):
            if init == "glorot":
                factor = 2.0 if self.activation == "logistic" else 6.0
                bound = np.sqrt(factor / (fan_in + fan_out))
            else:
                bound = init_range
            self.coefs[l][:] = rng.uniform(-bound, bound, (fan_in, fan_out))
            self.intercepts[l][:] = rng.uniform(-bound, bound, fan_out)

    def copy(self):
        """An independent network with the same architecture, weights and generator state."""
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        new.params = _aligned_copy(self.params)
        new.layout = self.layout.copy()
        new.random_state_ = copy.deepcopy(self.random_state_)
        new.bn_stats = self.bn_stats.copy()
        new._make_views()
        return new


    # -- training: the kernels a run of this network calls (see Model) -------------------------
    def check_training(self, mode, dropout, bptt_steps, clip_norm):
        if bptt_steps is not None or clip_norm is not None:
            raise ValueError("bptt_steps and clip_norm apply to recurrent networks (fastbp.RNN)")
        if self.batch_norm and mode == "case":
            raise ValueError("batch_norm normalises over a batch: it needs mode='minibatch' "
                             "or 'epoch', got mode='case'")
        if self.batch_norm and dropout is not None:
            raise ValueError("dropout with batch_norm is not supported")

    def training_kernel(self, run):
        trainer, n, dt, n_params = run.trainer, run.n, self.dtype, self.n_params
        track_end, val = run.rules.track_end, run.validation
        if is_dask_array(run.X):  # epoch updating, its passes on a Dask cluster
            from .dask_arrays import DaskEpochs
            kernel = DaskEpochs(run)
            run.grad, run.evaluation = kernel.grad, None
            return kernel, (), False
        if self.batch_norm:
            run.batch_size = n if trainer.mode == "epoch" else min(trainer.batch_size, n)
            return K.run_batch_norm, (np.empty(n_params, dt),), False
        units = K.units_length(self.sizes)
        eval_chunks = n_chunks_for(n) if track_end else 1
        # track="end" evaluates after each epoch: unit buffers and sums per chunk (None: the
        # kernel compiles no evaluation)
        run.evaluation = (np.zeros((eval_chunks, units), dt), np.empty((eval_chunks, 3))) \
            if track_end else None
        if trainer.mode == "case":
            # zeros: activations and derivatives run over each layer's padding too, where
            # leftover bits could be denormal numbers, slow on every vector operation
            # act has room past the units for the output layer's weights turned (see
            # K.turned_room and passes.turned_output)
            work = (_aligned_copy(np.zeros(units + K.turned_room(self.sizes), dt)),
                    _aligned_copy(np.zeros(units, dt)))
            # the passes after each epoch run on threads only when they are large
            parallel = (track_end and parallel_forward(n, n_params)) or \
                (val is not None and parallel_forward(val.X.shape[0], n_params))
            return (K.run_case_parallel if parallel else K.run_case), work, parallel
        if trainer.mode == "minibatch":
            run.batch_size = min(trainer.batch_size, n)  # also keeps it within int64
            chunks = n_chunks_for(run.batch_size)
        else:
            chunks = n_chunks_for(n)
        largest = max(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        work = (np.empty((chunks, n_params), dt), np.empty(n_params, dt),
                np.zeros((chunks, 2 * K.BLOCK * units + largest), dt), np.empty((chunks, 3)))
        run.grad = work[1]
        pass_tuples = run.batch_size if trainer.mode == "minibatch" else n
        run.blas = by_tuples(self.layout, pass_tuples) is None
        parallel = parallel_gradient(pass_tuples, n, n_params, run.rules.epochs) or \
            (track_end and parallel_forward(n, n_params)) or \
            (val is not None and parallel_forward(val.X.shape[0], n_params))
        if trainer.mode == "minibatch":
            return (K.run_minibatch_parallel if parallel else K.run_minibatch), work, parallel
        return (K.run_full_batch_parallel if parallel else K.run_full_batch), work, parallel

    def validation_arguments(self, val):
        if self.batch_norm:
            return (val.X, val.Y)
        n_out = self.n_outputs
        Y_score = val.Y_score if val.Y_score is not None else np.empty((0, n_out))
        weights = val.weights if val.weights is not None else np.empty(0)
        r2_denominator = np.empty(0)
        if val.score == K.SCORE_R2:  # as scikit-learn's r2_score: the targets' weighted spread
            w = np.ones(Y_score.shape[0]) if val.weights is None else val.weights
            mean = np.average(Y_score, axis=0, weights=w)
            r2_denominator = (w[:, None] * (Y_score - mean) ** 2).sum(axis=0, dtype=np.float64)
        chunks = n_chunks_for(val.X.shape[0])
        return (val.X, val.Y, np.ascontiguousarray(Y_score, dtype=np.float64),
                np.ascontiguousarray(weights, dtype=np.float64), r2_denominator,
                np.zeros((chunks, K.units_length(self.sizes)), self.dtype),
                np.empty((chunks + 1, K.V_SQUARED + n_out)))

    def training_arguments(self, run, optim, state):
        trainer, val = run.trainer, run.val_arguments
        if is_dask_array(run.X):  # fastbp.dask_arrays.DaskEpochs
            return optim, state, val
        if self.batch_norm:
            bn_off = int(self.layout[-1, K.B_OFF] + self.layout[-1, K.FAN_OUT])
            norm = (self.bn_layout, self.bn_stats, self.bn_momentum, self.bn_eps, bn_off,
                    np.empty((0, self.n_outputs), self.dtype))
            return (self.params, run.layout, run.X, run.Y, run.weights, K.LOSSES[self.loss],
                    run.batch_size, norm, optim, state) + run.scratch + (val,)
        # Features that are off are passed as None: the kernel compiles without them.
        dropout = True if trainer.dropout is not None else None
        head = (self.params, run.layout, run.X, run.Y, run.weights, self.codes)
        if trainer.mode == "minibatch":
            return head + (run.batch_size, optim, state, run.scratch, val, run.evaluation,
                           dropout) + self._tuples(run.batch_size, dropout)
        if trainer.mode == "case":  # small networks without dropout: case_pass_small
            general = None if trainer.optimizer == "sgd" and trainer.hyper[K.MOMENTUM] == 0.0 \
                else True
            small = self.n_params <= K.SMALL_NETWORK and dropout is None
            if small and general is None and trainer.hyper[K.ALPHA] == 0.0 and self._shaped():
                small = K.Shape(self.layout)  # a pass compiled for this shape (shaped.py)
            return head + (optim, state, run.scratch, val, run.evaluation, general, dropout) + \
                ((small, None) if small else (None, True))
        return head + (optim, state, run.scratch, val, dropout) + self._tuples(run.n, dropout)

    def _tuples(self, n, dropout):
        """The run kernels' (tuples, blocks), one of them None: passes of n tuples go tuple by
        tuple (tuples True, or a Shape where the pass is compiled for this network's shape;
        see by_tuples) or a block at a time (blocks True). Numba prunes only a branch on an
        argument that is None, so the kernel compiles the one pass it runs."""
        if by_tuples(self.layout, n) is None:
            return None, True
        return (K.Shape(self.layout) if dropout is None and self._shaped() else True), None

    def _shaped(self):
        """Whether case updating (plain SGD without L2), short gradient passes and predict a
        tuple at a time run passes compiled for this network's shape (fastbp._kernels.shaped):
        narrow layers (see SHAPED_LAYER) and activations compiled in (not
        FASTBP_GENERIC_KERNELS)."""
        return (len(self.sizes) - 1 <= K.SHAPED_LAYERS and max(self.sizes) <= K.SHAPED_LAYER
                and self.codes.hidden is not None)

    # -- data ----------------------------------------------------------------------------------
    def check_X(self, X, name="X"):
        return as_matrix(X, name, self.dtype, n_columns=self.n_inputs, columns="features")

    def _class_labels_as_one_hot(self, Y):
        """A softmax network takes class labels 0..n_outputs-1 as its targets, as PyTorch's
        cross-entropy does: a 1-D array of whole numbers becomes their one-hot rows."""
        if self.output_activation != "softmax":
            return Y
        try:
            labels = np.asarray(Y)
        except (ValueError, TypeError):
            return Y  # as_matrix says what is wrong
        if labels.ndim != 1 or labels.dtype.kind not in "biuf" or labels.size == 0:
            return Y
        if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
            raise ValueError("Y: a 1-D Y for a softmax network must hold class labels "
                             f"0..{self.n_outputs - 1} (whole numbers); for other targets pass "
                             f"(n_samples, {self.n_outputs}) rows, e.g. fastbp.datasets.one_hot(y)")
        if labels.min() < 0 or labels.max() >= self.n_outputs:
            raise ValueError(f"Y: class labels must lie in 0..{self.n_outputs - 1} for this network's "
                             f"{self.n_outputs} softmax outputs, got {labels.min()}..{labels.max()}")
        rows = np.zeros((labels.size, self.n_outputs), dtype=self.dtype)
        rows[np.arange(labels.size), labels.astype(np.int64)] = 1
        return rows

    def check_XY(self, X, Y):
        """X and targets Y converted once to the network's dtype and checked against each other."""
        X = self.check_X(X)
        Y = self._class_labels_as_one_hot(Y)
        Y = as_matrix(Y, "Y", self.dtype, n_columns=self.n_outputs, allow_1d=self.n_outputs == 1,
                      columns="outputs")
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X and Y have different numbers of rows: {X.shape[0]} and {Y.shape[0]}")
        self.check_target_range(Y)
        return X, Y

    @property
    def codes(self):
        """The activations and loss the MLP kernels compile in (fastbp._kernels.codes.Codes)."""
        return K.Codes.of(self.activation, self.output_activation, self.loss)

    # -- computation ---------------------------------------------------------------------------
    def predict(self, X, n_jobs=None):
        """Output activations for each row of X: shape (n_samples, n_outputs), the network's
        dtype. n_jobs: Numba threads for a large X (rows x weights at least
        fastbp._model.PARALLEL_FORWARD_WORK; as in train(), None keeps the count).

        On a Dask array: a Dask array of the outputs, computed block by block where the
        blocks live, with the weights as they are at this call (fastbp.dask_arrays)."""
        if is_dask_array(X):
            from .dask_arrays import predict
            return predict(self, X)
        X = self.check_X(X)
        result = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        n_chunks = n_chunks_for(X.shape[0]) if parallel_forward(X.shape[0], self.n_params) else 1
        with compute_threads(n_jobs, parallel=self.batch_norm or n_chunks > 1):
            if self.batch_norm:  # inference mode: the running statistics
                K.bn_evaluate(self.params, self.layout, self.bn_layout, self.bn_stats, X,
                              np.empty((0, self.n_outputs), self.dtype), np.empty(0, self.dtype),
                              K.LOSSES[self.loss], self.bn_eps, result)
            else:
                (K.predict if n_chunks > 1 else K.predict_serial)(
                    self.params, self.layout, X, result, n_chunks, self.codes, *self._predict_path())
        return result

    def _predict_path(self):
        """predict's kernels' (tuples, blocks): a tuple at a time for networks of narrow layers
        (narrow_layers: where case updating and short passes run), else blocks of tuples as
        matrix products, which minibatch and epoch updating have compiled: the drop-in's
        first fit and score on digits compiled 1.5-1.8 s less. A tuple at a time, networks of
        a few units a layer (_shaped) run a forward pass compiled for their shape: the first
        XOR program's predict compiled 0.9 s less than with the generic forward."""
        if not narrow_layers(self.layout):
            return None, True
        return (K.Shape(self.layout) if self._shaped() else True), None

    def evaluate(self, X, Y, sample_weight=None):
        if any(is_dask_array(a) for a in (X, Y, sample_weight)):
            from .dask_arrays import evaluate  # each block's sums where it lives
            return evaluate(self, X, Y, sample_weight)
        return super().evaluate(X, Y, sample_weight)

    evaluate.__doc__ = Model.evaluate.__doc__ + """
        On Dask arrays, each block's sums are computed where the block lives and added in
        block order (fastbp.dask_arrays)."""

    def trained_arrays(self):
        return (self.params, self.bn_stats) if self.batch_norm else (self.params,)

    def _parallel_forward(self, X):
        return self.batch_norm or parallel_forward(X.shape[0], self.n_params)

    def _evaluate_sums(self, X, Y, weights):
        """(sum w E, sum w, n_correct) at the current weights, on checked input (batch
        normalisation in inference mode)."""
        if self.batch_norm:
            return K.bn_evaluate(self.params, self.layout, self.bn_layout, self.bn_stats, X, Y,
                                 weights, K.LOSSES[self.loss], self.bn_eps,
                                 np.empty((0, self.n_outputs), self.dtype))
        parallel = parallel_forward(X.shape[0], self.n_params)
        return (K.evaluate if parallel else K.evaluate_serial)(
            self.params, self.layout, X, Y, weights, self.codes, n_chunks_for(X.shape[0]))

    def loss_gradient(self, X, Y, alpha=0.0, sample_weight=None):
        """(loss, grad): loss = sum_t w_t E_t / S + alpha/(2S) * sum of squared weights, with
        S = sum_t w_t (w_t = 1 without sample_weight: the mean loss); grad its gradient, a new
        flat array in the params layout (biases are not penalised). This is the objective
        scikit-learn's MLP minimises over a batch.
        """
        alpha = check_float(alpha, "alpha", minimum=0.0)
        if any(is_dask_array(a) for a in (X, Y, sample_weight)):  # the blocks where they live
            from .dask_arrays import check_training_data
            return self._loss_gradient(*check_training_data(self, X, Y, sample_weight), alpha)
        X, Y = self.check_XY(X, Y)
        weights = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        return self._loss_gradient(X, Y, weights, alpha)

    def _loss_gradient(self, X, Y, weights, alpha):
        """loss_gradient on inputs already checked and converted (an L-BFGS run calls it
        often); on Dask arrays (fastbp.dask_arrays; weights None or Dask), each block's
        gradient where it lives, summed as a local pass sums its chunks."""
        n = X.shape[0]
        grad = np.empty(self.n_params, dtype=self.dtype)
        if is_dask_array(X):
            from .dask_arrays import BlockData
            loss_sum, weight_sum, _ = BlockData(self, X, Y, weights,
                                                by_tuples(self.layout, n)).gradient(self.params, grad)
            return self._with_penalty(loss_sum, weight_sum, grad, alpha)
        rows = np.empty((n_chunks_for(n), self.n_params), dtype=self.dtype)
        order = np.arange(n, dtype=np.int64)
        with compute_threads():
            if self.batch_norm:  # all of X as one batch, as epoch updating sees it
                loss_sum, weight_sum, _ = K.bn_loss_gradient(
                    self.params, self.layout, self.bn_layout, self.bn_stats, X, Y, weights,
                    K.LOSSES[self.loss], grad, self.bn_eps)
            else:
                loss_sum, weight_sum, _ = K.batch_gradient(self.params, self.layout, X, Y, weights,
                                                           order, 0, n, self.codes, rows, grad,
                                                           None, by_tuples(self.layout, n))
        return self._with_penalty(loss_sum, weight_sum, grad, alpha)

    def _with_penalty(self, loss_sum, weight_sum, grad, alpha):
        """(loss, grad) of loss_gradient from a pass's sums and summed gradient."""
        loss = loss_sum / weight_sum
        if alpha:
            for (_, _, w, b, _) in self.layout:
                grad[w:b] += self.dtype.type(alpha) * self.params[w:b]
            loss += 0.5 * alpha * K.squared_weights(self.params, self.layout) / weight_sum
        grad /= self.dtype.type(weight_sum)
        return loss, grad
