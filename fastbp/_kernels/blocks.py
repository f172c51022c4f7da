"""The gradient of a block of tuples as matrix products (epoch and minibatch updating on
wide layers), and the per-chunk workspaces of the parallel passes.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import activate_block, correct_of, derivative_hidden, error_of, loss_of
from ._setup import INTERNAL, JIT
from .codes import *  # noqa: F401,F403  (compiled in as constants)
from .fastmath import larger, zero_array
from .steps import drop_out, dropping, undo_drop_out, weight_of


# -- matrix products --------------------------------------------------------------------------
@intrinsic
def gemm(typingctx, A, a_off, trans_a, B, b_off, trans_b, C, c_off, m, n, k):
    """C[c_off:] = op(A[a_off:]) op(B[b_off:]) for row-major matrices in flat, contiguous
    buffers of one dtype: op(A) m x k, op(B) k x n, C m x n; trans_a, trans_b: 0, or 1 for the
    transpose of the matrix stored there (stored k x m, n x k). BLAS's gemm, through the entry
    point np.dot calls for two matrices (Numba's numba_xxgemm), with the arguments np.dot gave
    it, but none of np.dot's code for other layouts and shapes, its views or its checks:
    blocks of tuples compiled 1 s faster on the digits drop-in program. Where m or n is 1 (a
    block of one tuple, a layer of one unit) np.dot called gemv or a dot product instead, so
    such results can differ from before in the last bits."""
    ok = all(isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" and
             t.dtype in (types.float32, types.float64)
             for t in (A, B, C)) and A.dtype == B.dtype == C.dtype and \
        all(isinstance(t, types.Integer) for t in (a_off, trans_a, b_off, trans_b, c_off, m, n, k))
    if not ok:
        return None
    from numba.np.linalg import ensure_blas, get_blas_kind, make_constant_slot
    ensure_blas()
    kind = get_blas_kind(A.dtype, "gemm")

    def codegen(context, builder, signature, args):
        a, a_off, ta, b, b_off, tb, c, c_off, m, n, k = args
        intp = cgutils.intp_t
        char, void_p = ir.IntType(8), ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, void_p,
                                                void_p, intp, void_p, intp, void_p, void_p, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        sig = signature.args

        def cast(value, ty):
            return context.cast(builder, value, ty, types.intp)

        def data(index, value, offset):
            arr = context.make_array(sig[index])(context, builder, value)
            return builder.bitcast(builder.gep(arr.data, [cast(offset, sig[index + 1])]), void_p)

        def transposed(value, ty):
            flag = builder.icmp_unsigned("!=", cast(value, ty), intp(0))
            return builder.select(flag, char(ord("t")), char(ord("n")))

        m, n, k = cast(m, sig[8]), cast(n, sig[9]), cast(k, sig[10])
        ta, tb = transposed(ta, sig[2]), transposed(tb, sig[5])
        # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B first
        ldb = builder.select(builder.icmp_unsigned("!=", tb, char(ord("n"))), k, n)
        lda = builder.select(builder.icmp_unsigned("!=", ta, char(ord("n"))), m, k)
        alpha = make_constant_slot(context, builder, sig[0].dtype, 1.0)
        beta = make_constant_slot(context, builder, sig[0].dtype, 0.0)
        builder.call(fn, (char(ord(kind)), tb, ta, n, m, k, builder.bitcast(alpha, void_p),
                          data(3, b, b_off), ldb, data(0, a, a_off), lda,
                          builder.bitcast(beta, void_p), data(6, c, c_off), n))
        return context.get_dummy_value()
    return types.void(A, a_off, trans_a, B, b_off, trans_b, C, c_off, m, n, k), codegen


# -- blocks of tuples -----------------------------------------------------------------------


@njit(inline="always", **JIT)
def unit_matrix(buf, units_start, size, b):
    """The b x size matrix of buf holding, for b tuples, the units that start at units_start in act."""
    start = BLOCK * units_start
    return buf[start:start + b * size].reshape((b, size))


@njit(inline="always", **JIT)
def gather_rows(X, order, p0, inputs):
    """inputs[r] = X[order[p0 + r]] for every row r of inputs: a block's tuples."""
    for r in range(inputs.shape[0]):
        t = order[p0 + r]
        for i in range(inputs.shape[1]):
            inputs[r, i] = X[t, i]


@njit(inline="always", **JIT)
def net_inputs(params, layout, l, act, a_in, a_out, b):
    """Layer l's net inputs I_j = sum_i w_ij O_i + theta_j for a block of b tuples: the
    b x fan_out matrix at act[a_out:] = the b x fan_in matrix at act[a_in:] times W, plus
    theta (a row per tuple)."""
    fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
    gemm(act, a_in, 0, params, layout[l, W_OFF], 0, act, a_out, b, fan_out, fan_in)
    b_off = layout[l, B_OFF]
    for r in range(b):
        for j in range(fan_out):
            act[a_out + r * fan_out + j] += params[b_off + j]


@njit(**JIT, **INTERNAL)
def block_forward(params, layout, X, order, p0, b, act, dropout, codes):
    """Forward pass of the b tuples X[order[p0:p0+b]] into the block buffer act."""
    gather_rows(X, order, p0, unit_matrix(act, 0, layout[0, FAN_IN], b))
    units = 0
    for l in range(layout.shape[0]):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        start = BLOCK * (units + fan_in)
        net_inputs(params, layout, l, act, BLOCK * units, start, b)
        activate_block(act, np.uint64(start), np.uint64(b), np.uint64(fan_out), codes, layout,
                       l)
        if dropout is not None and l < layout.shape[0] - 1 and dropping(layout, l):
            for r in range(b):
                drop_out(layout, l, order[p0 + r], act, np.uint64(start + r * fan_out),
                         np.uint64(fan_out))
        units += fan_in


@njit(**JIT, **INTERNAL)
def block_gradient(params, layout, X, Y, weights, order, p0, b, codes, act, delta, scratch,
                   grad, dropout):
    """grad += sum of w_t dE/dw over the b tuples X[order[p0:p0+b]], as matrix products.

    Returns (sum w_t E_t, sum w_t, n_correct) over the block.
    """
    block_forward(params, layout, X, order, p0, b, act, dropout, codes)
    last = layout.shape[0] - 1
    n_out = layout[last, FAN_OUT]
    out_units = 0
    for l in range(last + 1):
        out_units += layout[l, FAN_IN]
    loss_b, weight_b, correct_b = 0.0, 0.0, 0
    for r in range(b):  # output errors, one tuple at a time
        t = order[p0 + r]
        out = np.uint64(BLOCK * out_units + r * n_out)
        weight = weight_of(weights, t)
        loss_b += weight * loss_of(act, out, np.uint64(n_out), Y, t, codes, layout)
        weight_b += weight
        correct_b += correct_of(act, out, np.uint64(n_out), Y, t, codes, layout)
        error_of(act, delta, out, np.uint64(n_out), Y, t, codes, layout)
        if weight != 1.0:
            for k in range(n_out):
                delta[BLOCK * out_units + r * n_out + k] *= params.dtype.type(weight)
    for l in range(last, -1, -1):
        fan_in, fan_out = layout[l, FAN_IN], layout[l, FAN_OUT]
        in_units = out_units - fan_in
        d_out = unit_matrix(delta, out_units, fan_out, b)
        # dE/dW = O_in^T delta_out, summed over the block; dE/dtheta = delta_out summed
        gemm(act, BLOCK * in_units, 1, delta, BLOCK * out_units, 0, scratch, 0, fan_in, fan_out, b)
        g = grad[layout[l, W_OFF]:layout[l, B_OFF]]
        g_flat = scratch[:fan_in * fan_out]
        for k in range(g.shape[0]):
            g[k] += g_flat[k]
        g_bias = grad[layout[l, B_OFF]:layout[l, B_OFF] + fan_out]
        for r in range(b):
            for j in range(fan_out):
                g_bias[j] += d_out[r, j]
        if l > 0:  # hidden errors: delta_in = (delta_out W^T) * f'(I_in)
            gemm(delta, BLOCK * out_units, 0, params, layout[l, W_OFF], 1, delta,
                 BLOCK * in_units, b, fan_in, fan_out)
            if dropout is not None and dropping(layout, l - 1):
                for r in range(b):
                    undo_drop_out(layout, l - 1, order[p0 + r], act, delta,
                                  np.uint64(BLOCK * in_units + r * fan_in), np.uint64(fan_in))
            derivative_hidden(delta, act, np.uint64(BLOCK * in_units), np.uint64(b * fan_in),
                              codes, layout, l - 1)
        out_units = in_units
    return loss_b, weight_b, correct_b


@njit(**JIT, **INTERNAL)
def new_workspaces(params, layout, n_chunks):
    """One row per chunk, each holding a block's act and delta buffers and room for the
    largest weight matrix; allocated once per kernel call, not per batch."""
    units = layout[0, FAN_IN]
    largest = 0
    for l in range(layout.shape[0]):
        units += layout[l, FAN_OUT]
        largest = larger(largest, layout[l, FAN_IN] * layout[l, FAN_OUT])
    return zero_array((n_chunks, 2 * BLOCK * units + largest), params.dtype)


@njit(**JIT, **INTERNAL)
def split_workspace(row, layout):
    """(act, delta, scratch) views of one chunk's workspace row."""
    units = layout[0, FAN_IN]
    for l in range(layout.shape[0]):
        units += layout[l, FAN_OUT]
    size = BLOCK * units
    return row[:size], row[size:2 * size], row[2 * size:]


# -- whole passes --------------------------------------------------------------------------
# A pass runs over the tuples of one epoch in a given order and returns (loss_sum,
# penalty_sum, n_correct) for the tuples it passed: summed over its updates u, each over B_u
# tuples of weight sum S_u at weights W_u,
#     loss_sum    = sum_u B_u/S_u * sum_(t in u) w_t E_t
#     penalty_sum = sum_u B_u/S_u * alpha/2 * ||W_u||^2      (0 when alpha = 0)
# so that (loss_sum + penalty_sum) / n is scikit-learn's loss_curve_ entry, and loss_sum / n
# the plain mean loss when no weights are given. Passes allocate nothing: their scratch
# arrays come from the run (fastbp.train.Run), made once per train() or fit() call.
