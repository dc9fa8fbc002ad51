"""Per-process reusable work buffers for stages (one set per worker process).

Allocating a fresh multi-GB array for every chunk costs a page fault per 4 KiB page each
time (and much more in some virtual machines); a stage that asks for its large temporaries
here gets the same memory back chunk after chunk.

When a worker starts a new stage the engine calls :func:`retire`: the previous stage's
buffers become spares, which the new stage's requests reuse (a spare large enough, but not
more than ``_REUSE`` times the request: the stage's sizing did not count more) so that
consecutive stages do not fault their memory in again. A request no spare can serve frees
every spare first, so a process never holds more than the larger of the two stages' buffers
plus what it is reusing, and spares left unused are freed after the stage's first chunk
(:func:`trim`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["buffer", "release", "retire", "trim"]

_BUFFERS: dict[str, np.ndarray] = {}
_SPARES: list[np.ndarray] = []
#: a spare serves a request of at least 1 / _REUSE of its size (a larger one is freed)
_REUSE = 2


def buffer(name: str, shape: tuple[int, ...], dtype: np.dtype | str | type) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` backed by this process's buffer ``name``.

    The contents are undefined. The buffer grows when a larger array is asked for; views
    handed out earlier under the same name must not be used after the next call.

    Examples
    --------
    >>> a = buffer("doc", (2, 3), "float32")
    >>> b = buffer("doc", (3, 2), "float32")
    >>> bool(np.shares_memory(a, b))
    True
    >>> release()
    """
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    buf = _BUFFERS.get(name)
    if buf is None or buf.nbytes < nbytes:
        _BUFFERS.pop(name, None)  # free the old one before taking a larger one
        buf = _BUFFERS[name] = _take(max(nbytes, 1))
    return buf[:nbytes].view(dt).reshape(shape)


def _take(nbytes: int) -> np.ndarray:
    """The smallest spare of ``nbytes`` to ``_REUSE * nbytes``, else a new buffer (after
    freeing spares)."""
    fits = [i for i, s in enumerate(_SPARES) if nbytes <= s.nbytes <= _REUSE * nbytes]
    if fits:
        return _SPARES.pop(min(fits, key=lambda i: _SPARES[i].nbytes))
    _SPARES.clear()
    return np.empty(nbytes, dtype=np.uint8)


def retire() -> None:
    """Make every buffer a spare for the next stage."""
    _SPARES.extend(_BUFFERS.values())
    _BUFFERS.clear()


def trim() -> None:
    """Free the spares the current stage did not reuse (the engine calls it after a chunk)."""
    _SPARES.clear()


def release() -> None:
    """Drop every buffer and spare of this process."""
    _BUFFERS.clear()
    _SPARES.clear()
