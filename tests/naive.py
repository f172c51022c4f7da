"""A slow, obviously correct backpropagation in plain numpy: the reference twin of fastbp.

Everything here works on one tuple at a time, in float64, on lists of per-layer weight
matrices ``Ws[l]`` (fan_in x fan_out) and bias vectors ``bs[l]`` (fan_out,), following
the textbook's steps (Han & Kamber, *Data Mining*, ch. 9, Figure 9.5). The only link to
fastbp is the flat parameter layout of the API contract (per layer: W row-major, then b),
used by ``split`` / ``join`` so results can be compared number for number.

Conventions: ``z`` is a unit's net input (theta_j + sum_i O_i w_ij), ``O`` its output,
``delta`` = dE/dz. The textbook's Err_j is -delta_j.
"""

import numpy as np

EPS = np.finfo(np.float64).eps

# -- activations, written from the unit's output where the textbook does -----------------


def activate(name, z):
    """O = f(z) for a whole layer."""
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max())
        return e / e.sum()
    raise ValueError(name)


def derivative(name, out):
    """f'(z) written from the output O = f(z) (element-wise activations only)."""
    if name == "identity":
        return np.ones_like(out)
    if name == "logistic":
        return out * (1.0 - out)  # the textbook's O_j (1 - O_j)
    if name == "tanh":
        return 1.0 - out**2
    if name == "relu":
        return (out > 0.0).astype(float)
    if name == "leaky_relu":
        return np.where(out > 0.0, 1.0, 0.01)
    if name == "elu":
        return np.where(out > 0.0, 1.0, out + 1.0)  # exp(z) = O + 1 where z <= 0
    if name == "softplus":
        return -np.expm1(-out)  # logistic(z) = 1 - exp(-O)
    if name == "exp":
        return out.copy()
    raise ValueError(name)


# -- the flat layout of the contract ------------------------------------------------------


def layout(sizes):
    """Per layer (fan_in, fan_out, w_off, b_off), the contract's offsets into params."""
    rows, off = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        rows.append((fan_in, fan_out, off, off + fan_in * fan_out))
        off += fan_in * fan_out + fan_out
    return rows


def n_params(sizes):
    return sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))


def split(params, sizes):
    """Flat params -> (Ws, bs): float64 copies, W row-major fan_in x fan_out, then b."""
    params = np.asarray(params, dtype=np.float64)
    assert params.shape == (n_params(sizes),)
    Ws, bs = [], []
    for fan_in, fan_out, w_off, b_off in layout(sizes):
        Ws.append(params[w_off:b_off].reshape(fan_in, fan_out).copy())
        bs.append(params[b_off : b_off + fan_out].copy())
    return Ws, bs


def join(Ws, bs):
    """(Ws, bs) -> flat float64 params in the contract's layout."""
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(Ws, bs)])


def weight_mask(sizes):
    """1.0 where params holds a weight, 0.0 where it holds a bias (alpha penalises weights only)."""
    mask = np.zeros(n_params(sizes))
    for _, _, w_off, b_off in layout(sizes):
        mask[w_off:b_off] = 1.0
    return mask


def init_params(sizes, init="uniform", init_range=0.5, activation="logistic", random_state=0):
    """The contract's initial draw: per layer coef (fan_in, fan_out) then intercept, float64."""
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    Ws, bs = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if init == "uniform":
            bound = init_range
        else:  # scikit-learn's _init_coef
            factor = 2.0 if activation == "logistic" else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
        Ws.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
        bs.append(rng.uniform(-bound, bound, fan_out))
    return join(Ws, bs)


# -- one tuple: forward, loss, backward ---------------------------------------------------


def preactivations(Ws, bs, x, activation, output_activation):
    """Net inputs z of every layer for one tuple (used to keep relu away from its kink)."""
    zs, out = [], np.asarray(x, dtype=np.float64)
    for l, (W, b) in enumerate(zip(Ws, bs)):
        z = b + out @ W
        zs.append(z)
        out = activate(output_activation if l == len(Ws) - 1 else activation, z)
    return zs


def forward(Ws, bs, x, activation, output_activation):
    """Outputs of every layer for one tuple, input first: [x, O_1, ..., O_L]."""
    outs = [np.asarray(x, dtype=np.float64)]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        # net input of unit j: I_j = theta_j + sum_i O_i w_ij
        z = b + outs[-1] @ W
        # output of unit j: O_j = f(I_j), the output layer with its own activation
        outs.append(activate(output_activation if l == len(Ws) - 1 else activation, z))
    return outs


