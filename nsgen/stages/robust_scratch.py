"""Scratch data of the robust detector's passes over a scan (:mod:`nsgen.stages.robust`):
pass one's features spilled one volume per angle set (:class:`FeatureSpills`), and the
angle-bin means of the rows the decision asks for, computed from the scan then
(:class:`RowBins`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.engine import scratch
from nsgen.io.spill import Spill
from nsgen.prep.robust_features import feature_layout, raw_bin_means
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import read_scan_rows

__all__ = ["BIN_BAND", "FeatureSpills", "RowBins"]

#: rows of the scan :class:`RowBins` reads at once (from the row asked for on)
BIN_BAND = 2


@dataclass(frozen=True)
class FeatureSpills:
    """Pass one's features in scratch volumes: each angle set's ranks in its own
    ``(rows, ranks, columns)`` float32, then the strong flags ``(rows, sets, columns)``
    float32. Pass two maps the rows of each straight from its file as the C-contiguous
    arrays its kernels take (one volume of every field, rows first, was read into new
    buffers: their pages faulted in cost 3-4x the copy)."""

    spills: tuple[Spill, ...]

    @classmethod
    def create(cls, path: Path, memory: Path, n_rows: int, sizes: list[int], n_cols: int,
               memory_rows: int) -> "FeatureSpills":
        """The volumes of the angle sets of ``sizes`` ranks each and of their strong flags,
        at ``path`` and ``memory`` (suffixed ``-0``, ``-1``, ...; the first ``memory_rows``
        rows of each in ``memory``)."""
        fields = [*sizes, len(sizes)]
        return cls(tuple(Spill.create(path.with_name(f"{path.name}-{n}"), (n_rows, f, n_cols),
                                      "float32", memory=Path(f"{memory}-{n}"),
                                      memory_rows=memory_rows)
                         for n, f in enumerate(fields)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, fields, columns)`` of all of them together."""
        rows, _, cols = self.spills[0].shape
        return rows, sum(s.shape[1] for s in self.spills), cols

    def write_rows(self, start: int, fields: list[np.ndarray]) -> None:
        """Rows ``start ...`` of :func:`~nsgen.prep.robust_features.raw_feature_fields`
        ``fields`` (each angle set's ranks, then the strong flags), each into its volume."""
        for spill, rows in zip(self.spills, fields, strict=True):
            spill.write_rows(start, rows)

    def read(self, start: int, stop: int) -> list[np.ndarray]:
        """Rows ``start .. stop-1`` of each volume: mapped from its file, or (rows in a
        memory file and on disk) read into this process's scratch buffers."""
        out = []
        for n, spill in enumerate(self.spills):
            rows = spill.map_rows(start, stop)
            if rows is None:
                rows = spill.read_rows(start, stop, scratch.buffer(
                    f"features {n}", (stop - start, *spill.shape[1:]), np.float32))
            out.append(rows)
        return out

    def unlink(self) -> None:
        """Remove the volumes' files."""
        for spill in self.spills:
            spill.unlink()


class RowBins:
    """The angle-bin means ``(rows, bins, columns)`` of volume rows ``rows`` of a scan, as
    :func:`~nsgen.prep.stripe_robust.decide_offsets` reads them (``xb[j]``, ``xb[j, ...]``),
    a row computed from the scan when it is asked for (the decision reads those of a few
    rows only, the rows of stripes over part of the scan, one row after another; storing
    every row's means was half the scratch). The row last asked for is kept, and the scan
    rows are read :data:`BIN_BAND` at a time. ``np.asarray`` gives every row.

    Examples
    --------
    >>> import tempfile
    >>> from nsgen.io.scan_writer import write_scan
    >>> from nsgen.scan import ScanLayout
    >>> path = Path(tempfile.mkdtemp()) / "s.nxs"
    >>> _ = write_scan(path, n_angles=360, n_rows=3, n_columns=40)
    >>> xb = RowBins(ScanSource(str(path), ScanLayout()), (360, 3, 40), "<u2", (1, 3))
    >>> xb.shape, xb[1, 5:7, :2].shape, xb.rows
    ((2, 360, 40), (2, 2), [1])
    """

    def __init__(self, source: ScanSource, shape: tuple[int, int, int], dtype: str,
                 rows: tuple[int, int]) -> None:
        self.source = source
        self.scan_shape = shape
        self.dtype = dtype
        self.start, self.stop = rows
        n_bins = feature_layout(shape[0])[1]
        self.shape = (self.stop - self.start, n_bins, shape[2])
        self.ndim = 3
        #: the rows computed so far, and the last one's means (refine reads a row's
        #: columns run by run, row after row: one row is kept, not every row's)
        self._asked: set[int] = set()
        self._last: tuple[int, np.ndarray] = (-1, np.empty((0, 0), np.float32))
        empty = np.empty((0, 0, 0), np.float32)
        self._band: tuple[int, np.ndarray, np.ndarray, np.ndarray] = (0, empty, empty, empty)
        #: seconds spent reading and computing rows
        self.seconds = 0.0

    @property
    def rows(self) -> list[int]:
        """The rows (from ``start``) computed so far."""
        return sorted(self._asked)

    def __len__(self) -> int:
        return self.shape[0]

    def row(self, j: int) -> np.ndarray:
        """Row ``j`` (counted from ``start``): ``(bins, columns)`` float32."""
        j = range(self.shape[0])[j]
        if j != self._last[0]:
            t = time.perf_counter()
            b0 = self._band[0]
            if not b0 <= j < b0 + self._band[1].shape[1]:
                self._read_band(j)
            b0, raw, flat, dark = self._band
            k = j - b0
            self._last = (j, raw_bin_means(raw, flat, dark, (k, k + 1))[0])
            self._asked.add(j)
            self.seconds += time.perf_counter() - t
        return self._last[1]

    def _read_band(self, j: int) -> None:
        """Read rows ``j`` to ``j + BIN_BAND - 1`` (clipped) of the scan: reading a row reads
        a piece of every projection, and the rows asked for come in runs of neighbours
        (stripes are a few rows deep) at about the cost of one."""
        n_k, _, n_i = self.scan_shape
        v = slice(self.start + j, min(self.stop, self.start + j + BIN_BAND))
        # as the scan stages' reader hands them over (float32 flat and dark rows)
        # (this worker's buffer, band after band: no page faulted in again)
        raw = scratch.buffer("bin-mean band", (n_k, v.stop - v.start, n_i), self.dtype)
        flat, dark = np.empty((2, v.stop - v.start, n_i), np.float32)
        read_scan_rows(self.source.open(), v, [raw, flat, dark])
        self._band = (j, raw, flat, dark)

    def __getitem__(self, key: Any) -> Any:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, (int, np.integer)):
            row = self.row(int(first))
            return row[rest] if rest else row
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.stack([self.row(j) for j in range(self.shape[0])]) if self.shape[0] else \
            np.empty(self.shape, np.float32)
        return out if dtype is None else out.astype(dtype)
