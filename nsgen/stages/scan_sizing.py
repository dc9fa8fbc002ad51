"""Chunking of the passes over a scan's detector rows."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from nsgen.engine.pipeline import Stage
from nsgen.engine.sizing import Sizing

__all__ = ["Execute", "MAX_AUTO_CHUNK", "Plan", "scan_sizing"]

#: automatic chunking never exceeds the seed's default chunk size
MAX_AUTO_CHUNK = 243

#: ``plan(row_bytes=..., work_factor=..., halo=..., worker_overhead=...) -> Sizing`` of a
#: pass over the scan's rows
Plan = Callable[..., Sizing]
#: ``execute(stage, sizing) -> chunk values`` runs a stage on the engine
Execute = Callable[[Stage, Sizing], list[Any]]


def scan_sizing(plan: Plan, shape: tuple[int, int, int], dtype: str, float_copies: float,
                **kw: Any) -> Sizing:
    """Chunking for row chunks of a scan: one row = all angles x columns of raw data plus
    that row's mean flat and dark.

    ``plan(row_bytes=..., work_factor=..., **kw)`` makes the :class:`Sizing`;
    ``float_copies`` counts float32 copies of a row a worker holds.

    Examples
    --------
    >>> scan_sizing(lambda **kw: kw, (10, 4, 8), "<u2", 1.0)
    {'row_bytes': 224, 'work_factor': 2.0}
    """
    a, _, c = shape
    itemsize = np.dtype(dtype).itemsize
    return plan(row_bytes=a * c * itemsize + 2 * c * 4,
                work_factor=float_copies * 4 / itemsize, **kw)
