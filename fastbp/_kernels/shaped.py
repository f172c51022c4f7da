"""Passes compiled for one network shape (networks of at most SHAPED_LAYERS layers of at
most SHAPED_LAYER units, no dropout): the generic passes' steps with every layer's sizes and
offsets compiled in as constants, so each layer is straight-line code.

- `case_pass_of` (what run_case calls): with `small` a Shape (its Numba type carries the
  layer table) the shaped case updating pass (plain SGD), with `small` True the generic
  case_pass_small;
- `tuples_gradient_of` (what gradient_pass calls for a short pass, tuple by tuple): with
  `tuples` a Shape the shaped gradient pass (two tuples at a time, see
  shaped_gradient_source), with `tuples` True the generic tuples_gradient.
- `forward_of` (what predict calls tuple by tuple): with `tuples` a Shape the shaped forward
  pass, with `tuples` True the generic forward (passes.forward_plain). A first XOR program's
  predict compiled the generic forward, every kind of layer, in 0.9 s.

The shaped passes' source is generated from the layer table: one block of calls per layer, of
the same inlined steps the generic passes run, each layer's own (its kind of sums and update
or gradient step: SUMS, PLAIN_UPDATES, GRADIENTS; its activation and derivative:
fastmath.UNITS, DERIVATIVES), and tuple_loss, is_correct, error_of, with constant
arguments. The generic passes live in passes.py, imported when an overload is typed (passes
imports this module).
"""
import numpy as np
from numba import types
from numba.core.types import NoneType
from numba.extending import overload

from . import _jit, fastmath, steps
from ._jit import CodesType, ShapeType, _with_signature
from ._setup import NOALIAS, OVERLOAD
from .codes import LR, NARROW, STEP, ZERO, unit_offset


def case_pass_of(params, layout, geo, act, delta, X, Y, weights, order, codes, opt, hyper,
                 state, general, small):
    """case_pass_small, or its shaped twin when `small` is a Shape (see the module)."""


def tuples_gradient_of(params, layout, geo, act, delta, X, Y, weights, order, lo, hi, codes,
                       grad, dropout, tuples):
    """tuples_gradient, or its shaped twin when `tuples` is a Shape (see the module)."""


def forward_of(params, layout, geo, act, codes, tuples):
    """forward (act holds the input; its turned output layer off), or its shaped twin when
    `tuples` is a Shape: what predict runs a tuple at a time (see the module)."""


def _shaped_or_generic(stub, source_of, generic_name, noalias):
    """Overload `stub`, whose last parameter is the Shape (or True): the shaped pass that
    source_of writes, or passes.<generic_name> called with the other arguments. No dropout
    (a `dropout` argument must be None) and activations compiled in (not generic codes).
    Compiled as the kernels are (an overload gets Numba's defaults otherwise: no fastmath),
    with NOALIAS where the callers pass separate buffers (see _setup.NOALIAS)."""
    names = stub.__code__.co_varnames[:stub.__code__.co_argcount]

    def typer(*args):
        given = dict(zip(names, args))
        codes, shape = given["codes"], args[-1]
        if isinstance(shape, ShapeType) and isinstance(codes, CodesType) and \
                codes.hidden is not None and isinstance(given.get("dropout", types.none), NoneType):
            return shaped_pass(source_of, shape.layers, codes)
        from . import passes
        scope = {"generic": getattr(passes, generic_name)}
        exec(f"def generic_{generic_name}({', '.join(names)}):\n"
             f"    return generic({', '.join(names[:-1])})\n", scope)
        return scope[f"generic_{generic_name}"]
    options = dict(OVERLOAD, **(NOALIAS if noalias else {}))
    overload(stub, jit_options=options)(_with_signature(typer, stub))


def _forward_lines(layers, indent, load=True):
    """The shaped passes' forward pass of X[t] (the layers' sums and activations); without
    `load`, of the input act holds already."""
    last = len(layers) - 1
    lines = [f"{indent}for i in range(IN_0):", f"{indent}    act[i] = X[t, i]"] if load else []
    for l in range(last + 1):
        units = "output_units" if l == last else "hidden_units"
        lines += [f"{indent}sums_{l}(params, act, IN_{l}, OUT_{l}, W_{l}, B_{l}, A_IN_{l}, A_OUT_{l})",
                  f"{indent}{units}(act, A_OUT_{l}, OUT_{l})"]
    return lines


def _backward_lines(layers, step, at="", indent=" " * 8):
    """The shaped passes' backward pass, output layer first: `step` (a format with {l} and
    {layer}, the layer's constants; step_{l} is the layer's own step function) per layer,
    then f'(I) on the errors of its inputs; `at` (e.g. "at + ") offsets the tuple's units."""
    lines = []
    for l in range(len(layers) - 1, -1, -1):
        layer = f"IN_{l}, OUT_{l}, W_{l}, B_{l}, {at}A_IN_{l}, {at}A_OUT_{l}"
        lines.append(indent + step.format(l=l, layer=layer))
        if l > 0:
            lines.append(f"{indent}hidden_derivative(delta, act, {at}A_IN_{l}, IN_{l})")
    return lines


