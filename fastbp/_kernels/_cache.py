"""Where fastbp's compiled kernels are kept, and when they are stale.

Numba's own default keeps a module's machine code in the `__pycache__` folder beside it, in
site-packages: a `pip uninstall` leaves those files behind, and the leftover `fastbp/` folder
then shadows a later editable install (`import fastbp` fails). And it stamps each function
with a hash of its own file only. fastbp's locator instead keeps every kernel in one cache
folder per user and fastbp version, outside the installation, and stamps each with a hash of
every file of this package (the kernels, and the codes they compile in), so an edit to any
of them recompiles them all.

The folder (`cache_dir()`): $FASTBP_CACHE_DIR if set; else under $NUMBA_CACHE_DIR if set
(Numba's own switch, honoured); else the platform's per-user cache folder, e.g.
~/.cache/fastbp/<version>-py<X.Y> on Linux. Deleting it is always safe (`fastbp compile
--clear`); the next call compiles again. Where it cannot be written, Numba's own locators
take over.
"""
import functools
import hashlib
import os
import pathlib
import sys
import tempfile

PACKAGE = pathlib.Path(__file__).resolve().parent


def cache_dir():
    """The folder fastbp's compiled kernels are kept in (see the module's docstring)."""
    from .._version import __version__
    leaf = f"{__version__}-py{sys.version_info[0]}.{sys.version_info[1]}"
    if os.environ.get("FASTBP_CACHE_DIR"):
        return pathlib.Path(os.environ["FASTBP_CACHE_DIR"]).expanduser() / leaf
    if os.environ.get("NUMBA_CACHE_DIR"):
        return pathlib.Path(os.environ["NUMBA_CACHE_DIR"]).expanduser() / "fastbp" / leaf
    if sys.platform == "win32":
        base = pathlib.Path(os.environ.get("LOCALAPPDATA", pathlib.Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = pathlib.Path.home() / "Library" / "Caches"
    else:
        base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    return base / "fastbp" / leaf


# Switches that change the machine code the kernels compile to, not their sources: a cache
# made with one setting is not used with another.
CODE_SWITCHES = ("FASTBP_LINK_EARLY", "FASTBP_EMIT_ALL")


@functools.cache
def source_stamp():
    """A hash of every .py file of fastbp/_kernels (names and contents) and of the
    CODE_SWITCHES that are set."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for name in CODE_SWITCHES:
        if os.environ.get(name, "") not in ("", "0"):
            digest.update(f"{name}=1".encode())
    return digest.hexdigest()


@functools.cache
def stamp_tag():
    """The short form of source_stamp() that names the files of its kernels."""
    return _stamp_tag(source_stamp())


def holds_no_kernels():
    """Whether the cache folder can be written and holds no kernel of these sources yet: the
    first run in a new environment, or after an edit of the kernels."""
    folder, tag = cache_dir(), stamp_tag()
    if not _writable(str(folder)):
        return False
    return not any(tag in name for name in os.listdir(folder))


@functools.cache
def _writable(path):
    """Whether the cache folder can be made and written: checked once per process, not once
    per kernel (backprop defines over a hundred)."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def install():
    """Put fastbp's locator first in Numba's list (before the first cached @njit)."""
    from numba.core import caching

    class FastbpCacheLocator(caching._CacheLocator):
        """Numba cache locator for the functions of fastbp/_kernels."""

        def __init__(self, py_func, py_file):
            self._lineno = py_func.__code__.co_firstlineno
            self._path = str(cache_dir())

        def get_cache_path(self):
            return self._path

        def ensure_cache_path(self):  # Numba asks for every kernel: one check per process
            if not _writable(self._path):
                raise OSError(f"cannot write fastbp's kernel cache in {self._path}")

        def get_source_stamp(self):
            return source_stamp()

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            if pathlib.Path(py_file).resolve().parent != PACKAGE:
                return None
            locator = cls(py_func, py_file)
            # not writable here: Numba's own locators decide
            return locator if _writable(locator.get_cache_path()) else None

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    locators = getattr(impl, "_locator_classes", None)
    if locators is None:  # a Numba whose internals moved: its own locators serve
        return
    if not any(c.__name__ == "FastbpCacheLocator" for c in locators):
        locators.insert(0, FastbpCacheLocator)
    _make_saves_process_safe(caching.IndexDataCacheFile)
    _load_without_refresh(caching.Cache)


def _make_saves_process_safe(cache_file_class):
    """Numba names a function's cached machine code by number, the first number its index does
    not use yet. Two processes compiling two signatures of one kernel at once (`fastbp
    compile`'s workers, the test suite's, a sweep's) can read the same index, take the same
    number, and leave an index that sends one signature to the other's code: a crash when it
    is loaded. For fastbp's folder a file is named instead by hashes of the source stamp and
    the signature, and written before the index that points to it; the function's files of
    other stamps go. Two such saves can still lose one index entry (the last index written
    wins): that kernel is compiled again, never confused with another."""
    if getattr(cache_file_class, "_fastbp_safe", False):
        return
    numbered_save = cache_file_class.save

    def save(self, key, data):
        if os.path.dirname(self._index_path) != str(cache_dir()):
            return numbered_save(self, key, data)
        tag = _stamp_tag(self._source_stamp)
        digest = hashlib.sha256(repr((self._source_stamp, key)).encode()).hexdigest()[:20]
        name = self._data_name_pattern.replace("{number:d}", f"{tag}-{digest}")
        self._save_data(name, data)
        from . import _native
        _native.remember_save(data)
        overloads = self._load_index()
        if overloads.get(key) != name:
            overloads[key] = name
            self._save_index(overloads)
            _remove_other_stamps(self, tag)

    cache_file_class.save = save
    cache_file_class._fastbp_safe = True


def _load_without_refresh(cache_class):
    """Load a fastbp kernel from its cache without refreshing Numba's target context first.

    Numba's load_overload refreshes the context before every load: the first load of a
    process imports and installs every implementation registry Numba has (its numpy and
    Python builtins, linear algebra, random generators, typed containers...), which a
    program that only loads machine code never uses. That refresh was 0.2 s of the 0.55 s
    the cached XOR program spent in Python. Loading needs one thing of it, the runtime
    (NRT) whose symbols the code links against: that is initialised here. The rest it links
    against Numba registers when it is imported (its C helpers, libm) or when a kernel loads
    (a parallel kernel starts its threading layer). A kernel using hash(), a typed dict, set
    or str would also need symbols the refresh registers: fastbp's use none
    (tests/test_startup.py runs parallel, batch-normalised and recurrent kernels in a process
    that only loads them). A compile still refreshes the context as always (Numba's compiler
    does so itself), and kernels found elsewhere than fastbp's folder load as Numba loads
    them."""
    if getattr(cache_class, "_fastbp_no_refresh", False):
        return
    try:
        from numba.core.runtime import nrt
    except ImportError:  # pragma: no cover - a Numba whose internals moved: its own load
        return
    full_load = cache_class.load_overload

    def load_overload(self, sig, target_context):
        locator = getattr(getattr(self, "_impl", None), "locator", None)
        if type(locator).__name__ != "FastbpCacheLocator" or not hasattr(self, "_load_overload"):
            return full_load(self, sig, target_context)
        nrt.rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    cache_class.load_overload = load_overload
    cache_class._fastbp_no_refresh = True


def _stamp_tag(stamp):
    return hashlib.sha256(str(stamp).encode()).hexdigest()[:10]


def _remove_other_stamps(cache_file, tag):
    """Delete the function's code files of other source stamps (and Numba's numbered ones):
    hashed names are never reused, so an edit would leave the old ones behind for good. Files
    of this stamp stay, whichever process wrote them."""
    folder = os.path.dirname(cache_file._index_path)
    prefix = cache_file._data_name_pattern.split("{number:d}")[0]
    for name in os.listdir(folder):
        if name.startswith(prefix) and name.endswith(".nbc") and not name.startswith(prefix + tag):
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                pass
