"""Dask arrays: epoch updating across a Dask cluster, and predict/evaluate block by block.

Epoch updating's gradient is a sum over the tuples, so it parallelises over machines as over
cores. On Dask arrays chunked by rows, every epoch of train(mode="epoch"):

1. sends the weights (n_params numbers) to the workers, once;
2. computes each row block's gradient where the block lives, with the compiled chunk kernel a
   local fit runs on a chunk (fastbp._kernels.batch_gradient_serial);
3. sums the blocks' gradients in a fixed pairwise tree (add_rows' tree: blocks 0+1, 2+3, ...,
   then those pairwise) on the workers, TREE_ARITY blocks' rows to a task, and brings one
   row of n_params numbers to the client;
4. makes one update on the client, with run_full_batch's own code (update_given, book_given):
   learning rate, optimizer, history, validation and every stop rule as in a local fit.

X and Y never travel to the client. A local fit cuts its data into fixed chunks
(fastbp._model.n_chunks_for); when the Dask array's row blocks are those chunks, the fit on the
cluster gives the local fit's weights bit for bit, on any number of workers. A worker lost
mid-epoch costs time, not correctness: Dask runs its tasks again, and they are deterministic.

Dask is imported only here, and only when a Dask array is given (`fastbp[dask]`).
"""
import time

import numpy as np

from . import _kernels as K
from ._model import check_target_range, n_chunks_for
from ._threads import single_threaded_blas
from ._validation import is_dask_array

__all__ = ["is_dask_array", "local_chunks", "check_training_data", "DaskEpochs", "predict",
           "evaluate"]


def local_chunks(n_samples):
    """The row blocks of a local fit's chunks over n_samples tuples: chunk a Dask array so,
    X.rechunk((local_chunks(n), -1)), and a fit on it gives the local fit's bits."""
    k = n_chunks_for(n_samples)
    return tuple(n_samples * (c + 1) // k - n_samples * c // k for c in range(k))


def _refuse_unknown_sizes(arr, name):
    if any(np.isnan(c) for c in arr.chunks[0]):
        raise ValueError(f"{name} has row blocks of unknown length (a Dask DataFrame's values, "
                         f"say): call {name}.compute_chunk_sizes(), or to_dask_array(lengths=True)")


def row_blocks(arr, name, rows):
    """arr (Dask or numpy) as a Dask array with these row blocks and one block of columns
    (a Dask X's rows: X.chunks[0])."""
    import dask.array as da
    if any(np.isnan(c) for c in rows):
        raise ValueError("X has row blocks of unknown length (a Dask DataFrame's values, say): "
                         "call X.compute_chunk_sizes(), or to_dask_array(lengths=True)")
    if not is_dask_array(arr):
        arr = np.asarray(arr)
        if arr.ndim == 0 or arr.shape[0] != sum(rows):
            return da.from_array(arr)  # (its shape is refused by name by the caller)
        return da.from_array(arr, chunks=(rows,) + tuple((s,) for s in arr.shape[1:]))
    _refuse_unknown_sizes(arr, name)
    if arr.ndim == 0 or arr.shape[0] != sum(rows):
        return arr
    return arr.rechunk((rows,) + tuple((s,) for s in arr.shape[1:]))


def _check_matrix(arr, name, n_columns, columns, allow_1d=False):
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1 and allow_1d:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_{columns}), got {arr.ndim}-D with "
                         f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 rows")
    if arr.shape[1] != n_columns:
        raise ValueError(f"{name} has {arr.shape[1]} {columns}, the network expects {n_columns}")
    return arr


def check_X(net, X):
    """A Dask X as the network takes it: 2-D, its inputs in one block of columns, its dtype
    (converted block by block, lazily)."""
    import dask.array as da
    if not is_dask_array(X):
        X = da.asarray(X)
    _refuse_unknown_sizes(X, "X")
    X = _check_matrix(X, "X", net.n_inputs, "features")
    return X.astype(net.dtype).rechunk((X.chunks[0], (net.n_inputs,)))


