"""The models' codecs by kind: what save, load and checkpoints call for a Network or an RNN
(one table, so that a new model type is one more row, not one more branch in each)."""
from ..network import Network
from ..rnn import RNN
from .network import decode_network, encode_network
from .rnn import decode_rnn, encode_rnn

CODECS = {"Network": (Network, encode_network, decode_network),
          "RNN": (RNN, encode_rnn, decode_rnn)}


def model_kind(model):
    """The kind ("Network", "RNN") of a model, or None for what is not one."""
    return next((kind for kind, (cls, _, _) in CODECS.items() if isinstance(model, cls)), None)


def encode_model(model):
    """(kind, header fields, arrays) of a Network or an RNN."""
    kind = model_kind(model)
    fields, arrays = CODECS[kind][1](model)
    return kind, fields, arrays


def decode_model(kind, fields, arrays, check):
    """The model of `kind` its fields and arrays describe, all checked."""
    return CODECS[kind][2](fields, arrays, check)
