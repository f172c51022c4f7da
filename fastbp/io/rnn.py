"""The RNN codec: an Elman network as header fields and arrays of an archive, and back."""
import numpy as np

from .._validation import is_int, short_repr
from ..network import DTYPES
from ..rnn import RNN, TARGETS
from .archive import decode_rng, encode_rng


def encode_rnn(net):
    """(header fields, arrays) of an RNN."""
    fields = dict(sizes=list(net.sizes), activation=net.activation,
                  output_activation=net.output_activation, loss=net.loss, dtype=net.dtype.name,
                  targets=net.targets_)
    if isinstance(net.random_state_, (np.random.RandomState, np.random.Generator)):
        fields["random_state"] = encode_rng(net.random_state_)
    return fields, {"params": net.params, "layout": net.layout}


def decode_rnn(fields, arrays, check):
    """The RNN encode_rnn described, holding the file's params, all checked."""
    sizes = check.field(fields, "sizes", lambda v: isinstance(v, list) and len(v) == 3 and all(
        is_int(s) and s >= 1 for s in v), "a list of 3 integers >= 1")
    dtype = check.field(fields, "dtype", lambda v: v in [d.name for d in DTYPES], "'float32' or 'float64'")
    targets = check.field(fields, "targets", lambda v: v is None or v in TARGETS,
                          f"null or one of {list(TARGETS)}")
    n_in, nh, no = sizes
    n_params = n_in * nh + nh * nh + nh + nh * no + no
    if "params" in arrays and arrays["params"].shape != (n_params,):  # before building anything
        check.fail(f"'sizes' {short_repr(sizes)} need {n_params} params, the file holds an array "
                   f"of shape {arrays['params'].shape}")
    params = check.array(arrays, "params", "f", shape=(n_params,))
    if params.dtype != np.dtype(dtype):
        check.fail(f"params have dtype {params.dtype}, the header says {dtype}")
    layout = check.array(arrays, "layout", "i")
    try:
        net = RNN(sizes, activation=fields.get("activation"),
                  output_activation=fields.get("output_activation"), loss=fields.get("loss"),
                  dtype=dtype, random_state=0)
    except (ValueError, TypeError) as error:
        check.fail(error)
    if layout.shape != net.layout.shape or not np.array_equal(layout, net.layout):
        check.fail(f"the layout array does not match the network {net!r}")
    net.params[:] = params
    net.targets_ = targets
    if "random_state" in fields:
        net.random_state_ = decode_rng(fields["random_state"], check, "random_state")
    return net