def tuple_loss(out, target, loss, output_activation="logistic", eps=EPS):
    """Loss of one tuple; log_loss clips O to [eps, 1 - eps] as scikit-learn does."""
    out, target = np.asarray(out, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if loss == "squared_error":
        return 0.5 * np.sum((target - out) ** 2)
    if loss == "log_loss":
        o = np.clip(out, eps, 1.0 - eps)
        if output_activation == "softmax":
            return -np.sum(target * np.log(o))  # categorical cross-entropy
        # binary cross-entropy summed over logistic outputs
        return -np.sum(target * np.log(o) + (1.0 - target) * np.log(1.0 - o))
    if loss == "poisson":
        t_log_t_over_o = np.where(target > 0, target * np.log(np.where(target > 0, target, 1.0) / out), 0.0)
        return np.sum(t_log_t_over_o - target + out)
    raise ValueError(loss)


def output_delta(out, target, output_activation, loss):
    """dE/dz at the output layer (the textbook's -Err_j)."""
    if loss == "squared_error":
        dE_dO = out - target  # derivative of 1/2 (T - O)^2
        if output_activation == "softmax":
            # softmax Jacobian: dO_j/dz_k = O_j (delta_jk - O_k)
            return out * (dE_dO - np.dot(dE_dO, out))
        # Err_j = O_j (1 - O_j)(T_j - O_j) for a logistic unit
        return dE_dO * derivative(output_activation, out)
    if loss == "log_loss":
        assert output_activation in ("logistic", "softmax")
        return out - target  # cross-entropy cancels the logistic/softmax derivative
    if loss == "poisson":
        assert output_activation == "exp"
        return out - target  # d/dz (O - T log O) with O = exp(z)
    raise ValueError(loss)


def tuple_gradient(Ws, bs, x, target, activation, output_activation, loss):
    """Gradient of one tuple's loss: (dWs, dbs), by the textbook's backward pass."""
    outs = forward(Ws, bs, x, activation, output_activation)
    # error of the output layer
    deltas = [output_delta(outs[-1], np.asarray(target, dtype=np.float64), output_activation, loss)]
    # errors of the hidden layers, last to first, with the OLD weights:
    # Err_j = O_j (1 - O_j) sum_k Err_k w_jk
    for l in range(len(Ws) - 1, 0, -1):
        deltas.insert(0, (Ws[l] @ deltas[0]) * derivative(activation, outs[l]))
    # increments: dE/dw_ij = delta_j O_i ; dE/dtheta_j = delta_j
    dWs = [np.outer(outs[l], deltas[l]) for l in range(len(Ws))]
    dbs = [deltas[l].copy() for l in range(len(Ws))]
    return dWs, dbs


# -- flat-vector conveniences -------------------------------------------------------------


class Spec:
    """What a network is, without its numbers: sizes, activations, loss."""

    def __init__(self, sizes, activation="logistic", output_activation="logistic", loss="squared_error"):
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss

    @classmethod
    def of(cls, net):
        return cls(net.sizes, net.activation, net.output_activation, net.loss)


def predict(params, spec, X):
    Ws, bs = split(params, spec.sizes)
    return np.array([forward(Ws, bs, x, spec.activation, spec.output_activation)[-1] for x in X])


def flat_tuple_gradient(params, spec, x, target):
    Ws, bs = split(params, spec.sizes)
    dWs, dbs = tuple_gradient(Ws, bs, x, target, spec.activation, spec.output_activation, spec.loss)
    return join(dWs, dbs)


def mean_loss(params, spec, X, Y, alpha=0.0, eps=EPS):
    """The contract's loss: mean per-tuple loss + alpha/(2n) * sum of squared weights."""
    Ws, bs = split(params, spec.sizes)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    outputs = [forward(Ws, bs, x, spec.activation, spec.output_activation)[-1] for x in X]
    total = sum(tuple_loss(o, t, spec.loss, spec.output_activation, eps) for o, t in zip(outputs, Y))
    return total / len(X) + alpha / (2.0 * len(X)) * sum(np.sum(W**2) for W in Ws)


def mean_gradient(params, spec, X, Y, alpha=0.0):
    """Gradient of mean_loss: mean of the tuple gradients + alpha/n * w on weights."""
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    grad = sum(flat_tuple_gradient(params, spec, x, t) for x, t in zip(X, Y)) / len(X)
    return grad + alpha / len(X) * weight_mask(spec.sizes) * np.asarray(params, dtype=np.float64)


def accuracy(params, spec, X, Y):
    """The contract's accuracy rule (logistic: every output on the right side of 0.5; softmax: argmax)."""
    O = predict(params, spec, X)
    T = np.asarray(Y, dtype=np.float64).reshape(O.shape)
    if spec.output_activation == "softmax":
        return float(np.mean(O.argmax(axis=1) == T.argmax(axis=1)))
    return float(np.mean(np.all((O >= 0.5) == (T >= 0.5), axis=1)))


# -- test data ----------------------------------------------------------------------------


def targets_for(output_activation, loss, n, n_outputs, rng):
    """Targets a network with this output and loss can meet: one-hot, 0/1, counts or reals."""
    if output_activation == "softmax":
        return np.eye(n_outputs)[rng.randint(0, n_outputs, n)]
    if output_activation == "logistic":
        return rng.randint(0, 2, (n, n_outputs)).astype(np.float64)
    if output_activation == "exp":
        return rng.poisson(1.0, (n, n_outputs)).astype(np.float64)
    return rng.normal(size=(n, n_outputs))


# -- optimizers: the contract's update rules (scikit-learn's SGD and Adam) ----------------


class SGD:
    """w -= lr g ; with momentum v = m v - lr g, w += v ; Nesterov w += m v - lr g."""

    def __init__(self, n, momentum=0.0, nesterov=False):
        self.velocity = np.zeros(n)
        self.momentum, self.nesterov = momentum, nesterov

    def step(self, params, grad, lr):
        if self.momentum == 0.0:
            return params - lr * grad
        self.velocity = self.momentum * self.velocity - lr * grad
        if self.nesterov:
            return params + self.momentum * self.velocity - lr * grad
        return params + self.velocity


class Adam:
    """scikit-learn's Adam: bias correction folded into the step size."""

    def __init__(self, n, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.m, self.v, self.t = np.zeros(n), np.zeros(n), 0
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def step(self, params, grad, lr):
        self.t += 1
        self.m = self.beta_1 * self.m + (1.0 - self.beta_1) * grad
        self.v = self.beta_2 * self.v + (1.0 - self.beta_2) * grad**2
        lr_t = lr * np.sqrt(1.0 - self.beta_2**self.t) / (1.0 - self.beta_1**self.t)
        return params - lr_t * self.m / (np.sqrt(self.v) + self.epsilon)


# -- epochs ---------------------------------------------------------------------------------


def minibatch_epoch(params, spec, X, Y, order, lr, batch_size, alpha=0.0, optimizer=None):
    """One epoch: consecutive batches of ``order``, one update per batch with its mean gradient.

    ``optimizer`` (SGD or Adam) carries its state across calls; None means plain SGD.
    Returns the new params (float64).
    """
    params = np.asarray(params, dtype=np.float64).copy()
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    optimizer = optimizer if optimizer is not None else SGD(len(params))
    mask = weight_mask(spec.sizes)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        # accumulate the increments of the batch's tuples, all at the same (current) weights
        grad = sum(flat_tuple_gradient(params, spec, X[t], Y[t]) for t in batch) / len(batch)
        # L2 penalty on weights only, scaled by the batch size as scikit-learn does
        grad = grad + alpha * mask * params / len(batch)
        params = optimizer.step(params, grad, lr)
    return params


def case_epoch(params, spec, X, Y, order, lr, alpha=0.0, momentum=0.0, nesterov=False, optimizer=None):
    """Case updating: one update per tuple, in the given order (Han & Kamber's default)."""
    if optimizer is None:
        optimizer = SGD(len(params), momentum, nesterov)
    return minibatch_epoch(params, spec, X, Y, order, lr, 1, alpha, optimizer)


def epoch_update(params, spec, X, Y, lr, alpha=0.0, optimizer=None):
    """Epoch updating: one update per pass with the mean gradient over all tuples."""
    return minibatch_epoch(params, spec, X, Y, np.arange(len(X)), lr, len(X), alpha, optimizer)


def pass_loss(params, spec, X, Y, order, lr, batch_size=1):
    """One plain-SGD epoch in batches of ``order``: (mean of each tuple's loss at the weights
    it met as it was passed, the new params). batch_size 1 is case updating, n epoch updating."""
    params = np.asarray(params, dtype=np.float64).copy()
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    total = 0.0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        total += mean_loss(params, spec, X[batch], Y[batch]) * len(batch)
        params = minibatch_epoch(params, spec, X, Y, batch, lr, len(batch))
    return total / len(order), params


# -- the tuple order of an epoch -------------------------------------------------------------
# fastbp.train draws one number from the generator per call, the run's seed:
# rng.randint(0, 2**63, dtype=np.int64) (a RandomState) or rng.integers(0, 2**63) (a Generator).
# Epoch e's order is a Fisher-Yates shuffle of 0..n-1 whose draws come from splitmix64, keyed
# by (seed, e): here in plain Python integers, the twin of the kernels' hashed_order.
MASK64 = (1 << 64) - 1
GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def splitmix(x):
    """splitmix64's output for state x (x + golden ratio, then two xor-shift-multiplies)."""
    x = (x + GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * MIX1) & MASK64
    x = ((x ^ (x >> 27)) * MIX2) & MASK64
    return x ^ (x >> 31)


def run_seed(random_state):
    """The seed train(random_state=...) draws: one number of the generator (an int: a new
    RandomState of it, as scikit-learn's check_random_state)."""
    rng = np.random.RandomState(random_state) if isinstance(random_state, int) else random_state
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2 ** 63, dtype=np.int64))
    return int(rng.randint(0, 2 ** 63, dtype=np.int64))


def epoch_order(seed, epoch, n):
    """The permutation of 0..n-1 that train() uses in epoch `epoch` (1-based) of a run."""
    order = list(range(n))
    key = splitmix(seed ^ splitmix(epoch))
    for i in range(n - 1, 0, -1):
        r = splitmix((key + i) & MASK64)
        bound = i + 1
        j = ((r >> 32) * bound) >> 32 if bound <= 0xFFFFFFFF else r % bound
        order[i], order[j] = order[j], order[i]
    return np.array(order)
