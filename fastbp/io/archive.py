"""The container of every fastbp file: one .npz archive of plain arrays plus a JSON header,
and the checks every codec reads it with.

The archive is a zip of .npy arrays (numpy's .npz) with one more entry, `header`: a JSON
string with the format name and version, the fastbp version that wrote it, the kind of
model and everything that is not an array (layer sizes, activations, loss, dtype, the
estimators' parameters and fitted scalars, the random generators' states). Nothing in it
is ever unpickled, so loading a file never runs code from it.

`load` trusts nothing: it reads each array's declared shape and dtype before reading the
array itself (a tampered shape cannot make it allocate more than the file holds), refuses
arrays of Python objects (what pickle would be needed for), and checks every header field
and every array against the others (names, types, sizes, dtypes, lengths) before it
builds anything. A file that fails is a ModelFileError (a ValueError) saying what is wrong.

Writes are atomic: the archive goes to a temporary file in the target's folder, is flushed
and fsync'ed, and then renamed over the target (and the folder fsync'ed), so a crash or a
kill mid-save leaves either the old file or the new one, never a broken one.
"""
import json
import math
import os
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._validation import is_int, short_repr
from .._version import __version__

FORMAT = "fastbp-model"
FORMAT_VERSION = 1
KINDS = ("Network", "RNN", "MLPClassifier", "MLPRegressor", "RNNClassifier", "RNNRegressor",
         "checkpoint")
MAX_HEADER_BYTES = 64 << 20
MAX_ENTRIES = 10_000


class ModelFileError(ValueError):
    """A file that is not a fastbp model this version can read (garbage, truncated, tampered)."""


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file


# -- the container ----------------------------------------------------------------------------
def _as_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {path!r}")
    return Path(os.fspath(path))


