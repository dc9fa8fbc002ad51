"""Labelled, realistic detector defects for synthetic scans, and their ground-truth mask.

A benchmark for stripe detection needs scans whose stripes are known voxel by voxel. This
module draws defects (pure: a seed in, a list out), applies them to a projection's photon
counts, renders the ground truth ``(angles, rows, columns)`` of any block of rows, and writes
and reads it beside a scan (``<scan>.truth.h5``, dataset ``mask``: uint8 kind codes, 0 clean).

Kinds (code: name)
------------------
1 ``full``: a gain error on 1-5 adjacent columns over every angle (a pixel that drifted after
  the flats were taken): ``-ln(gain)`` added to the normalised sinogram.
2 ``partial``: the same over one range of angles (a third to two thirds of the scan).
3 ``fluctuating``: a gain error whose size varies smoothly with the angle (same sign).
4 ``dead``: no photons during the projections (the normalised value hits its floor).
5 ``saturated``: the counts stick at 65535 during the projections.
6 ``low_contrast``: a gain error of 0.2-0.6 %, about the noise of one normalised pixel.

Hard negatives (not labelled) are added by :func:`nsgen.io.scan_writer.write_scan` with
``labelled=True``: a thin cylinder next to the rotation axis (edges almost constant over
angles) and a beam whose profile drifts smoothly between flats and projections.

Examples
--------
>>> d = draw_defects(181, 16, 128, seed=1)
>>> sorted({x.kind for x in d}) == sorted(KINDS)
True
>>> m = truth_block(d, 181, 0, 16, 128)
>>> m.shape, m.dtype, int(m.max()) <= len(KINDS)
((181, 16, 128), dtype('uint8'), True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from nsgen.errors import NsgenError
from nsgen.rng import generator

__all__ = ["KINDS", "LabelledDefect", "apply_defects", "draw_defects", "read_truth",
           "truth_block", "truth_path", "write_truth"]

#: defect kinds; the mask code of ``KINDS[i]`` is ``i + 1``
KINDS = ("full", "partial", "fluctuating", "dead", "saturated", "low_contrast")
SATURATED = 65535.0


@dataclass(frozen=True)
class LabelledDefect:
    """Columns ``[column, column + width)`` of rows ``[row_start, row_stop)`` during the
    projections ``[angle_start, angle_stop)``; ``gain`` is the relative response (1 = none)
    for the gain kinds, ``phase`` the fluctuation's phase."""

    kind: str
    column: int
    width: int
    row_start: int
    row_stop: int
    angle_start: int
    angle_stop: int
    gain: float = 1.0
    phase: float = 0.0

    @property
    def code(self) -> int:
        """Mask code of the kind (1-based index in :data:`KINDS`)."""
        return KINDS.index(self.kind) + 1


