"""Case updating's pass compiled for one network shape (networks of at most SHAPED_LAYERS
layers of at most SHAPED_LAYER units, plain SGD, no dropout): case_pass_small's steps with
every layer's sizes and offsets compiled in as constants, so each layer is straight-line code.

`case_pass_of` is what run_case calls: with `small` a Shape (its Numba type carries the layer
table) it compiles the shaped pass, with `small` True the generic case_pass_small. The shaped
pass's source is generated from the layer table: one block of calls per layer, of the same
inlined steps the generic pass runs (layer_sums, activate, plain_layer_update,
times_derivative, the output layer's loss, count and error), with constant arguments.
"""
import numpy as np
from numba.extending import overload

from . import fastmath, steps
from ._jit import CodesType, ShapeType
from .codes import ALPHA, LR, STEP
from .passes import case_pass_small


def case_pass_of(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                 state, general, small):
    """case_pass_small, or its shaped twin when `small` is a Shape (see the module)."""


@overload(case_pass_of)
def _case_pass_of(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                  state, general, small):
    if isinstance(small, ShapeType) and isinstance(codes, CodesType) and codes.hidden is not None:
        return shaped_pass(small.layers, codes.hidden, codes.output, codes.loss)

    def generic(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper, state,
                general, small):
        return case_pass_small(params, layout, geo, act, delta, X, Y, weights, order, codes, opt,
                               hyper, state, general)
    return generic


def shaped_source(layers, hidden, output, loss):
    """The Python source of the shaped pass for a layer table (fan_in, fan_out, w_off, b_off
    per layer) and the codes; its constants are named in it and defined by shaped_pass."""
    last = len(layers) - 1
    lines = [
        "def shaped(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,",
        "           state, general, small):",
        "    alpha = hyper[ALPHA]",
        "    lr = params.dtype.type(hyper[LR])",
        "    loss_sum, penalty_sum, n_correct = 0.0, 0.0, 0",
        "    for p in range(order.shape[0]):",
        "        t = order[p]",
        "        weight = weight_of(weights, t)",
        "        for i in range(IN_0):",
        "            act[i] = X[t, i]",
    ]
    for l in range(last + 1):
        code = "OUTPUT" if l == last else "HIDDEN"
        lines += [f"        layer_sums(params, act, IN_{l}, OUT_{l}, W_{l}, B_{l}, A_IN_{l}, A_OUT_{l})",
                  f"        activate(act, A_OUT_{l}, OUT_{l}, {code})"]
    lines += [
        f"        loss_sum += tuple_loss(act, A_OUT_{last}, OUT_{last}, Y, t, LOSS, OUTPUT)",
        f"        n_correct += is_correct(act, A_OUT_{last}, OUT_{last}, Y, t, OUTPUT)",
        "        if weight == 0.0:",
        "            continue",
        "        if alpha != 0.0:",
        "            penalty_sum += 0.5 * alpha * squared_weights(params, layout) / weight",
        f"        output_error(act, delta, A_OUT_{last}, OUT_{last}, Y, t, LOSS, OUTPUT)",
        "        hyper[STEP] += 1.0",
        "        decay = params.dtype.type(alpha / weight)",
    ]
    for l in range(last, -1, -1):
        lines.append(f"        plain_layer_update(params, act, delta, {l}, IN_{l}, OUT_{l}, W_{l}, "
                     f"B_{l}, A_IN_{l}, A_OUT_{l}, decay, lr)")
        if l > 0:
            lines.append(f"        times_derivative(delta, act, A_IN_{l}, IN_{l}, HIDDEN)")
    lines.append("    return loss_sum, penalty_sum, n_correct")
    return "\n".join(lines) + "\n"


def shaped_pass(layers, hidden, output, loss):
    """The shaped pass's function (Numba compiles it as case_pass_of's implementation)."""
    key = (layers, hidden, output, loss)
    if key not in _SHAPED:
        scope = dict(ALPHA=ALPHA, LR=LR, STEP=STEP, HIDDEN=hidden, OUTPUT=output, LOSS=loss,
                     activate=fastmath.activate, times_derivative=fastmath.times_derivative,
                     layer_sums=steps.layer_sums, plain_layer_update=steps.plain_layer_update,
                     tuple_loss=steps.tuple_loss, is_correct=steps.is_correct,
                     output_error=steps.output_error, weight_of=steps.weight_of,
                     squared_weights=steps.squared_weights)
        units = 0
        for l, (fan_in, fan_out, w_off, b_off) in enumerate(layers):
            # unsigned, as geometry's offsets: see backprop's "Indexing"
            scope.update({f"IN_{l}": np.uint64(fan_in), f"OUT_{l}": np.uint64(fan_out),
                          f"W_{l}": np.uint64(w_off), f"B_{l}": np.uint64(b_off),
                          f"A_IN_{l}": np.uint64(units), f"A_OUT_{l}": np.uint64(units + fan_in)})
            units += fan_in
        exec(compile(shaped_source(layers, hidden, output, loss), f"<fastbp shaped pass {layers}>",
                     "exec"), scope)
        _SHAPED[key] = scope["shaped"]
    return _SHAPED[key]


_SHAPED = {}
