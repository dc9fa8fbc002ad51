"""Per-process reusable work buffers for stages (one set per worker process).

Allocating a fresh multi-GB array for every chunk costs a page fault per 4 KiB page each
time (and much more in some virtual machines); a stage that asks for its large temporaries
here gets the same memory back chunk after chunk. The engine releases every buffer when a
worker starts a new stage, so a stage's buffers never outlive it (the memory limit holds
stage by stage).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["buffer", "release"]

_BUFFERS: dict[str, np.ndarray] = {}


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
        _BUFFERS.pop(name, None)  # free the old one before allocating the larger one
        buf = _BUFFERS[name] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return buf[:nbytes].view(dt).reshape(shape)


def release() -> None:
    """Drop every buffer of this process."""
    _BUFFERS.clear()
