"""Cached kernels run without importing Numba.

A process that found its kernels in the cache still paid for Numba itself: importing it
(0.2 s here), making a dispatcher for each of the ~160 functions of fastbp/_kernels
(0.15 s) and loading each kernel's machine code through Numba's cache (0.05 s a kernel).
On the digits drop-in program that was more than the whole fit, and more than
scikit-learn's whole program. Yet what runs is plain machine code: a kernel's object code,
Numba's C helpers (its runtime, NRT, which allocates arrays; BLAS's gemm) and the CPython
wrapper that Numba compiled into the same object code, which checks and unpacks the
arguments and releases the GIL.

So when Numba runs a kernel that Python calls (fastbp._kernels.CALLED_FROM_PYTHON), this
module keeps a copy of that kernel's object code, as Numba's cache holds it, in fastbp's
cache folder (native/), with what it links against. A later process that calls the kernel
with arguments of the same kinds links that copy into its memory itself (`link`: the
objects LLVM makes for Numba's JIT use the large code model, whose only relocations are
absolute and PC-relative 64-bit addresses), resolves its symbols to Numba's C helpers (from
Numba's extension modules, loaded without Numba's Python code) and to the process's own
(libm, CPython), and calls its wrapper as Numba's dispatcher would: the same machine code,
so the same bits. Numba is imported only for what no copy serves: a new kind of arguments,
a parallel kernel (whose threads Numba starts), or a switch set below.

A copy serves only calls whose arguments have the kinds it was made for (`key_of`: each
array's dtype, dimensions, layout, writeability and alignment; each scalar's kind; the
codes compiled in), only with the source stamp, the CPU and the Numba files it was made
with, and only if all of its symbols resolve here; anything else goes to Numba.
FASTBP_NATIVE=0 turns it off; so do NUMBA_DISABLE_JIT and a CPU chosen through
NUMBA_CPU_NAME or NUMBA_CPU_FEATURES. Linux on x86-64 only: elsewhere Numba serves every
call.
"""
import builtins
import ctypes
import hashlib
import importlib.machinery
import importlib.util
import json
import mmap
import os
import struct
import sys
import tempfile
import threading

import numpy as np

from . import _cache
from .codes import CompiledIn, Pack

FORMAT = 1
_MISSING = object()
_UNSUPPORTED = object()
# ndarray flags a kernel's type depends on: C_CONTIGUOUS, F_CONTIGUOUS, ALIGNED, WRITEABLE
_FLAGS = 0x1 | 0x2 | 0x100 | 0x400
_INT64 = (-(1 << 63), 1 << 63)


def enabled():
    """Whether cached copies may serve calls here (see the module's docstring)."""
    env = os.environ
    return (env.get("FASTBP_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")
            and env.get("NUMBA_DISABLE_JIT", "0").strip() in ("", "0")
            and not env.get("NUMBA_CPU_NAME") and not env.get("NUMBA_CPU_FEATURES")
            and sys.platform.startswith("linux") and os.uname().machine == "x86_64"
            and sys.maxsize > 2 ** 32)


# -- the kinds of arguments ------------------------------------------------------------------

def key_of(value):
    """What Numba's type of `value` depends on, as a hashable value made quickly (every call
    makes one): equal keys, equal Numba types. _UNSUPPORTED for a value this module leaves to
    Numba (a subclass of ndarray, a list, an object...)."""
    kind = type(value)
    if kind is np.ndarray:
        return (value.dtype, value.ndim, value.flags.num & _FLAGS)
    if kind is tuple or kind is Pack:
        items = tuple(key_of(item) for item in value)
        return _UNSUPPORTED if _UNSUPPORTED in items else ("T",) + items
    if kind is bool:
        return "b"
    if kind is int:  # Numba: int64, or uint64 past it
        return "i" if _INT64[0] <= value < _INT64[1] else "u" if 0 <= value < 1 << 64 else \
            _UNSUPPORTED
    if kind is float:
        return "f"
    if value is None:
        return "n"
    if isinstance(value, CompiledIn):
        return value.type_name()
    if isinstance(value, np.generic):
        return ("S", value.dtype)
    return _UNSUPPORTED