def _pass_source(layers, head, loop, after_forward, step, result, ahead=""):
    """A shaped pass's source: `head` lines, the loop over the tuples (`loop`: its range),
    `ahead` (a line), the forward pass, `after_forward` lines (loss, count, output error), the
    backward pass (`step` per layer, see _backward_lines), `return result`."""
    lines = head + [f"    for p in {loop}:", "        t = order[p]"]
    lines += [" " * 8 + ahead] if ahead else []
    lines += ["        weight = weight_of(weights, t)"]
    lines += _forward_lines(layers, " " * 8) + [" " * 8 + line for line in after_forward]
    lines += _backward_lines(layers, step) + [f"    return {result}"]
    return "\n".join(lines) + "\n"


def shaped_gradient_source(layers):
    """The source of the shaped tuples_gradient for a layer table (its constants are named in
    it and defined by shaped_pass). Tuples go two at a time, t and u (the last one of an odd
    pass alone): both forward passes, layer by layer, then t's loss and backward pass, then
    u's; u's units at SECOND in act and delta (the passes' buffers are a block's workspace,
    blocks.split_workspace: room for BLOCK tuples, of which this takes two). A tuple's
    forward pass is a chain of dependent steps (each layer's sums wait for the layer below, its activation for
    its sums); two independent chains side by side keep the processor busy while each waits
    (XOR's epoch updating: 270-290 -> 190 ns an epoch, scripts/loop_cost.py). Each step is
    written once, in a loop over the two tuples' offsets: three copies of the steps compiled
    3.7 times as long (the demo's XOR network: 0.8 -> 2.8 s; in a loop, 1.1 s). Gradient, loss
    and count are added up in the order of one tuple at a time, as the pass tuple by tuple
    added them: the gradient's sums go through memory, so the same bits; the loss sum is a
    register the compiler may reassociate under fastmath (the same bits too, weights and
    loss history, on the networks tried)."""
    last = len(layers) - 1
    lines = ["def shaped_gradient(params, layout, geo, act, delta, X, Y, weights, order, lo, hi,",
             "                    codes, grad, dropout, tuples):",
             "    loss_c, weight_c, correct_c = 0.0, 0.0, 0",
             "    both = (ZERO, SECOND)  # where t's and u's units start",
             "    # (a tuple's units end at SECOND: 2 SECOND <= BLOCK units, see the docstring)",
             "    p = lo",
             "    while p < hi:",
             "        t = order[p]",
             "        lanes = 2 if p + 1 < hi else 1  # the tuples this turn: t, and u",
             "        u = order[p + 1] if lanes == 2 else t",
             "        for i in range(IN_0):",
             "            act[i] = X[t, i]",
             "            act[SECOND + i] = X[u, i]"]
    for l in range(last + 1):
        units = "output_units" if l == last else "hidden_units"
        lines += ["        for k in range(lanes):",
                  f"            sums_{l}(params, act, IN_{l}, OUT_{l}, W_{l}, B_{l}, both[k] + A_IN_{l}, "
                  f"both[k] + A_OUT_{l})",
                  "        for k in range(lanes):",
                  f"            {units}(act, both[k] + A_OUT_{l}, OUT_{l})"]
    lines += [
        "        for k in range(lanes):",
        "            tk, at = (t, ZERO) if k == 0 else (u, SECOND)",
        "            weight = weight_of(weights, tk)",
        "            loss_c += weight * tuple_loss(act, at + A_OUT_LAST, OUT_LAST, Y, tk, LOSS, "
        "OUTPUT)",
        "            weight_c += weight",
        "            correct_c += is_correct(act, at + A_OUT_LAST, OUT_LAST, Y, tk, OUTPUT)",
        "            if weight == 0.0:",
        "                continue",
        "            error_of(act, delta, at + A_OUT_LAST, OUT_LAST, Y, tk, codes, layout)",
        "            if weight != 1.0:  # the tuple's weight scales its errors",
        "                for j in range(OUT_LAST):",
        "                    delta[at + A_OUT_LAST + j] *= params.dtype.type(weight)"]
    lines += _backward_lines(layers, "step_{l}(params, grad, act, delta, {l}, {layer})",
                             at="at + ", indent=" " * 12)
    lines += ["        p += 2", "    return loss_c, weight_c, correct_c"]
    return "\n".join(lines) + "\n"


def shaped_forward_source(layers):
    """The source of the shaped forward pass (act holds the input) for a layer table."""
    lines = ["def shaped_forward(params, layout, geo, act, codes, tuples):"]
    lines += _forward_lines(layers, " " * 4, load=False)
    return "\n".join(lines) + "\n"


