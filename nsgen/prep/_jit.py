"""Numba set-up shared by nsgen's compiled kernels (``_stripe_jit``, ``_normalise_jit``).

Kernels are compiled on first use and cached on disk. Numba caches next to the source
(``__pycache__``); where the installed package is read-only (a shared environment on a
cluster) the cache goes to ``$XDG_CACHE_HOME/nsgen/numba`` (``~/.cache/nsgen/numba``)
instead, so that every process does not compile again. ``NUMBA_CACHE_DIR`` overrides both.
Compiled code is exact IEEE arithmetic in source order (no fast-math).

A cached kernel holds the code of every kernel it calls, from any module (Numba compiles
``normalise_row`` of ``_normalise_jit`` into the fused resize kernel of ``_resize_jit``),
and the constants it reads from them; but Numba checks a cache entry against its own
function's file only, and so kept loading a stale kernel after an edit of a function it
inlined. Every kernel of nsgen's :data:`JIT_SOURCES` is cached where Numba would cache it,
with an entry valid only for the content of all of them (:func:`sources_digest`, read once
per process): an edit of any recompiles each kernel once, on its next use.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence, TypedDict

import numba

if not os.environ.get("NUMBA_CACHE_DIR") and not os.access(Path(__file__).parent, os.W_OK):
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    numba.config.CACHE_DIR = str(base / "nsgen" / "numba")  # type: ignore[attr-defined]

#: the package's directory (the folder holding ``prep/``)
PACKAGE = Path(__file__).resolve().parents[1]

#: the modules (paths under :data:`PACKAGE`) whose code or constants compiled kernels hold:
#: every module that defines a kernel, and every nsgen module those import
#: (``tests/test_jit.py`` checks both)
JIT_SOURCES = ("io/_scan_jit.py", "io/_scan_normals.py", "prep/_jit.py", "prep/_normalise_jit.py",
               "prep/_patches_jit.py", "prep/_ratio_jit.py", "prep/_resize_jit.py",
               "prep/_robust_box_jit.py",
               "prep/_robust_decide_jit.py", "prep/_robust_jit.py", "prep/_robust_net.py",
               "prep/_robust_offsets_jit.py", "prep/_robust_plan.py",
               "prep/_robust_tall_jit.py", "prep/_scaling_jit.py", "prep/_stripe_jit.py")


@functools.lru_cache(maxsize=None)
def sources_digest() -> str:
    """SHA-256 of the content of every module of :data:`JIT_SOURCES` (read once per
    process: 16 files, ~0.2 ms); part of every nsgen kernel's cache stamp.

    Examples
    --------
    >>> len(sources_digest()), sources_digest() == sources_digest()
    (64, True)
    """
    h = hashlib.sha256()
    for name in JIT_SOURCES:
        h.update(name.encode() + b"\0")
        try:
            h.update((PACKAGE / name).read_bytes())
        except OSError:   # not a plain file (a zip import): its name alone
            h.update(b"\0")
    return h.hexdigest()


def _install_locator() -> None:
    """Put :class:`_SourcesLocator` first among Numba's cache locators (once: a reload
    replaces the one it put there). Without the Numba internals it uses (the locators'
    list of ``numba.core.caching.CacheImpl``, as in Numba 0.59-0.68), kernels cache as Numba
    caches them."""
    try:
        from numba.core import caching
        classes: list[Any] = caching.CacheImpl._locator_classes
        base: Any = caching._CacheLocator
    except (ImportError, AttributeError):  # pragma: no cover - another Numba
        return

    class _SourcesLocator(base):
        """The cache of an nsgen kernel: where the locator Numba would pick puts it, its
        entries stamped with their file's stamp and :func:`sources_digest`."""

        nsgen_sources = True

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def ensure_cache_path(self) -> None:
            self._inner.ensure_cache_path()

        def get_cache_path(self) -> str:
            return self._inner.get_cache_path()

        def get_source_stamp(self) -> Any:
            return self._inner.get_source_stamp(), sources_digest()

        def get_disambiguator(self) -> str:
            return self._inner.get_disambiguator()

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            try:
                Path(py_file).resolve().relative_to(PACKAGE)
            except (OSError, ValueError):   # not nsgen's: Numba's own locators
                return None
            for other in classes:
                if not getattr(other, "nsgen_sources", False):
                    inner = other.from_function(py_func, py_file)
                    if inner is not None:
                        return cls(inner)
            return None

    classes[:] = [_SourcesLocator, *(c for c in classes if not getattr(c, "nsgen_sources", False))]


_install_locator()


def cache_root() -> str:
    """The directory under which Numba caches every kernel (``NUMBA_CACHE_DIR``, or the
    user cache set above for a read-only package); ``""`` when it caches beside each
    source, in ``__pycache__``.

    Examples
    --------
    >>> isinstance(cache_root(), str)
    True
    """
    return str(getattr(numba.config, "CACHE_DIR", "") or "")


def cache_stamp(py_func: Any, py_file: str | Path) -> Any:
    """The source stamp Numba's cache gives the compiled ``py_func`` of the file
    ``py_file`` (its entries load only under that stamp): that of the first of Numba's
    cache locators that takes the function, as Numba picks it (nsgen's own first, for the
    package's files); None without one, or without the Numba internals this reads (as
    :func:`_install_locator`).
    """
    try:
        from numba.core import caching
        classes: list[Any] = caching.CacheImpl._locator_classes
    except (ImportError, AttributeError):   # pragma: no cover - another Numba
        return None
    for cls in classes:
        try:
            locator = cls.from_function(py_func, str(py_file))
            if locator is not None:
                return locator.get_source_stamp()
        except OSError:
            return None
    return None


