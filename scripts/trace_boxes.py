"""Prototype (nineteenth detector round): shape-gated boxes in each row's trace.

A gain change of a detector pixel over part of the scan is, in its column's trace (the
column's angle-bin means less the median of the columns beside it), one step over a
contiguous range of angles, the same at every angle there, sharp at its ends and confined
to its columns. This script measures how well that shape tells partial stripes from clean
rows on the labelled benchmark, on the bin means that ``bench_detect.py --offsets DIR``
keeps (``DIR/<scan>.npz``, field ``xb``). Not part of the detector (docs/detection.md,
"Nineteenth round").

Per row and window of 1 to 4 columns: the trace; its best box (the interval of the
largest ``|mean in - mean out| / (noise sqrt(1 / n_in + 1 / n_out))``, noise from
successive differences, over 32 coarse segments, its ends refined to the bin) where that
z exceeds ``--pre``; the box's shape (:func:`shape`). ``--mode rows`` takes the trace on
rows first at the bin level (each row's bin means less the median of the other rows
within ``hd``). Writes ``OUT/box[rows]_<scan>.npy``, one line per box: row, column,
width, z, step, flat, sharp, confined, consistent, stands out, first and last + 1 bin.

``--judge`` reads both modes' files instead and prints, per scan, the clean rows (no
labelled defect) and the defect rows (within 2 columns of a defect of that row) holding a
box that passes the gates of :data:`GATES` in the column trace and, with ``--both``, a
box in the rows-first trace (its gates, the stand-out at ``--rows-stand``) in the same
row within 2 columns, overlapping at least half of it; the z printed is the least of
the two.

Usage::

    PYTHONPATH=$PWD nice python scripts/trace_boxes.py --offsets DIR --out OUT [--mode rows]
        SCAN [SCAN ...]
    PYTHONPATH=$PWD python scripts/trace_boxes.py --offsets DIR --out OUT --judge [--both]
        --cache DIR SCAN [SCAN ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nsgen.prep.stripe_robust import depth_rule

#: gates of a box (:func:`judge`): flat at least, sharp at least, confined at most,
#: consistent at least, stands out at least (and measurable, 99 not)
GATES = (0.8, 0.5, 0.2, 0.5, 2.5)

SEGMENTS = 32
WIDTHS = (1, 2, 3, 4)
MIN_SHARE, MAX_SHARE = 1 / 6, 0.85   # a box's length, as a share of the bins


def noise_of(t: np.ndarray) -> np.ndarray:
    """Noise per bin of traces ``t`` (``(..., bins)``) from successive differences."""
    return 1.4826 * np.median(np.abs(np.diff(t, axis=-1)), axis=-1) / np.sqrt(2.0)


def traces(xr: np.ndarray, w: int) -> np.ndarray:
    """``(columns, bins)`` traces of the windows ``c:c + w`` of one row's bin means ``xr``
    ``(bins, columns)``: their mean less the median of the 8 columns each side (NaN where
    the window does not fit)."""
    n_b, n_i = xr.shape
    c = np.arange(n_i - w + 1)
    off = np.r_[np.arange(-8, 0), np.arange(w, w + 8)]
    idx = c[:, None] + off[None, :]
    vals = np.where(((idx >= 0) & (idx < n_i))[None], xr[:, np.clip(idx, 0, n_i - 1)], np.nan)
    win = np.stack([xr[:, c + k] for k in range(w)]).mean(axis=0)
    out = np.full((n_i, n_b), np.nan)
    out[:c.size] = (win - np.nanmedian(vals, axis=2)).T
    return out


def best_boxes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trace of ``t`` ``(n, bins)``: the z, first and last + 1 bin of its best box over
    :data:`SEGMENTS` coarse segments (2 segments to all but 2)."""
    n_c, n = t.shape
    edges = np.unique(np.linspace(0, n, SEGMENTS + 1).round().astype(int))
    p = np.concatenate([np.zeros((n_c, 1)), np.cumsum(t, axis=1)], axis=1)
    s = noise_of(t)
    a, b = np.meshgrid(np.arange(edges.size), np.arange(edges.size), indexing="ij")
    ok = (b - a >= 2) & (b - a <= edges.size - 3)
    a, b = edges[a[ok]], edges[b[ok]]
    n_in = b - a
    s_in = p[:, b] - p[:, a]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (s_in / n_in - (p[:, -1:] - s_in) / (n - n_in)) / (
            s[:, None] * np.sqrt(1 / n_in + 1 / (n - n_in)))
    z = np.nan_to_num(z)
    k = np.argmax(np.abs(z), axis=1)
    return z[np.arange(n_c), k], a[k], b[k]