def check_training_data(net, X, Y, sample_weight):
    """(X, Y, weights) for training or evaluating `net` on Dask arrays: all three row-chunked as
    X is (Y and sample_weight may be numpy arrays: they are cut into X's blocks), in the
    network's dtype; weights None for "all weigh 1". Shapes and types are checked here;
    values (finite, targets in the loss's range, weights >= 0) by each block's first pass
    on its worker, before any weight changes."""
    X = check_X(net, X)
    rows = X.chunks[0]
    if not is_dask_array(Y):
        Y = np.asarray(Y)
    if Y.ndim == 0 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X and Y have different numbers of rows: {X.shape[0]} and "
                         f"{Y.shape[0] if Y.ndim else 'none (a scalar)'}")
    if net.output_activation == "softmax" and Y.ndim == 1:
        if Y.dtype.kind not in "biu":
            raise TypeError("Y: a 1-D Y for a softmax network must hold class labels "
                            f"0..{net.n_outputs - 1} as integers; got dtype {Y.dtype}")
        Y = row_blocks(Y, "Y", rows).map_blocks(_one_hot, net.n_outputs, net.dtype,
                                                new_axis=1, chunks=(rows, (net.n_outputs,)),
                                                dtype=net.dtype)
    Y = _check_matrix(Y, "Y", net.n_outputs, "outputs", allow_1d=net.n_outputs == 1)
    Y = row_blocks(Y, "Y", rows).astype(net.dtype)
    weights = None
    if sample_weight is not None:
        weights = sample_weight if is_dask_array(sample_weight) else np.asarray(sample_weight)
        if weights.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight must hold real numbers, got dtype {weights.dtype}")
        if weights.ndim != 1 or weights.shape[0] != X.shape[0]:
            raise ValueError(f"sample_weight must have shape ({X.shape[0]},), got {weights.shape}")
        weights = row_blocks(weights, "sample_weight", rows).astype(net.dtype)
    return X, Y, weights


def _one_hot(labels, n_outputs, dtype):
    if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
        raise ValueError(f"Y: class labels must lie in 0..{n_outputs - 1}")
    out = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


# -- what runs on a worker ---------------------------------------------------------------------

class BlockSpec:
    """What a worker needs to pass a block besides the weights: the layout, the codes the
    kernels compile in, the loss and output for the data checks, and the local fit's choice of
    pass (fastbp.network.by_tuples: None a block at a time, True or "shape" a tuple at a
    time). Small and picklable: the kernels' typed values are made on the worker."""

    def __init__(self, net, tuples):
        codes = net.codes
        self.layout, self.codes = net.layout, (codes.hidden, codes.output, codes.loss)
        self.loss, self.output_activation = net.loss, net.output_activation
        self.tuples = "shape" if isinstance(tuples, K.Shape) else tuples

    def kernel_codes(self):
        return K.Codes(*self.codes)

    def kernel_tuples(self):
        return K.Shape(self.layout) if self.tuples == "shape" else self.tuples


def check_block(spec, X, Y, weights):
    """ValueError, as a local fit's checks name them, for values a block must not hold."""
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    if not np.isfinite(Y).all():
        raise ValueError("Y contains NaN or infinity")
    check_target_range(Y, spec.loss, spec.output_activation)
    if weights is not None:
        if not np.isfinite(weights).all():
            raise ValueError("sample_weight contains NaN or infinity")
        if (weights < 0).any():
            raise ValueError("sample_weight must be >= 0")


def block_gradient(params, spec, X, Y, weights, check):
    """One block's summed gradient row (the network's dtype) and its [(sum w E, sum w,
    n_correct)], by the chunk kernel of a local fit; `check`: check the block's values
    first (a fit's first pass)."""
    X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
    if weights is not None:
        weights = np.ascontiguousarray(weights)
    if check:
        check_block(spec, X, Y, weights)
    n = X.shape[0]
    row = np.empty((1, params.shape[0]), dtype=params.dtype)
    grad = np.empty(params.shape[0], dtype=params.dtype)
    # BLAS on one thread, as in every local fit: a worker runs a task per thread, and a
    # multi-threaded BLAS under each oversubscribed the cores (`wide` on the loopback cluster
    # of scripts/dask_epoch.py: 1.95 s an epoch, 0.77 s with it pinned)
    with single_threaded_blas():
        sums = K.batch_gradient_serial(params, spec.layout, X, Y,
                                       np.empty(0, params.dtype) if weights is None else weights,
                                       np.arange(n, dtype=np.int64), 0, n, spec.kernel_codes(),
                                       row, grad, None, spec.kernel_tuples())
    return grad, [(float(sums[0]), float(sums[1]), int(sums[2]))]


