"""Numba set-up shared by nsgen's compiled kernels (``_stripe_jit``, ``_normalise_jit``).

Kernels are compiled on first use and cached on disk. Numba caches next to the source
(``__pycache__``); where the installed package is read-only (a shared environment on a
cluster) the cache goes to ``$XDG_CACHE_HOME/nsgen/numba`` (``~/.cache/nsgen/numba``)
instead, so that every process does not compile again. ``NUMBA_CACHE_DIR`` overrides both.
Compiled code is exact IEEE arithmetic in source order (no fast-math).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Literal, Sequence, TypedDict

import numba

if not os.environ.get("NUMBA_CACHE_DIR") and not os.access(Path(__file__).parent, os.W_OK):
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    numba.config.CACHE_DIR = str(base / "nsgen" / "numba")  # type: ignore[attr-defined]


class JitOptions(TypedDict):
    """Keyword arguments of ``numba.njit`` that every kernel shares."""

    nogil: bool
    cache: bool
    boundscheck: bool
    error_model: Literal["python", "numpy"]


#: options of every compiled kernel
JIT: JitOptions = {"nogil": True, "cache": True, "boundscheck": False, "error_model": "numpy"}


def load_in_turn(loaders: Sequence[tuple[str, Callable[[], None]]],
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
    where = str(getattr(numba.config, "CACHE_DIR", "") or Path(__file__).parent)
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


def preload(warm: Callable[[], object]) -> Callable[[], bool]:
    """The ``load()`` of a forkserver preload module (``_scaling_preload``,
    ``_robust_preload``): a function that runs ``warm`` (calls of compiled kernels on tiny
    inputs: they load from Numba's cache, or compile into it the first time) and returns
    whether it ran.

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
            warm()
            return True
        except Exception:  # noqa: BLE001 - see the docstring
            return False
    return load