def refine_ends(t: np.ndarray, a: int, b: int, reach: int) -> tuple[int, int]:
    """The box ``[a, b)`` of trace ``t`` with its ends moved by up to ``reach`` bins to the
    largest ``|z|``."""
    n = t.size
    s = float(noise_of(t))
    p = np.r_[0.0, np.cumsum(t)]
    aa, bb = np.meshgrid(np.arange(max(0, a - reach), min(n, a + reach + 1)),
                         np.arange(max(1, b - reach), min(n, b + reach) + 1), indexing="ij")
    ok = (bb - aa >= 2) & (n - (bb - aa) >= 2)
    aa, bb = aa[ok], bb[ok]
    n_in = bb - aa
    s_in = p[bb] - p[aa]
    z = (s_in / n_in - (p[-1] - s_in) / (n - n_in)) / (s * np.sqrt(1 / n_in + 1 / (n - n_in)))
    k = int(np.argmax(np.abs(z)))
    return int(aa[k]), int(bb[k])


def shape(t: np.ndarray, a: int, b: int, beside: list[np.ndarray],
          own: list[np.ndarray]) -> tuple[float, ...]:
    """z, step, flat, sharp, confined, consistent and stand-out of the box ``[a, b)`` of
    trace ``t``; ``beside``: the traces of the columns just beside the window, ``own``: of
    each of its columns (99 where too few angles lie outside to measure the stand-out)."""
    n = t.size
    inside, out = t[a:b], np.r_[t[:a], t[b:]]
    mo = float(np.median(out))
    step = float(np.median(inside)) - mo
    z = step / (float(noise_of(t)) * np.sqrt(1 / inside.size + 1 / out.size))
    sg = np.sign(step)
    flat = float(np.mean(sg * (inside - mo) > 0.5 * abs(step)))
    m = max(2, (b - a) // 16)
    ends = []
    if a > 0:
        ends.append(sg * (t[a:a + m].mean() - t[max(0, a - m):a].mean()) / abs(step))
    if b < n:
        ends.append(sg * (t[b - m:b].mean() - t[b:b + m].mean()) / abs(step))
    sharp = float(min(ends)) if ends else 1.0

    def step_of(u: np.ndarray) -> float:
        return float(sg * (np.median(u[a:b]) - np.median(np.r_[u[:a], u[b:]])))

    confined = max([step_of(u) / abs(step) for u in beside], default=0.0)
    steps = np.array([step_of(u) for u in own])
    consistent = float(steps.min() / steps.max()) if steps.max() > 0 else 0.0
    w = max(3, (b - a) // 4)
    smooth = np.convolve(t, np.ones(w) / w, mode="same")
    outside = np.ones(n, bool)
    outside[max(0, a - w):b + w] = False
    stand = 99.0
    if outside.sum() > 2 * w:
        rest = smooth[outside]
        stand = abs(step) / max(1e-12, float(np.abs(rest - np.median(rest)).max()))
    return z, step, flat, sharp, confined, consistent, stand


def scan_boxes(xb: np.ndarray, mode: str, pre: float) -> np.ndarray:
    """Every row's boxes above ``pre`` of the bin means ``xb`` ``(rows, bins, columns)``."""
    xb = np.asarray(xb, np.float64)
    n_r, n = xb.shape[:2]
    if mode == "rows":
        hd = depth_rule(n_r, 30)
        d = np.empty_like(xb)
        for j in range(n_r):
            other = [k for k in range(max(0, j - hd), min(n_r, j + hd + 1)) if k != j]
            d[j] = xb[j] - np.median(xb[other], axis=0) if other else xb[j]
        xb = d
    reach = int(np.ceil(n / SEGMENTS))
    res = []
    for j in range(n_r):
        t1 = traces(xb[j], 1)
        for w in WIDTHS:
            t = t1 if w == 1 else traces(xb[j], w)
            z, a, b = best_boxes(np.nan_to_num(t))
            length = b - a
            cand = ((np.abs(z) > pre) & (length >= MIN_SHARE * n - 2 * reach)
                    & (length <= MAX_SHARE * n + 2 * reach))
            for c in np.flatnonzero(cand):
                if not np.isfinite(t[c]).all():
                    continue
                a0, b0 = refine_ends(t[c], int(a[c]), int(b[c]), reach)
                beside = [t1[i] for i in (c - 1, c + w) if 0 <= i < t1.shape[0]
                          and np.isfinite(t1[i]).all()]
                res.append((j, c, w, *shape(t[c], a0, b0, beside,
                                            [t1[i] for i in range(c, c + w)]), a0, b0))
    return np.array(res, np.float64).reshape(-1, 12)


def passing(r: np.ndarray, n: int, stand: float) -> np.ndarray:
    """The boxes ``r`` (:func:`scan_boxes`' lines) of a scan of ``n`` bins that pass
    :data:`GATES` (the stand-out at ``stand``)."""
    flat, sharp, confined, consistent, _ = GATES
    length = r[:, 11] - r[:, 10]
    return r[(r[:, 5] >= flat) & (r[:, 6] >= sharp) & (r[:, 7] <= confined)
             & (r[:, 8] >= consistent) & (r[:, 9] >= stand) & (r[:, 9] < 99)
             & (length >= MIN_SHARE * n) & (length <= MAX_SHARE * n)]


def judge(out: Path, offsets: Path, cache: Path, name: str, both: bool,
          rows_stand: float) -> tuple[dict[int, float], dict[int, float]]:
    """Clean rows and defect rows of scan ``name`` holding a passing box: ``{row: z}``."""
    import h5py

    from nsgen.io.scan_defects import truth_path
    n = int(np.load(offsets / f"{name}.npz")["xb"].shape[1])
    with h5py.File(truth_path(cache / f"{name}.nxs"), "r") as f:
        truth = f["mask"][...]
    defect = truth.any(axis=(0, 2))
    cols = passing(np.load(out / f"box_{name}.npy"), n, GATES[4])
    rows = passing(np.load(out / f"boxrows_{name}.npy"), n, rows_stand) if both else None
    clean: dict[int, float] = {}
    hits: dict[int, float] = {}
    for line in cols:
        j, c, w, z, a, b = int(line[0]), int(line[1]), int(line[2]), abs(line[3]), line[10], line[11]
        if rows is not None:
            m = rows[(rows[:, 0] == j) & (np.abs(rows[:, 1] - c) <= 2)]
            overlap = (np.minimum(m[:, 11], b) - np.maximum(m[:, 10], a)) / (b - a)
            if not (overlap >= 0.5).any():
                continue
            z = min(z, float(np.abs(m[overlap >= 0.5, 3]).max()))
        if not defect[j]:
            clean[j] = max(clean.get(j, 0.0), z)
        elif truth[:, j].any(axis=0)[max(0, c - 2):c + w + 2].any():
            hits[j] = max(hits.get(j, 0.0), z)
    return clean, hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--offsets", type=Path, required=True, help="bench_detect.py --offsets DIR")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--mode", choices=("cols", "rows"), default="cols")
    ap.add_argument("--pre", type=float, default=12.0, help="least |z| of a box kept")
    ap.add_argument("--judge", action="store_true", help="print the rows holding a passing box")
    ap.add_argument("--both", action="store_true", help="judge: confirmed in the rows-first trace")
    ap.add_argument("--rows-stand", type=float, default=1.0, help="judge: rows-first stand-out")
    ap.add_argument("--cache", type=Path, default=None, help="judge: the labelled scans")
    ap.add_argument("scans", nargs="+", help="scan names (e.g. 721x64x512_i0-20000_seed-6)")
    a = ap.parse_args(argv)
    if a.judge:
        for name in a.scans:
            clean, hits = judge(a.out, a.offsets, a.cache, name, a.both, a.rows_stand)
            print(f"{name:32s} clean rows {len(clean)}: "
                  + " ".join(f"{k}:{v:.1f}" for k, v in sorted(clean.items()))
                  + " | defect rows " + " ".join(f"{k}:{v:.1f}" for k, v in sorted(hits.items())))
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    for name in a.scans:
        r = scan_boxes(np.load(a.offsets / f"{name}.npz")["xb"], a.mode, a.pre)
        np.save(a.out / f"box{'rows' if a.mode == 'rows' else ''}_{name}.npy", r)
        print(name, len(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
