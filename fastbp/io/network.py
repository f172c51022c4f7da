"""The Network codec: a Network as header fields and arrays of an archive, and back."""
import numpy as np

from .._validation import is_int, short_repr
from ..network import DTYPES, Network
from .archive import decode_rng, encode_rng


def encode_network(net, prefix=""):
    """(header fields, arrays) of a Network."""
    fields = dict(sizes=list(net.sizes), activation=net.activation,
                  output_activation=net.output_activation, loss=net.loss, dtype=net.dtype.name)
    if net.batch_norm:
        fields.update(batch_norm=True, bn_momentum=net.bn_momentum, bn_eps=net.bn_eps)
    if isinstance(net.random_state_, (np.random.RandomState, np.random.Generator)):
        fields["random_state"] = encode_rng(net.random_state_)
    arrays = {f"{prefix}params": net.params, f"{prefix}layout": net.layout,
              f"{prefix}sizes": np.asarray(net.sizes, dtype=np.int64)}
    if net.batch_norm:
        arrays[f"{prefix}bn_stats"] = net.bn_stats
    return fields, arrays


def decode_network(fields, arrays, check, prefix=""):
    """The Network encode_network described, holding the file's params, all checked."""
    sizes = check.field(fields, "sizes", lambda v: isinstance(v, list) and len(v) >= 2 and all(
        is_int(s) and s >= 1 for s in v), "a list of at least 2 integers >= 1")
    dtype = check.field(fields, "dtype", lambda v: v in [d.name for d in DTYPES], "'float32' or 'float64'")
    # the sizes are compared with the params array before a network is built, so a tampered
    # size cannot ask for a huge buffer
    batch_norm = fields.get("batch_norm", False)
    if not isinstance(batch_norm, bool):
        check.fail(f"'batch_norm' must be true or false, got {short_repr(batch_norm)}")
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    if batch_norm:
        n_params += 2 * sum(sizes[1:-1])
    if f"{prefix}params" in arrays and arrays[f"{prefix}params"].shape != (n_params,):
        check.fail(f"'sizes' {short_repr(sizes)} need {n_params} params, the file holds an array of "
                   f"shape {arrays[f'{prefix}params'].shape}")
    params = check.array(arrays, f"{prefix}params", "f", shape=(n_params,))
    if params.dtype != np.dtype(dtype):
        check.fail(f"params have dtype {params.dtype}, the header says {dtype}")
    layout = check.array(arrays, f"{prefix}layout", "i")
    stored_sizes = check.array(arrays, f"{prefix}sizes", "i")
    if not np.array_equal(stored_sizes, sizes):
        check.fail(f"'sizes' {short_repr(sizes)} differ from the sizes array {short_repr(stored_sizes.tolist())}")
    try:
        extra = {}
        if batch_norm:
            extra = dict(batch_norm=True, bn_momentum=fields.get("bn_momentum"),
                         bn_eps=fields.get("bn_eps"))
        net = Network(sizes, activation=fields.get("activation"),
                      output_activation=fields.get("output_activation"), loss=fields.get("loss"),
                      dtype=dtype, init=None, **extra)
    except (ValueError, TypeError) as error:
        check.fail(error)
    if batch_norm:
        net.bn_stats[:] = check.array(arrays, f"{prefix}bn_stats", "f", shape=net.bn_stats.shape)
    if layout.shape != net.layout.shape or not np.array_equal(layout, net.layout):
        check.fail(f"the layout array does not match the network {net!r}")
    net.params[:] = params
    if "random_state" in fields:
        net.random_state_ = decode_rng(fields["random_state"], check, "random_state")
    return net
