"""Chunking of the passes over a scan's detector rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from nsgen.engine.sizing import Sizing
from nsgen.runner import StageRunner

__all__ = ["MAX_AUTO_CHUNK", "row_sizing", "scan_sizing"]

#: automatic chunking never exceeds the seed's default chunk size
MAX_AUTO_CHUNK = 243


def row_sizing(run: StageRunner, n_rows: int, **kw: Any) -> Sizing:
    """``run.sizing`` for a pass over ``n_rows`` detector rows of a scan (automatic chunks
    of at most :data:`MAX_AUTO_CHUNK` rows); ``kw`` as for
    :meth:`~nsgen.runner.StageRunner.sizing`."""
    return run.sizing(n_rows=n_rows, max_chunk_rows=MAX_AUTO_CHUNK, **kw)


def scan_sizing(run: StageRunner, shape: tuple[int, int, int], dtype: str,
                float_copies: float, **kw: Any) -> Sizing:
    """Chunking for row chunks of a scan: one row = all angles x columns of raw data plus
    that row's mean flat and dark.

    ``float_copies`` counts float32 copies of a row a worker holds; ``kw`` (``halo``,
    ``worker_overhead``) as for :meth:`~nsgen.runner.StageRunner.sizing`.

    Examples
    --------
    >>> from nsgen.runner import Log
    >>> run = StageRunner(None, Log(False, False), workers=2, chunk_size=None,
    ...                   memory_limit=2**30, tag="doc")
    >>> s = scan_sizing(run, (1801, 2160, 2560), "<u2", 1.0)   # 9.2 MB per detector row
    >>> s.workers, s.chunk_rows, s.slots
    (2, 7, 3)
    """
    a, v, c = shape
    itemsize = np.dtype(dtype).itemsize
    return row_sizing(run, v, row_bytes=a * c * itemsize + 2 * c * 4,
                      work_factor=float_copies * 4 / itemsize, **kw)