def _text(key):
    """A key as text for file names (dtypes by name); None if a part is not supported."""
    if isinstance(key, np.dtype):
        if not key.isnative or key.kind not in "biufc" or key.fields is not None:
            return None
        return key.str
    if isinstance(key, tuple):
        parts = [_text(k) for k in key]
        return None if None in parts else "(" + ",".join(parts) + ")"
    return repr(key)


# -- the copies in the cache folder ----------------------------------------------------------

def _folder():
    return _cache.cache_dir() / "native"


def _paths(name, text):
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    base = _folder() / f"{name}-{_cache.stamp_tag()}-{digest}"
    return base.with_suffix(".json"), base.with_suffix(".o")


def _host():
    """This machine and runtime as a copy records them: the CPU (what /proc/cpuinfo says of
    the first processor, which Numba's compiler saw through LLVM) and the Numba C extensions
    the copy links against (path, size and time of each file)."""
    global _HOST
    if _HOST is None:
        cpu = []
        try:
            with open("/proc/cpuinfo", "rb") as f:
                for line in f:
                    if not line.strip():
                        break
                    field, _, value = line.partition(b":")
                    if field.strip() in (b"vendor_id", b"cpu family", b"model", b"model name",
                                         b"stepping", b"flags"):
                        cpu.append(value.strip().decode(errors="replace"))
        except OSError:
            pass
        files = []
        for path in _extension_paths().values():
            st = os.stat(path)
            files.append([path, st.st_size, st.st_mtime_ns])
        _HOST = [os.uname().machine, hashlib.sha256("\n".join(cpu).encode()).hexdigest(),
                 files] if cpu else ["unknown CPU"]  # (matches no copy: none is made or run)
    return _HOST


_HOST = None
_EXTENSIONS = {"numba._helperlib": ("_helperlib",), "numba._dynfunc": ("_dynfunc",),
               "numba.core.runtime._nrt_python": ("core", "runtime", "_nrt_python")}


def _extension_paths():
    """The files of the Numba C extensions a copy needs, found without importing Numba."""
    global _EXTENSION_PATHS
    if _EXTENSION_PATHS is None:
        spec = importlib.util.find_spec("numba")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("numba is not installed")
        root = spec.submodule_search_locations[0]
        paths = {}
        for module, parts in _EXTENSIONS.items():
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(root, *parts[:-1], parts[-1] + suffix)
                if os.path.exists(path):
                    paths[module] = path
                    break
            else:
                raise ImportError(f"no extension file for {module}")
        _EXTENSION_PATHS = paths
    return _EXTENSION_PATHS


_EXTENSION_PATHS = None


# -- writing a copy (in a process that ran the kernel through Numba) -------------------------

_SAVED = {}  # (function's qualified name, signature) -> what Numba's cache saved, this process


def remember_save(data):
    """Called with what Numba saves to its cache for one of fastbp's functions (a compile in
    this process): offer() then needs not read it back. Kept for the kernels Python calls,
    without their LLVM bitcode (only the object code is copied)."""
    from . import CALLED_FROM_PYTHON
    try:
        libdata, fndesc, signature = data[0], data[1], data[3]
        if fndesc.qualname in CALLED_FROM_PYTHON and enabled():
            trimmed = ((libdata[0], libdata[1], (libdata[2][0], None)),) + tuple(data[1:])
            _SAVED[(fndesc.qualname, tuple(signature.args))] = trimmed
    except (IndexError, TypeError, AttributeError):  # pragma: no cover - another format
        pass