def draw_defects(n_angles: int, n_rows: int, n_columns: int, seed: int) -> list[LabelledDefect]:
    """Draw a realistic set of labelled defects: every kind at least once.

    About one defect per 40 columns (at least one per kind), 1-5 columns wide, spaced so
    that no two share or touch a column; each on 1 .. min(12, max(1, rows // 8)) adjacent
    rows. Needs at least 64 columns.
    """
    rng = generator(seed, "scan-labelled-defects")
    n = max(len(KINDS), n_columns // 40)
    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    # slots of 8-16 columns, one defect each, 8 columns kept free at each detector edge
    span = int(np.clip((n_columns - 16) // n, 8, 16))
    slots = (n_columns - 16) // span
    if slots < len(KINDS):
        raise NsgenError(f"a labelled scan needs at least {16 + 8 * len(KINDS)} columns, "
                         f"got {n_columns}; make a wider scan")
    order = rng.permutation(slots)[:n]
    out = []
    for kind, slot in zip(kinds, order):
        width = int(rng.integers(1, 6))
        column = 8 + span * int(slot) + int(rng.integers(0, span - width - 2))
        depth = int(rng.integers(1, min(12, max(1, n_rows // 8)) + 1))
        row = int(rng.integers(0, n_rows - depth + 1))
        a0, a1 = 0, n_angles
        if kind == "partial":
            length = int(rng.integers(n_angles // 3, max(n_angles // 3 + 1, 2 * n_angles // 3)))
            a0 = int(rng.integers(0, n_angles - length + 1))
            a1 = a0 + max(1, length)
        size = {"low_contrast": rng.uniform(0.002, 0.006)}.get(kind, rng.uniform(0.02, 0.08))
        gain = float(1.0 + size * rng.choice([-1.0, 1.0]))
        out.append(LabelledDefect(kind, column, width, row, row + depth, a0, a1, gain,
                                  float(rng.uniform(0, 2 * np.pi))))
    return out


def apply_defects(photons: np.ndarray, counts_cap: np.ndarray | None, angle: int,
                  n_angles: int, defects: list[LabelledDefect]) -> None:
    """Apply the defects active at projection ``angle`` to ``photons`` (rows, columns) in place.

    ``counts_cap``, when given, is set to :data:`SATURATED` where the counts stick (the caller
    writes those pixels as 65535 after adding the dark).
    """
    for d in defects:
        if not d.angle_start <= angle < d.angle_stop:
            continue
        block = (slice(d.row_start, d.row_stop), slice(d.column, d.column + d.width))
        if d.kind == "dead":
            photons[block] = 0.0
        elif d.kind == "saturated":
            if counts_cap is not None:
                counts_cap[block] = SATURATED
        elif d.kind == "fluctuating":
            wave = 1.0 + 0.5 * np.sin(2 * np.pi * 3 * angle / max(n_angles, 1) + d.phase)
            photons[block] *= np.float32(1.0 + (d.gain - 1.0) * wave)
        else:
            photons[block] *= np.float32(d.gain)


def truth_block(defects: list[LabelledDefect], n_angles: int, row_start: int, row_stop: int,
                n_columns: int) -> np.ndarray:
    """Ground truth of rows ``[row_start, row_stop)``: ``(angles, rows, columns)`` uint8 codes."""
    m = np.zeros((n_angles, row_stop - row_start, n_columns), np.uint8)
    for d in defects:
        r0, r1 = max(d.row_start, row_start), min(d.row_stop, row_stop)
        if r0 < r1:
            m[d.angle_start:d.angle_stop, r0 - row_start:r1 - row_start,
              d.column:d.column + d.width] = d.code
    return m


def truth_path(scan: str | os.PathLike[str]) -> Path:
    """Where the ground truth of ``scan`` lives: ``<scan>.truth.h5`` beside it."""
    p = Path(scan)
    return p.with_name(p.name + ".truth.h5")


def write_truth(scan: str | os.PathLike[str], defects: list[LabelledDefect],
                shape: tuple[int, int, int]) -> Path:
    """Write the ground truth of a scan of projections ``shape`` (angles, rows, columns).

    Rendered and written row block by row block (bounded memory), gzip level 1, to a
    temporary name renamed into place. The defects are stored too (``defects`` table).
    """
    n_angles, n_rows, n_columns = shape
    out = truth_path(scan)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    rows = max(1, (32 * 2**20) // max(1, n_angles * n_columns))
    try:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("mask", shape, np.uint8, chunks=(n_angles, 1, n_columns),
                                  compression="gzip", compression_opts=1)
            ds.attrs["kinds"] = np.array([k.encode() for k in KINDS])
            for r0 in range(0, n_rows, rows):
                r1 = min(n_rows, r0 + rows)
                ds[:, r0:r1] = truth_block(defects, n_angles, r0, r1, n_columns)
            table = np.array([(d.code, d.column, d.width, d.row_start, d.row_stop,
                               d.angle_start, d.angle_stop, d.gain) for d in defects],
                             dtype=np.float64).reshape(-1, 8)
            f.create_dataset("defects", data=table).attrs["columns"] = (
                "code column width row_start row_stop angle_start angle_stop gain")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def read_truth(scan: str | os.PathLike[str], rows: tuple[int, int] | None = None) -> np.ndarray:
    """Ground truth of a labelled scan (rows ``[start, stop)``, all by default).

    Raises
    ------
    NsgenError
        The scan has no labels (made without ``nsgen make-scan --labelled``).
    """
    path = truth_path(scan)
    if not path.is_file():
        raise NsgenError(f"{scan} has no ground truth ({path.name} not found beside it); "
                         f"make a labelled scan with nsgen make-scan --labelled")
    with h5py.File(path, "r") as f:
        ds = f["mask"]
        r0, r1 = rows if rows is not None else (0, ds.shape[1])
        return np.asarray(ds[:, r0:r1])
