"""Numba set-up shared by nsgen's compiled kernels (``_stripe_jit``, ``_normalise_jit``).

Kernels are compiled on first use and cached on disk. Numba caches next to the source
(``__pycache__``); where the installed package is read-only (a shared environment on a
cluster) the cache goes to ``$XDG_CACHE_HOME/nsgen/numba`` (``~/.cache/nsgen/numba``)
instead, so that every process does not compile again. ``NUMBA_CACHE_DIR`` overrides both.
Compiled code is exact IEEE arithmetic in source order (no fast-math).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypedDict

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