def offer(name, dispatcher, args, key):
    """After Numba ran kernel `name` on `args` (of kinds `key`): keep a copy of the machine
    code it ran, for later processes. Never fails a call: a copy that cannot be made (an
    entry kept as bitcode, another Numba's format) is simply not made."""
    try:
        text = _text(key)
        if text is None or not enabled():
            return
        json_path, object_path = _paths(name, text)
        signature = tuple(dispatcher.typeof_pyval(a) for a in args)
        cres = dispatcher.overloads.get(signature)
        if cres is None:
            return
        data = _SAVED.get((cres.fndesc.qualname, signature))
        if data is None:
            cache = getattr(dispatcher, "_cache", None)
            if cache is None or not hasattr(cache, "_cache_file"):
                return
            data = cache._cache_file.load(cache._index_key(signature, cres.library.codegen))
        record = _record(name, text, data)
        if record is None:
            return
        try:
            if json.loads(json_path.read_bytes()) == record:
                return  # (another process made it)
        except (OSError, ValueError):
            pass
        _write(object_path, data[0][2][0])
        _write(json_path, json.dumps(record).encode())
        _remove_other_stamps(name)
    except Exception:  # noqa: BLE001 - a copy is an optimisation: never a failure of the call
        return


def _record(name, text, data):
    """The copy's description, or None where this module cannot run it."""
    if not (isinstance(data, tuple) and len(data) == 9):
        return None
    libdata, fndesc, env, _signature, objectmode, lifted, _ann, reload_init, _envs = data
    if objectmode or lifted or reload_init or getattr(env, "consts", [None]):
        return None  # code that needs Python objects of its environment
    if not (isinstance(libdata, tuple) and len(libdata) == 3 and libdata[1] == "object"):
        return None  # kept as LLVM bitcode (a callee's entry): Numba compiles it on load
    code = libdata[2][0]
    if not isinstance(code, bytes):
        return None
    try:
        _layout(code)  # sections and relocations this module can link
    except _Unsupported:
        return None
    defined, undefined = elf_symbols(code)
    wrapper = fndesc.llvm_cpython_wrapper_name
    if wrapper not in defined or fndesc.env_name not in defined:
        return None
    if any(".numba.unresolved$" in s for s in defined | undefined):
        return None  # recursion Numba resolves at run time
    host = _host()
    if len(host) < 3:
        return None
    environments = sorted(symbol for symbol in defined if symbol.startswith("_ZN08NumbaEnv"))
    if fndesc.env_name not in environments or any(
            getattr(e, "consts", [None]) for e in _envs):
        return None
    return dict(format=FORMAT, kernel=name, key=text, wrapper=wrapper,
                environment=fndesc.env_name, environments=environments, qualname=fndesc.qualname,
                sha256=hashlib.sha256(code).hexdigest(), undefined=sorted(undefined),
                host=host)


