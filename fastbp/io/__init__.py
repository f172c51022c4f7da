"""save / load without pickle: one .npz archive of plain arrays plus a JSON header.

    fastbp.save(model, "model.npz")      # a Network, an RNN, a drop-in, fitted or not
    model = fastbp.load("model.npz")

The archive is a zip of .npy arrays (numpy's .npz) with one more entry, `header`: a JSON
string with the format name and version, the fastbp version that wrote it, the kind of
model and everything that is not an array (layer sizes, activations, loss, dtype, the
estimators' parameters and fitted scalars, the random generators' states). Nothing in it
is ever unpickled, so loading a file never runs code from it.

The package, one module per concern:

- archive: the container (atomic writes; reads that check every entry's shape and dtype
  before reading it and refuse Python objects), Checker (the checks every codec reads a
  header with: ModelFileError naming the file and the field), the random generators' codec;
- network: a Network's codec; rnn: an RNN's; models: the two by kind;
- estimator: the drop-ins' codec (constructor parameters, fitted attributes, trainer);
  rnn_estimator: RNNClassifier's and RNNRegressor's;
- checkpoint: a training run's state, which train(..., resume=True) continues from.
"""
from . import checkpoint, models
from .archive import Checker, ModelFileError, header, read_archive, write_archive
from .estimator import decode_estimator, encode_estimator, estimator_classes, estimator_codec
from .network import decode_network, encode_network
from .rnn import decode_rnn, encode_rnn

__all__ = ["save", "load", "read_model", "save_network_with_meta", "ModelFileError", "Checker",
           "header", "read_archive", "write_archive", "encode_network", "decode_network",
           "encode_rnn", "decode_rnn", "encode_estimator", "decode_estimator"]


def save(model, path):
    """Save a model to `path` (.npz, no pickle); returns the path.

    Parameters
    ----------
    model : Network, RNN, or a fastbp MLPClassifier, MLPRegressor, RNNClassifier or
        RNNRegressor (fitted or not)
    path : str or os.PathLike
        The file to write. The write is atomic (a temporary file in the same folder, fsync,
        rename): an existing file at `path` is replaced whole or not at all.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os, tempfile, fastbp
    >>> net = fastbp.Network([2, 2, 1], random_state=0)
    >>> path = fastbp.save(net, os.path.join(tempfile.mkdtemp(), "net.npz"))
    >>> back = fastbp.load(path)
    >>> back.params.tolist() == net.params.tolist(), type(back).__name__
    (True, 'Network')
    """
    head, arrays = _encode_model(model)
    return write_archive(path, head, arrays)


def load(path):
    """The model saved at `path` by save() (or the network of a train() checkpoint).

    Never unpickles: nothing in the file is run.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network, RNN, MLPClassifier, MLPRegressor, RNNClassifier or RNNRegressor
        What was saved, bit for bit.

    Raises
    ------
    FileNotFoundError
        No file at `path`.
    ModelFileError
        (a ValueError) The file is not a valid fastbp model file: garbage, truncated,
        tampered with, or written by a newer fastbp; the message says what is wrong.

    Examples
    --------
    >>> import os, tempfile, fastbp
    >>> path = os.path.join(tempfile.mkdtemp(), "not-a-model.npz")
    >>> _ = open(path, "w").write("hello")
    >>> fastbp.load(path)
    Traceback (most recent call last):
    ...
    fastbp.io.archive.ModelFileError: ... is not a fastbp model (not an .npz archive)
    """
    model, _ = read_model(path)
    return model


def read_model(path):
    """(model, header) of a saved model file (see load)."""
    head, arrays = read_archive(path)
    check = Checker(path)
    kind = head["kind"]
    if kind == "checkpoint":
        return checkpoint.decode_model(head, arrays, check), head
    if kind in models.CODECS:
        model = models.decode_model(kind, head, arrays, check)
        if arrays:  # what the codec did not take
            check.fail(f"unexpected arrays {sorted(arrays)}")
        return model, head
    return estimator_codec(kind)[1](kind, head, arrays, check), head


def _encode_model(model, meta=None):
    if models.model_kind(model) is not None:
        kind, fields, arrays = models.encode_model(model)
        return header(kind, **fields, **(meta or {})), arrays
    if isinstance(model, estimator_classes()):
        kind = type(model).__name__
        fields, arrays = estimator_codec(kind)[0](model)
        return header(kind, **fields), arrays
    raise TypeError(f"save() takes a fastbp Network, RNN or estimator (MLPClassifier, "
                    f"MLPRegressor, RNNClassifier, RNNRegressor), got {type(model).__name__}")


def save_network_with_meta(net, path, meta):
    """A Network (or an RNN) plus extra header fields (the command line's feature names,
    scaling)."""
    head, arrays = _encode_model(net, meta)
    return write_archive(path, head, arrays)