def shaped_case_source(layers):
    """The source of the shaped case updating pass for a layer table (fan_in, fan_out, w_off,
    b_off per layer); its constants are named in it and defined by shaped_pass. Plain SGD
    without an L2 term (Network's training_arguments sends alpha > 0 to the generic pass):
    no penalty and each step's decay a constant 0, which left squared_weights and the
    per-tuple penalty out (the first XOR program: 0.2 s less to compile)."""
    head = ["def shaped_case(params, layout, geo, act, delta, X, Y, weights, order, codes, opt,",
            "                hyper, state, general, small):",
            "    lr = params.dtype.type(hyper[LR])",
            "    decay = params.dtype.type(0.0)",
            "    loss_sum, n_correct = 0.0, 0"]
    after_forward = [
        "loss_sum += tuple_loss(act, A_OUT_LAST, OUT_LAST, Y, t, LOSS, OUTPUT)",
        "n_correct += is_correct(act, A_OUT_LAST, OUT_LAST, Y, t, OUTPUT)",
        "if weight == 0.0:",
        "    continue",
        "error_of(act, delta, A_OUT_LAST, OUT_LAST, Y, t, codes, layout)",
        "hyper[STEP] += 1.0  # the update count, as begin_update keeps it"]
    return _pass_source(layers, head, "range(order.shape[0])", after_forward,
                        "step_{l}(params, act, delta, {l}, {layer}, decay, lr)",
                        "loss_sum, 0.0, n_correct",
                        ahead="prefetch_tuple(X, Y, order, p)  # see steps.AHEAD")


def shaped_pass(source_of, layers, codes):
    """The function source_of(layers) defines, with the layer table's sizes and offsets and
    the codes as its constants (Numba compiles it as an overload's implementation)."""
    key = (source_of.__name__, layers, codes.hidden, codes.output, codes.loss)
    if key not in _SHAPED:
        # __name__: the module Numba names the code's environment after (without one, a
        # cached kernel could not rebuild it, should the code ever need Python objects)
        scope = dict(__name__=__name__, LR=LR, STEP=STEP, ZERO=ZERO, OUTPUT=codes.output,
                     LOSS=codes.loss, hidden_units=fastmath.UNITS[codes.hidden],
                     output_units=fastmath.UNITS[codes.output],
                     hidden_derivative=fastmath.DERIVATIVES[codes.hidden],
                     tuple_loss=steps.tuple_loss,
                     is_correct=steps.is_correct, error_of=_jit.error_of,
                     weight_of=steps.weight_of, prefetch_tuple=steps.prefetch_tuple)
        units = 0
        for l, (fan_in, fan_out, w_off, b_off) in enumerate(layers):
            # unsigned, as geometry's offsets: see backprop's "Indexing"
            scope.update({f"IN_{l}": np.uint64(fan_in), f"OUT_{l}": np.uint64(fan_out),
                          f"W_{l}": np.uint64(w_off), f"B_{l}": np.uint64(b_off),
                          f"A_IN_{l}": np.uint64(units),
                          f"A_OUT_{l}": np.uint64(units + unit_offset(fan_in))})
            units += unit_offset(fan_in)
            # the kind of layer is known: only its own sums and step are inlined
            kind = layer_kind(fan_out)
            scope[f"sums_{l}"] = SUMS[kind]
            if source_of in _LAYER_STEPS:  # (the forward pass has no step)
                scope[f"step_{l}"] = _LAYER_STEPS[source_of][kind]
        scope.update(OUT_LAST=scope[f"OUT_{len(layers) - 1}"],
                     A_OUT_LAST=scope[f"A_OUT_{len(layers) - 1}"],
                     # shaped_gradient's second tuple: past the first one's output units
                     SECOND=np.uint64(units + unit_offset(layers[-1][1])))
        exec(compile(source_of(layers), f"<fastbp {source_of.__name__} {layers}>", "exec"), scope)
        # the function a source defines is named after it: shaped_case for shaped_case_source
        _SHAPED[key] = scope[source_of.__name__.removesuffix("_source")]
    return _SHAPED[key]


_SHAPED = {}


def layer_kind(fan_out):
    """0: one unit, 1: at most NARROW units, 2: wider; steps.py has a function of each kind for
    the sums (SUMS), plain SGD's update (PLAIN_UPDATES) and the gradient (GRADIENTS)."""
    return 0 if fan_out == 1 else 1 if fan_out <= NARROW else 2


SUMS = (steps.unit_sums, steps.narrow_sums, steps.row_sums)
PLAIN_UPDATES = (steps.unit_update, steps.narrow_update, steps.row_update)
GRADIENTS = (steps.unit_gradient, steps.narrow_gradient, steps.row_gradient)
_LAYER_STEPS = {shaped_case_source: PLAIN_UPDATES, shaped_gradient_source: GRADIENTS}


_shaped_or_generic(case_pass_of, shaped_case_source, "case_pass_small", noalias=True)
# (act1 and delta1, views of one workspace row: no NOALIAS)
_shaped_or_generic(tuples_gradient_of, shaped_gradient_source, "tuples_gradient", noalias=False)
_shaped_or_generic(forward_of, shaped_forward_source, "forward_plain", noalias=True)