def _write(path, payload):
    """Write a file whole or not at all (another process may read it at any time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_other_stamps(name):
    """Copies of this kernel made from other sources go (they would never load again)."""
    keep = f"{name}-{_cache.stamp_tag()}-"
    prefix = f"{name}-"
    folder = _folder()
    for entry in os.listdir(folder):
        rest = entry[len(prefix):]
        if (entry.startswith(prefix) and not entry.startswith(keep)
                and rest[:10].isalnum() and rest[10:11] == "-"):
            try:
                os.remove(folder / entry)
            except OSError:
                pass


# -- ELF: reading and linking an object file -------------------------------------------------

class _Unsupported(Exception):
    """An object file this module does not link (Numba serves its kernel)."""


_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR, _SHF_TLS = 0x1, 0x2, 0x4, 0x400
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_RELA, _SHT_NOBITS, _SHT_REL = 1, 2, 4, 8, 9
_SHT_X86_64_UNWIND = 0x70000001
_SHN_UNDEF, _SHN_ABS, _SHN_COMMON = 0, 0xFFF1, 0xFFF2
_R_X86_64_NONE, _R_X86_64_64, _R_X86_64_PC64 = 0, 1, 24
_MASK64 = (1 << 64) - 1


def _sections(code):
    """The section headers of an x86-64 ELF64 relocatable object: (name, type, flags, addr,
    offset, size, link, info, align, entsize) each."""
    if code[:6] != b"\x7fELF\x02\x01" or struct.unpack_from("<HH", code, 16) != (1, 62):
        raise _Unsupported("not an x86-64 ELF64 relocatable object")
    shoff, = struct.unpack_from("<Q", code, 0x28)
    entsize, count, names = struct.unpack_from("<HHH", code, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", code, shoff + i * entsize) for i in range(count)]
    at = headers[names][4]
    return [(_string(code, at + h[0]),) + h[1:] for h in headers]


def _string(code, at):
    return code[at:code.index(b"\0", at)].decode()


def _symbols(code, sections):
    """Every entry of the symbol table: (offset of the entry, name, info, section, value,
    size)."""
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind == _SHT_SYMTAB:
            strings = sections[link][4]
            out = []
            for at in range(offset, offset + size, entsize):
                st_name, info, _other, shndx, value, sym_size = struct.unpack_from(
                    "<IBBHQQ", code, at)
                out.append((at, _string(code, strings + st_name) if st_name else "", info,
                            shndx, value, sym_size))
            return out
    return []


def elf_symbols(code):
    """(defined, undefined) global symbol names of the object file."""
    defined, undefined = set(), set()
    for _at, name, info, shndx, _value, _size in _symbols(code, _sections(code)):
        if info >> 4 and name:  # global or weak
            (undefined if shndx == _SHN_UNDEF else defined).add(name)
    return defined, undefined


def _layout(code):
    """Where each loaded section, and each COMMON symbol, goes: three regions of whole pages,
    as LLVM's own JIT lays them out: "x" code (executable once linked), "r" read-only data
    and "w" writable data. (Code placed after constants, off its page's start, ran the
    same machine code 4% slower on 8-32-2 case updating.) Raises _Unsupported for
    what `link` does not handle: thread-local data, constructors, other relocations."""
    sections = _sections(code)
    place, sizes = {}, {"x": 0, "r": 0, "w": 0}

    def put(region, size, align):
        align = max(align, 1)
        if align > mmap.PAGESIZE or align & (align - 1):
            raise _Unsupported(f"alignment {align}")
        start = -(-sizes[region] // align) * align
        sizes[region] = start + size
        return region, start

    for i, (name, kind, flags, _a, _off, size, _l, _i, align, _e) in enumerate(sections):
        if not flags & _SHF_ALLOC or kind == _SHT_X86_64_UNWIND or name.startswith(".eh_frame"):
            continue  # (unwinding tables: the kernels raise no C++ exceptions)
        if kind not in (_SHT_PROGBITS, _SHT_NOBITS) or flags & _SHF_TLS or name.startswith(
                (".init_array", ".fini_array", ".preinit_array", ".ctors", ".dtors")):
            raise _Unsupported(f"section {name}")
        place[i] = put("w" if flags & _SHF_WRITE else "x" if flags & _SHF_EXECINSTR else "r",
                       size, align)
    symbols = _symbols(code, sections)
    commons = {at: put("w", size, value)[1] for at, _n, _i, shndx, value, size in symbols
               if shndx == _SHN_COMMON}
    for _name, kind, _f, _a, offset, size, _l, target, _al, entsize in sections:
        if kind == _SHT_REL and target in place:
            raise _Unsupported("REL relocations")
        if kind == _SHT_RELA and target in place:
            for at in range(offset, offset + size, entsize):
                r_offset, info, _addend = struct.unpack_from("<QQq", code, at)
                if info & 0xFFFFFFFF not in (_R_X86_64_NONE, _R_X86_64_64, _R_X86_64_PC64):
                    raise _Unsupported(f"relocation type {info & 0xFFFFFFFF}")
                if r_offset + 8 > sections[target][5] or info >> 32 >= len(symbols):
                    raise _Unsupported("a relocation outside its section")
    return sections, symbols, place, commons, sizes


def link(code, resolve):
    """Load an object file into executable memory: its sections placed, its COMMON symbols
    given zeroed room, its undefined symbols resolved by `resolve(name)` (an address, or None:
    _Unsupported), its relocations applied, its code then made read-only and executable.
    Returns ({global symbol: address}, the memory, to be kept alive as long as the code)."""
    sections, symbols, place, commons, sizes = _layout(code)
    page = mmap.PAGESIZE
    size_x, size_r, size_w = (-(-sizes[r] // page) * page for r in "xrw")
    memory = mmap.mmap(-1, max(size_x + size_r + size_w, page),
                       prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    region_at = {"x": 0, "r": size_x, "w": size_x + size_r}  # offsets in `memory`
    for i, (region, start) in place.items():
        _n, kind, _f, _a, offset, size = sections[i][:6]
        if kind == _SHT_PROGBITS and size:
            at = region_at[region] + start
            memory[at:at + size] = code[offset:offset + size]
    addresses, defined = [None] * len(symbols), {}
    for number, (at, name, info, shndx, value, _size) in enumerate(symbols):
        if shndx == _SHN_UNDEF:
            address = resolve(name) if name else 0
            if address is None:
                raise _Unsupported(f"symbol {name}")
        elif shndx == _SHN_ABS:
            address = value
        elif shndx == _SHN_COMMON:
            address = base + region_at["w"] + commons[at]
        elif shndx in place:
            region, start = place[shndx]
            address = base + region_at[region] + start + value
        else:
            continue  # in a section not loaded (.eh_frame)
        addresses[number] = address
        if info >> 4 and name and shndx != _SHN_UNDEF:
            defined[name] = address
    for _name, kind, _f, _a, offset, size, _l, target, _al, entsize in sections:
        if kind != _SHT_RELA or target not in place:
            continue
        region, start = place[target]
        for at in range(offset, offset + size, entsize):
            r_offset, info, addend = struct.unpack_from("<QQq", code, at)
            kind_r = info & 0xFFFFFFFF
            if kind_r == _R_X86_64_NONE:
                continue
            symbol = addresses[info >> 32] if info >> 32 < len(addresses) else None
            if symbol is None:
                raise _Unsupported("a relocation against a section not loaded")
            where = region_at[region] + start + r_offset
            value = symbol + addend
            if kind_r == _R_X86_64_PC64:
                value -= base + where
            struct.pack_into("<Q", memory, where, value & _MASK64)
    for start, size, prot in ((0, size_x, mmap.PROT_READ | mmap.PROT_EXEC),
                              (size_x, size_r, mmap.PROT_READ)):
        if size and _protect(base + start, size, prot) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
    return defined, memory


def _protect(address, size, prot):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    libc.mprotect.restype = ctypes.c_int
    return libc.mprotect(ctypes.c_void_p(address), size, prot)


# -- loading a copy --------------------------------------------------------------------------

_lock = threading.RLock()
_runtime = {}
# The C math functions Numba binds to its own helper library's entries, not to whatever the
# process finds first (numba.core.intrinsics.INTR_MATH, bound in numba.core.externals): the
# same symbol version of libm, so the same bits (log(-1) is a NaN of another sign in glibc's
# newer version). tests/test_native.py checks this list against Numba's.
MATH = frozenset("""
acos acosf acosh acoshf asin asinf asinh asinhf atan atan2 atan2f atanf atanh atanhf ceil ceilf
cos cosf cosh coshf exp expf expm1 expm1f fabs fabsf floor floorf fmod fmodf log log10 log10f
log1p log1pf logf pow powf round roundf sin sinf sinh sinhf sqrt sqrtf tan tanf tanh tanhf
trunc truncf""".split())
# Symbols Numba registers itself (its threading layer, hashing, SVML): never taken from
# whatever else the process might export under those names.
_NUMBA_ONLY = ("numba_", "NRT_", "_numba_", "__svml_", "get_num_threads", "set_num_threads",
               "get_thread_id", "allocate_sched", "deallocate_sched", "do_scheduling",
               "set_parallel_chunksize", "get_parallel_chunksize", "get_sched_size",
               "parallel_for", "launch_threads", "synchronize", "ready", "add_task")


def _extension(module, path):
    """A Numba C extension module, loaded without running Numba's Python code. (A later
    import of Numba finds the same one: they initialise once per process, CPython keeping a
    copy of the module's dict.) Under the import lock, so that an import of Numba in another
    thread never sees the module listed and unlisted."""
    import _imp
    _imp.acquire_lock()
    try:
        if module in sys.modules:
            return sys.modules[module]
        loader = importlib.machinery.ExtensionFileLoader(module, path)
        spec = importlib.util.spec_from_file_location(module, path, loader=loader)
        loaded = importlib.util.module_from_spec(spec)
        if sys.modules.get(module) is loaded:  # its init listed it under Numba's name: unlist,
            del sys.modules[module]  # so that Numba's own import makes it a module of numba
        return loaded
    finally:
        _imp.release_lock()


def _symbols_here():
    """The process's table of the symbols Numba gives its code (as
    numba.core.base._load_global_helpers and numba.core.runtime.nrt register them), made on
    first use; and Numba's _dynfunc (its Environment and make_function)."""
    with _lock:
        if not _runtime:
            paths = _extension_paths()
            helperlib = _extension("numba._helperlib", paths["numba._helperlib"])
            dynfunc = _extension("numba._dynfunc", paths["numba._dynfunc"])
            nrt = _extension("numba.core.runtime._nrt_python",
                             paths["numba.core.runtime._nrt_python"])
            table = {"_Py_NoneStruct": id(None)}
            for helpers in (helperlib.c_helpers, dynfunc.c_helpers):
                table.update(("numba_" + name, address) for name, address in helpers.items())
            table.update((name, helperlib.c_helpers[name]) for name in MATH
                         if name in helperlib.c_helpers)
            table.update((name if name.startswith("_") else "NRT_" + name, address)
                         for name, address in nrt.c_helpers.items())
            table.update((f"PyExc_{obj.__name__}", id(obj)) for obj in vars(builtins).values()
                         if isinstance(obj, type) and issubclass(obj, BaseException))
            # as Numba's runtime does when it is imported, and when it starts
            nrt.memsys_use_cpython_allocator()
            if os.environ.get("NUMBA_NRT_STATS", "0").strip() not in ("", "0"):
                nrt.memsys_enable_stats()
            _runtime.update(table=table, process=ctypes.CDLL(None), dynfunc=dynfunc)
        return _runtime


