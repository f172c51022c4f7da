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


def refuse_unknown_sizes(arr, name):
    """ValueError for a Dask array whose row blocks have unknown lengths."""
    if any(np.isnan(c) for c in arr.chunks[0]):
        raise ValueError(f"{name} has row blocks of unknown length (a Dask DataFrame's values, "
                         f"say): call {name}.compute_chunk_sizes(), or to_dask_array(lengths=True)")


def refuse_model(net):
    """ValueError for what has no kernel for Dask arrays: batch normalisation."""
    if getattr(net, "batch_norm", False):
        raise ValueError("batch_norm is not supported on Dask arrays (it normalises over the "
                         "whole batch at once); pass numpy arrays")


def row_blocks(arr, rows):
    """A checked arr (Dask, or numpy of as many rows) as a Dask array with these row blocks
    and one block of columns. A numpy array is persisted: with a Dask cluster it goes to the
    workers once, not again with every pass."""
    import dask.array as da
    columns = tuple((s,) for s in arr.shape[1:])
    if not is_dask_array(arr):
        return da.from_array(arr, chunks=(rows,) + columns).persist()
    return arr.rechunk((rows,) + columns)


def as_checkable(arr, name):
    """A Dask array as it is (its row lengths known), anything else as a numpy array."""
    if is_dask_array(arr):
        refuse_unknown_sizes(arr, name)
        return arr
    return np.asarray(arr)


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
    refuse_model(net)
    refuse_unknown_sizes(X, "X")
    X = _check_matrix(X, "X", net.n_inputs, "features")
    return X.astype(net.dtype).rechunk((X.chunks[0], (net.n_inputs,)))


def check_training_data(net, X, Y, sample_weight, check_values=True):
    """(X, Y, weights) for training or evaluating `net` on a Dask X: all three row-chunked as X
    is (Y and sample_weight may be numpy arrays: they are cut into X's blocks), in the
    network's dtype; weights None for "all weigh 1". Shapes and types are checked here, and
    with check_values the values too (finite, targets in the loss's range, weights >= 0 and
    not all 0), block by block where the blocks live: one pass over the data, before
    anything changes."""
    if not is_dask_array(X):
        raise TypeError("with a Dask Y or sample_weight, X must be a Dask array too (a numpy X "
                        "would go to the cluster with every pass); da.from_array(X) makes one")
    X = check_X(net, X)
    rows = X.chunks[0]
    Y = as_checkable(Y, "Y")
    if Y.ndim == 0 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X and Y have different numbers of rows: {X.shape[0]} and "
                         f"{Y.shape[0] if Y.ndim else 'none (a scalar)'}")
    if net.output_activation == "softmax" and Y.ndim == 1:  # class labels, as a local fit takes
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"Y must hold real numbers, got dtype {Y.dtype}")
        Y = row_blocks(Y, rows).map_blocks(_one_hot, net.n_outputs, net.dtype, new_axis=1,
                                           chunks=(rows, (net.n_outputs,)), dtype=net.dtype)
    Y = _check_matrix(Y, "Y", net.n_outputs, "outputs", allow_1d=net.n_outputs == 1)
    Y = row_blocks(Y, rows).astype(net.dtype)
    weights = None
    if sample_weight is not None:
        weights = as_checkable(sample_weight, "sample_weight")
        if weights.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight must hold real numbers, got dtype {weights.dtype}")
        if weights.ndim != 1 or weights.shape[0] != X.shape[0]:
            raise ValueError(f"sample_weight must have shape ({X.shape[0]},), got {weights.shape}")
        weights = row_blocks(weights, rows).astype(net.dtype)
    if check_values:
        BlockData(net, X, Y, weights).check()
    return X, Y, weights


def _one_hot(labels, n_outputs, dtype):
    """A block of class labels 0..n_outputs-1 (whole numbers) as one-hot rows."""
    if labels.size and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()
                            and labels.min() >= 0 and labels.max() < n_outputs):
        raise ValueError(f"Y: a 1-D Y for a softmax network must hold class labels "
                         f"0..{n_outputs - 1} (whole numbers)")
    out = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
    out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1
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
    """ValueError, as a local fit's checks name them, for values a block must not hold;
    returns the block's weight sum (its rows without weights)."""
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity" + (
            " (or values too large for float32)" if X.dtype == np.float32 else ""))
    if not np.isfinite(Y).all():
        raise ValueError("Y contains NaN or infinity")
    if Y.shape[0]:
        check_target_range(Y, spec.loss, spec.output_activation)
    if weights is None:
        return float(X.shape[0])
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (weights < 0).any():
        raise ValueError("sample_weight must be >= 0")
    return float(weights.sum(dtype=np.float64))


def _kernel_inputs(X, Y, weights, dtype):
    """A block's arrays as the kernels take them: C-contiguous; no weights: an empty array."""
    return (np.ascontiguousarray(X), np.ascontiguousarray(Y),
            np.empty(0, dtype) if weights is None else np.ascontiguousarray(weights))


def _sums(sums):
    return [(float(sums[0]), float(sums[1]), int(sums[2]))]