def add_in_tree(*parts):
    """Consecutive partial sums (row, [block sums]) added pairwise, as add_rows adds rows:
    1+2, 3+4, ..., then those pairwise. A node of the fixed tree: parts that are the sums of
    aligned runs of TREE_ARITY**k blocks (the last run may be short) give add_rows' bits."""
    rows, sums = [p[0] for p in parts], [s for p in parts for s in p[1]]
    while len(rows) > 1:
        rows = [rows[i] + rows[i + 1] if i + 1 < len(rows) else rows[i]
                for i in range(0, len(rows), 2)]
    return rows[0], sums


def block_sums(params, spec, X, Y, weights):
    """One block's [(sum w E, sum w, n_correct)] at these weights: forward passes only."""
    X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
    check_block(spec, X, Y, weights)
    sums = K.evaluate_serial(params, spec.layout, X, Y,
                             np.empty(0, params.dtype) if weights is None else
                             np.ascontiguousarray(weights), spec.kernel_codes(), 1)
    return [(float(sums[0]), float(sums[1]), int(sums[2]))]


def predict_block(params, spec, n_outputs, X):
    X = np.ascontiguousarray(X)
    result = np.empty((X.shape[0], n_outputs), dtype=params.dtype)
    K.predict_serial(params, spec.layout, X, result, 1, spec.kernel_codes())
    return result


# -- on the client -----------------------------------------------------------------------------

def _blocks(arr):
    """A row-chunked Dask array's blocks, in order, as Delayed objects."""
    return list(arr.to_delayed().ravel())


# Children per task of the tree: each Dask task costs about a millisecond of the scheduler's
# time, and 32 blocks took 31 tasks in pairs, 5 in eights (mid on the loopback cluster of
# scripts/dask_epoch.py: 0.14 -> 0.09 s an epoch). A power of 2, so that every task adds
# aligned runs of the pairwise tree.
TREE_ARITY = 8


def tree_sum(parts):
    """The delayed parts summed in add_rows' fixed pairwise tree, TREE_ARITY to a task."""
    from dask import delayed
    while len(parts) > 1:
        groups = [parts[i:i + TREE_ARITY] for i in range(0, len(parts), TREE_ARITY)]
        parts = [delayed(add_in_tree, pure=True)(*g) if len(g) > 1 else g[0] for g in groups]
    return parts[0]


def add_block_sums(sums):
    """(sum w E, sum w, n_correct) over the blocks, added in block order as the kernels add
    their chunks' (passes.add_sums)."""
    loss_sum, weight_sum, n_correct = 0.0, 0.0, 0.0
    for s, w, c in sums:
        loss_sum += s
        weight_sum += w
        n_correct += c
    return loss_sum, weight_sum, int(n_correct)


class BlockData:
    """A fit's Dask data, cut into its row blocks (delayed), with the pass of each epoch."""

    def __init__(self, net, X, Y, weights, tuples=None):
        self.spec = BlockSpec(net, tuples)
        self.n = X.shape[0]
        xs, ys = _blocks(X), _blocks(Y)
        ws = _blocks(weights) if weights is not None else [None] * len(xs)
        self.blocks = list(zip(xs, ys, ws))

    def gradient(self, params, grad, check=False):
        """grad = the summed gradient over every block at `params`, added in the fixed tree;
        returns (sum w E, sum w, n_correct) added in block order."""
        import dask
        from dask import delayed
        weights = delayed(params.copy(), pure=True)  # one key: sent once, shared by the blocks
        parts = [delayed(block_gradient, pure=True)(weights, self.spec, x, y, w, check)
                 for x, y, w in self.blocks]
        total, sums = dask.compute(tree_sum(parts))[0]
        grad[:] = total
        return add_block_sums(sums)

    def sums(self, params):
        import dask
        from dask import delayed
        weights = delayed(params.copy(), pure=True)
        parts = [delayed(block_sums, pure=True)(weights, self.spec, x, y, w)
                 for x, y, w in self.blocks]
        return add_block_sums(sum(dask.compute(*parts), []))