def _resolve(name):
    """A symbol's address: Numba's helpers first, then the process (libc, CPython), except
    for names only Numba provides (None: such a copy is left to Numba)."""
    runtime = _symbols_here()
    address = runtime["table"].get(name)
    if address is None and not name.startswith(_NUMBA_ONLY):
        try:
            address = ctypes.cast(runtime["process"][name], ctypes.c_void_p).value
        except AttributeError:
            return None
    return address


class _Module:
    """What Numba's make_function reads of a module: its name."""

    def __init__(self, name):
        self.__name__ = name


def _load(name, key):
    """The callable of the copy of kernel `name` for arguments of kinds `key`, or None."""
    text = _text(key)
    if text is None:
        return None
    json_path, object_path = _paths(name, text)
    try:
        record = json.loads(json_path.read_bytes())
        code = object_path.read_bytes()
    except (OSError, ValueError):
        return None
    try:
        if (record.get("format") != FORMAT or record.get("key") != text
                or record.get("kernel") != name
                or hashlib.sha256(code).hexdigest() != record.get("sha256")):
            return None
        with _lock:
            if record["sha256"] in _LOADED:  # the same code for another key: linked once
                return _LOADED[record["sha256"]]
            if record.get("host") != _host() or len(record["host"]) < 3:
                return None
            if any(_resolve(s) is None for s in record["undefined"]):
                return None  # needs what Numba registers when it starts (its threads, say)
            defined, memory = link(code, _resolve)
            wrapper, env_slot = defined.get(record["wrapper"]), defined.get(record["environment"])
            if not wrapper or not env_slot:
                return None
            dynfunc = _symbols_here()["dynfunc"]
            # the kernel's environment and those of the functions linked into it (as Numba's
            # CompileResult._rebuild sets them), each a fresh one: none held constants
            envs = []
            for env_name in record["environments"]:
                slot = defined.get(env_name)
                if slot and env_name != record["environment"]:
                    envs.append(dynfunc.Environment({}))
                    ctypes.c_void_p.from_address(slot).value = id(envs[-1])
            env = dynfunc.Environment({})
            ctypes.c_void_p.from_address(env_slot).value = id(env)
            function = dynfunc.make_function(
                _Module("fastbp._kernels"), name, f"compiled wrapper for {record['qualname']}",
                wrapper, env, (env, envs, memory))
            _LOADED[record["sha256"]] = function
            return function
    except Exception:  # noqa: BLE001 - whatever went wrong, Numba serves the call
        return None