def block_gradient(params, spec, X, Y, weights):
    """One block's summed gradient row (the network's dtype) and its [(sum w E, sum w,
    n_correct)], by the chunk kernel of a local fit."""
    X, Y, weights = _kernel_inputs(X, Y, weights, params.dtype)
    n = X.shape[0]
    row = np.empty((1, params.shape[0]), dtype=params.dtype)
    grad = np.empty(params.shape[0], dtype=params.dtype)
    # BLAS on one thread, as in every local fit: a worker runs a task per thread, and a
    # multi-threaded BLAS under each oversubscribed the cores (`wide` on the loopback cluster
    # of scripts/dask_epoch.py: 1.95 s an epoch, 0.77 s with it pinned)
    with single_threaded_blas():
        sums = K.batch_gradient_serial(params, spec.layout, X, Y, weights,
                                       np.arange(n, dtype=np.int64), 0, n, spec.kernel_codes(),
                                       row, grad, None, spec.kernel_tuples())
    return grad, _sums(sums)


def block_sums(params, spec, X, Y, weights):
    """One block's values checked, and its [(sum w E, sum w, n_correct)] at these weights:
    forward passes only."""
    check_block(spec, X, Y, weights)
    X, Y, weights = _kernel_inputs(X, Y, weights, params.dtype)
    return _sums(K.evaluate_serial(params, spec.layout, X, Y, weights, spec.kernel_codes(), 1))


def predict_block(params, spec, n_outputs, by_blocks, X):
    """One block's outputs, by the kernel of a local predict (Network._predict_path: the
    spec's tuples, and by_blocks)."""
    X = np.ascontiguousarray(X)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    result = np.empty((X.shape[0], n_outputs), dtype=params.dtype)
    with single_threaded_blas():
        K.predict_serial(params, spec.layout, X, result, 1, spec.kernel_codes(),
                         spec.kernel_tuples(), by_blocks)
    return result


def add_in_tree(*parts):
    """Consecutive partial sums (row, [block sums]) added pairwise, as add_rows adds rows:
    1+2, 3+4, ..., then those pairwise. A node of the fixed tree: parts that are the sums of
    aligned runs of TREE_ARITY**k blocks (the last run may be short) give add_rows' bits."""
    rows, sums = [p[0] for p in parts], [s for p in parts for s in p[1]]
    while len(rows) > 1:
        rows = [rows[i] + rows[i + 1] if i + 1 < len(rows) else rows[i]
                for i in range(0, len(rows), 2)]
    return rows[0], sums


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
    """A fit's Dask data, cut into its row blocks (delayed), and what runs over all of them."""

    def __init__(self, net, X, Y, weights, tuples=None):
        self.spec = BlockSpec(net, tuples)
        xs, ys = _blocks(X), _blocks(Y)
        ws = _blocks(weights) if weights is not None else [None] * len(xs)
        self.blocks = list(zip(xs, ys, ws))

    def _each(self, task, *head):
        from dask import delayed
        return [delayed(task, pure=True)(*head, x, y, w) for x, y, w in self.blocks]

    def _at(self, task, params):
        """task(weights, spec, x, y, w) for every block, the weights one key of their own:
        sent to the workers once, shared by the blocks."""
        from dask import delayed
        return self._each(task, delayed(params.copy(), pure=True), self.spec)

    def check(self):
        """The values of every block checked where it lives (check_block)."""
        import dask
        if sum(dask.compute(*self._each(check_block, self.spec))) == 0.0:
            raise ValueError("sample_weight is 0 for every tuple")

    def gradient(self, params, grad):
        """grad = the summed gradient over every block at `params`, added in the fixed tree;
        returns (sum w E, sum w, n_correct) added in block order."""
        import dask
        total, sums = dask.compute(tree_sum(self._at(block_gradient, params)))[0]
        grad[:] = total
        return add_block_sums(sums)

    def sums(self, params):
        """(sum w E, sum w, n_correct) at `params`, the blocks' values checked on the way."""
        import dask
        return add_block_sums(sum(dask.compute(*self._at(block_sums, params)), []))


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
                    s, w, c = self.data.gradient(params, grad)
                    K.pend_given(params, layout, hyper, run_arrays, n, s, w, c)
                passed = K.update_given(params, layout, optim, run_arrays, grad, e, first)
                first = False
                s, w, c = self.data.gradient(params, grad)
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
    X = check_X(net, X)  # (values: each block's, as it is computed)
    tuples, by_blocks = net._predict_path()
    spec = BlockSpec(net, tuples)  # (a Shape travels as "shape", made again on the worker)
    weights = delayed(net.params.copy(), pure=True)
    blocks = [da.from_delayed(delayed(predict_block, pure=True)(weights, spec, net.n_outputs, by_blocks, x),
                              shape=(rows, net.n_outputs), dtype=net.dtype)
              for x, rows in zip(_blocks(X), X.chunks[0])]
    return da.concatenate(blocks, axis=0)


def evaluate(net, X, Y, sample_weight=None):
    """net.evaluate on Dask arrays: (mean loss, accuracy), each block's sums computed where it
    lives and added in block order."""
    X, Y, weights = check_training_data(net, X, Y, sample_weight, check_values=False)
    loss_sum, weight_sum, n_correct = BlockData(net, X, Y, weights).sums(net.params)
    if weight_sum == 0.0:
        raise ValueError("sample_weight is 0 for every tuple")
    return loss_sum / weight_sum, (n_correct / X.shape[0] if net.is_classifier else None)