class DaskEpochs:
    """The run kernel of epoch updating on Dask arrays: a fastbp.driver.Run calls it as it
    calls a compiled one, with the same (optim, run arrays, validation) and the same contract
    (epochs from ctl[C_EPOCH] + 1 to ctl[C_END] at most, the slice ending on its time budget
    or a rule). The epoch loop runs here, in Python (one pass per epoch on the cluster); the
    update and the bookkeeping run in run_full_batch's compiled code.

    A KeyboardInterrupt inside an epoch takes the run back to the epoch's start, so that, as
    with the compiled kernels, every epoch is whole and booked."""

    def __init__(self, run):
        net = run.net
        self.run, self.net = run, net
        self.data = BlockData(net, run.X, run.Y, run.weights, net._tuples(run.n, None)[0])
        self.grad = np.empty(net.n_params, dtype=net.dtype)
        self.checked = False

    def arguments(self, optim, run_arrays):
        return (optim, run_arrays, self.run.val_arguments)

    def _pass(self, params):
        sums = self.data.gradient(params, self.grad, check=not self.checked)
        self.checked = True
        if sums[1] == 0.0:
            raise ValueError("sample_weight is 0 for every tuple")
        return sums

    def __call__(self, optim, run_arrays, val):
        net, n, grad = self.net, self.run.n, self.grad
        params, layout, codes, hyper = net.params, net.layout, net.codes, optim[1]
        ctl = run_arrays[0]
        first = True
        clock = start = time.monotonic_ns()  # CLOCK_MONOTONIC, the kernels' clock
        while ctl[K.C_EPOCH] < ctl[K.C_END]:
            e = int(ctl[K.C_EPOCH]) + 1
            before = self.run.snapshot()
            try:
                if ctl[K.C_PENDING] == 0:  # the gradient at the current weights
                    s, w, c = self._pass(params)
                    K.pend_given(params, layout, hyper, run_arrays, n, s, w, c)
                passed = K.update_given(params, layout, optim, run_arrays, grad, e, first)
                first = False
                s, w, c = self._pass(params)
                stop, clock = K.book_given(params, layout, codes, hyper, run_arrays, val, e, n,
                                           passed, s, w, c, clock, start)
            except BaseException:
                self.run.restore(before)  # the epoch never happened
                raise
            if stop:
                break


def predict(net, X):
    """net.predict on a Dask X: a Dask array of the outputs, computed block by block (lazily)
    with the weights as they are now."""
    import dask.array as da
    from dask import delayed
    X = check_X(net, X)
    spec = BlockSpec(net, None)
    weights = delayed(net.params.copy(), pure=True)
    blocks = [da.from_delayed(delayed(predict_block, pure=True)(weights, spec, net.n_outputs, x),
                              shape=(rows, net.n_outputs), dtype=net.dtype)
              for x, rows in zip(_blocks(X), X.chunks[0])]
    return da.concatenate(blocks, axis=0)


def evaluate(net, X, Y, sample_weight=None):
    """net.evaluate on Dask arrays: (mean loss, accuracy), each block's sums computed where it
    lives and added in block order."""
    X, Y, weights = check_training_data(net, X, Y, sample_weight)
    loss_sum, weight_sum, n_correct = BlockData(net, X, Y, weights).sums(net.params)
    if weight_sum == 0.0:
        raise ValueError("sample_weight is 0 for every tuple")
    return loss_sum / weight_sum, (n_correct / X.shape[0] if net.is_classifier else None)