_LOADED = {}  # sha256 of an object code -> its wrapper, as linked in this process


# -- the kernels Python calls ----------------------------------------------------------------

class Kernel:
    """A kernel as the Python layer calls it (fastbp._kernels.<name>): a copy from the cache
    serves the call where one fits the arguments (see the module's docstring), Numba's
    dispatcher serves the rest, and after it this process keeps using Numba for those kinds
    of arguments. Attributes other than calling (signatures, overloads, py_func...) are the
    dispatcher's."""

    __slots__ = ("name", "_plans", "_offered")

    def __init__(self, name):
        self.name = name
        self._plans = {}  # key -> the copy's callable, or None: Numba's dispatcher
        self._offered = set()  # keys whose machine code Numba ran here, copied (or tried)

    def __call__(self, *args, **kwargs):
        if kwargs:
            return self.dispatcher(*args, **kwargs)
        key = key_of(args)
        plan = self._plans.get(key, _MISSING)
        if plan is _MISSING:
            plan = self._plans[key] = self._plan(key)
        if plan is not None:
            return plan(*args)
        dispatcher = self.dispatcher
        result = dispatcher(*args)
        if key not in self._offered:
            self._offered.add(key)
            if key is not _UNSUPPORTED:
                offer(self.name, dispatcher, args, key)
        return result

    def _plan(self, key):
        if key is _UNSUPPORTED or not enabled():
            return None
        return _load(self.name, key)

    @property
    def dispatcher(self):
        """Numba's dispatcher of this kernel (imports Numba; first runs BEFORE_NUMBA)."""
        from . import backprop
        for hook in BEFORE_NUMBA:
            hook()
        return getattr(backprop, self.name)

    def __getattr__(self, attr):
        return getattr(self.dispatcher, attr)

    def __reduce__(self):
        return kernel, (self.name,)

    def __repr__(self):
        return f"<fastbp kernel {self.name}>"


_KERNELS = {}
# Called before a kernel runs through Numba: fastbp._threads adds numba_started, which sets
# the thread counts that waited for Numba to be imported.
BEFORE_NUMBA = []


def kernel(name):
    """The Kernel of a name (one per process)."""
    found = _KERNELS.get(name)
    if found is None:
        found = _KERNELS.setdefault(name, Kernel(name))
    return found