def loads_index(index: Path, stamp: Any) -> bool:
    """Whether Numba loads entries from the cache index file ``index``: written by this
    Numba, for the source stamp ``stamp`` (:func:`cache_stamp`), with an entry (as
    ``IndexDataCacheFile._load_index`` reads it)."""
    import pickle
    try:
        with open(index, "rb") as f:
            if pickle.load(f) != numba.__version__:
                return False
            have, overloads = pickle.loads(f.read())
    except Exception:   # noqa: BLE001 - unreadable or not an index: Numba compiles
        return False
    return bool(have == stamp and overloads)


class JitOptions(TypedDict):
    """Keyword arguments of ``numba.njit`` that every kernel shares."""

    nogil: bool
    cache: bool
    boundscheck: bool
    error_model: Literal["python", "numpy"]


#: options of every compiled kernel
JIT: JitOptions = {"nogil": True, "cache": True, "boundscheck": False, "error_model": "numpy"}


def load_in_turn(loaders: Sequence[tuple[str, Callable[[], object]]],
                 lock_dir: Path | None = None) -> list[str]:
    """Run every loader once, taking turns with other processes that run the same loaders.

    A loader calls compiled kernels so that they load from the cache, or compile into it
    the first time. Each runs under an exclusive lock (``flock`` on a file in ``lock_dir``,
    the temporary directory by default, named after the loader and this checkout's kernel
    cache); one that another process holds is left for later. So workers that start on an
    empty cache compile different kernels at the same time and then load each other's
    from the cache (each kernel is compiled once, not once per worker), while on a full
    cache the locks cost microseconds. Without locks (no ``fcntl``, a file that cannot
    be opened) the loaders just run. Returns the loaders' names in the order they ran.

    Examples
    --------
    >>> load_in_turn([("a", lambda: None), ("b", lambda: None)])
    ['a', 'b']
    """
    try:
        import fcntl
    except ImportError:   # pragma: no cover - not POSIX
        fcntl = None   # type: ignore[assignment]
    where = cache_root() or str(Path(__file__).parent)
    tag = hashlib.sha1(where.encode()).hexdigest()[:12]
    directory = Path(lock_dir or tempfile.gettempdir())
    pending, done, wait = list(loaders), [], False
    while pending:
        for item in list(pending):
            name, load = item
            fd = -1
            if fcntl is not None:
                try:
                    fd = os.open(directory / f"nsgen-jit-{tag}-{name}.lock",
                                 os.O_RDWR | os.O_CREAT, 0o666)
                except OSError:
                    fd = -1
            try:
                if fd >= 0:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                    except BlockingIOError:
                        continue   # another process has it: next loader, back later
                load()
                done.append(name)
                pending.remove(item)
            finally:
                if fd >= 0:
                    os.close(fd)   # and with it the lock
        wait = True
    return done


#: the module Numba imports to check for a BLAS when its CPU target is set up
#: (``numba.np.arraymath``, at the first kernel a process compiles or loads): importing it
#: imports ``scipy.linalg`` (0.1-0.17 s)
BLAS_PROBE = "scipy.linalg.cython_blas"


@contextmanager
def without_blas_probe(skip: bool = True) -> Iterator[None]:
    """Within it (when ``skip``), Numba's CPU target is set up without its BLAS check: the
    import of :data:`BLAS_PROBE` fails at once (``None`` in ``sys.modules``), and Numba then
    takes BLAS for missing.

    No kernel of nsgen calls BLAS. Without it, Numba computes the inner products of
    ``np.correlate`` and ``np.convolve`` with a loop of its own (``tests/test_jit.py`` checks
    that no kernel source calls those, ``np.dot`` or ``np.linalg``). For the forkserver's
    preload (:func:`preload`), where the check sat on the path of every run's start: the
    forkserver is its only caller, and forks only nsgen's own processes.

    It does nothing where the probe or Numba's target already ran (``tests/test_jit.py``
    runs it in a fresh interpreter).

    Examples
    --------
    >>> with without_blas_probe(skip=False):
    ...     sys.modules.get(BLAS_PROBE, "not blocked") is None
    False
    """
    if not skip or BLAS_PROBE in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules[BLAS_PROBE] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if BLAS_PROBE in sys.modules and sys.modules[BLAS_PROBE] is None:
            del sys.modules[BLAS_PROBE]


def preload(warm: Callable[[], object], in_forkserver: bool = False) -> Callable[[], bool]:
    """The ``load()`` of a forkserver preload module (``_scaling_preload``,
    ``_robust_preload``): a function that runs ``warm`` (calls of compiled kernels on tiny
    inputs: they load from Numba's cache, or compile into it the first time) and returns
    whether it ran. ``in_forkserver`` (:func:`nsgen.engine.fastexit.in_forkserver` of the
    module calling this): Numba's target is set up without its BLAS check
    (:func:`without_blas_probe`).

    A failure is left to the workers, who would meet it again and report it: a preload is
    an optimisation only, and an exception other than ``ImportError`` would stop the
    forkserver.

    Examples
    --------
    >>> preload(lambda: None)(), preload(lambda: 1 / 0)()
    (True, False)
    """
    def load() -> bool:
        try:
            with without_blas_probe(in_forkserver):
                warm()
            return True
        except Exception:  # noqa: BLE001 - see the docstring
            return False
    return load