def write_archive(path, header, arrays):
    """Write `arrays` (name -> ndarray) and the JSON `header` to `path` atomically."""
    path = _as_path(path)
    folder = path.parent
    text = json.dumps(header, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                with archive.open("header.npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, np.array(text), allow_pickle=False)
                for name, array in arrays.items():
                    array = np.ascontiguousarray(array)
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
                        np.lib.format.write_array(entry, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def read_archive(path, kinds=KINDS):
    """(header dict, arrays dict) of a file written by write_archive; ModelFileError if it is not one."""
    path = _as_path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise ModelFileError(f"{path} is not a fastbp model (not an .npz archive)")
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                raise ModelFileError(f"{path} is not a fastbp model ({len(infos)} entries)")
            for info in infos:
                name = info.filename
                if not name.endswith(".npy") or name[:-4] in arrays:
                    raise ModelFileError(f"{path} is not a fastbp model (unexpected entry {name!r})")
                with archive.open(info) as entry:
                    arrays[name[:-4]] = _read_array(entry, info.file_size, name, path)
    except ModelFileError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile,
            zlib.error, NotImplementedError, OverflowError, SyntaxError, tokenize.TokenError,
            TypeError, MemoryError, RuntimeError) as error:
        # (numpy parses a .npy header with ast and tokenize, and zipfile says RuntimeError
        # for an entry flagged encrypted: damage raises all of these)
        raise ModelFileError(f"{path} is not a fastbp model, or a damaged one (truncated or "
                             f"corrupted: {error})") from None
    header = arrays.pop("header", None)
    if header is None:
        raise ModelFileError(f"{path} is not a fastbp model (no header)")
    if header.shape != () or header.dtype.kind != "U":
        raise ModelFileError(f"{path} is not a fastbp model (its header is not one string)")
    try:
        header = json.loads(str(header[()]))
    except (ValueError, RecursionError):
        raise ModelFileError(f"{path} is not a fastbp model (its header is not JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a fastbp model (no fastbp header)")
    version = header.get("format_version")
    if not is_int(version) or version < 1:
        raise ModelFileError(f"{path}: format_version must be an integer >= 1, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written in model format {version}; this fastbp reads "
                             f"format {FORMAT_VERSION} and older")
    kind = header.get("kind", "Network")  # the command line's first files had no kind
    if kind not in kinds:
        raise ModelFileError(f"{path}: 'kind' must be one of {list(kinds)}, got {kind!r}")
    header["kind"] = kind
    return header, arrays


def _read_array(entry, size, name, path):
    """One .npy entry, its header checked before any data is read or allocated."""
    version = np.lib.format.read_magic(entry)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(entry, max_header_size=MAX_HEADER_BYTES)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(entry, max_header_size=MAX_HEADER_BYTES)
    else:
        raise ModelFileError(f"{path}: entry {name!r} has an unknown .npy version {version}")
    if dtype.hasobject:
        raise ModelFileError(f"{path} is not a fastbp model: entry {name!r} holds Python objects, "
                             "which only pickle could read (refused: loading never unpickles)")
    if dtype.kind not in "biufU" or fortran:
        raise ModelFileError(f"{path}: entry {name!r} has an unexpected dtype {dtype}")
    count = math.prod(shape)
    if count * dtype.itemsize > size:
        raise ModelFileError(f"{path}: entry {name!r} declares shape {shape} of {dtype}, more than "
                             f"its {size} bytes (truncated or tampered)")
    data = entry.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ModelFileError(f"{path}: entry {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


# -- checks -----------------------------------------------------------------------------------
class Checker:
    """Raises ModelFileError naming the file and the field."""

    def __init__(self, path):
        self.path = path

    def fail(self, problem):
        raise ModelFileError(f"{self.path}: invalid model file: {problem}")

    def field(self, mapping, key, check, what, where="header"):
        if key not in mapping:
            self.fail(f"{where} lacks {key!r}")
        value = mapping[key]
        if not check(value):
            self.fail(f"{where} field {key!r} must be {what}, got {short_repr(value)}")
        return value

    def array(self, arrays, name, dtype_kinds, shape=None, ndim=None):
        if name not in arrays:
            self.fail(f"it lacks the array {name!r}")
        value = arrays.pop(name)
        if value.dtype.kind not in dtype_kinds:
            self.fail(f"array {name!r} has dtype {value.dtype}")
        if shape is not None and value.shape != tuple(shape):
            self.fail(f"array {name!r} has shape {value.shape}, expected {tuple(shape)}")
        if ndim is not None and value.ndim != ndim:
            self.fail(f"array {name!r} has {value.ndim} dimensions, expected {ndim}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            self.fail(f"array {name!r} holds NaN or infinity: {name} must be finite")
        return value


# -- random generators --------------------------------------------------------------------------
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def _jsonable(value):
    """numpy arrays and scalars inside a bit generator's state as JSON lists and numbers."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__array__": value.dtype.str, "data": value.tolist()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_jsonable(value):
    if isinstance(value, dict):
        if set(value) == {"__array__", "data"}:
            dtype = np.dtype(value["__array__"])
            if dtype.kind not in "iu":
                raise ValueError(f"unexpected dtype {dtype}")
            return np.asarray(value["data"], dtype=dtype)
        return {k: _from_jsonable(v) for k, v in value.items()}
    return value


def encode_rng(rng):
    """A RandomState or Generator as JSON: its class and its bit generator's state."""
    if isinstance(rng, np.random.RandomState):
        return {"class": "RandomState", "state": _jsonable(rng.get_state(legacy=False))}
    if isinstance(rng, np.random.Generator):
        return {"class": "Generator", "state": _jsonable(rng.bit_generator.state)}
    raise TypeError(f"cannot save a random generator of type {type(rng).__name__}")


def decode_rng(data, check, where):
    """The generator encode_rng described; ModelFileError if the description is not valid."""
    if not isinstance(data, dict) or data.get("class") not in ("RandomState", "Generator") \
            or not isinstance(data.get("state"), dict):
        check.fail(f"{where} is not a random generator state")
    name = data["state"].get("bit_generator")
    if name not in _BIT_GENERATORS or (data["class"] == "RandomState" and name != "MT19937"):
        check.fail(f"{where}: unknown bit generator {short_repr(name)}")
    try:
        bits = getattr(np.random, name)()
        bits.state = _from_jsonable(data["state"])
    except (ValueError, TypeError, KeyError, OverflowError) as error:
        check.fail(f"{where}: invalid generator state ({error})")
    return np.random.RandomState(bits) if data["class"] == "RandomState" else np.random.Generator(bits)


def header(kind, **fields):
    """The JSON header of a file of `kind`: its fields plus the format's name and version and
    the fastbp version that wrote it."""
    return dict(fields, format=FORMAT, format_version=FORMAT_VERSION, fastbp_version=__version__,
                kind=kind)
