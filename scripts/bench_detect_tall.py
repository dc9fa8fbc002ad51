"""Recall of stripes spanning many rows (``nsgen make-scan --defect``) by a stripe detector.

Rows first (the ``robust`` detector's step 2) cancels what the rows within ``hd`` share: a
stripe over most of them too. This benchmark writes plain (not labelled) make-scan scans
with explicit gain defects of three kinds, each at a few columns:

* ``all``: every row; ``half``: half of the rows (from a drawn start); ``4 rows``: 4 rows;

at one gain per scan (half of the defects at ``gain``, half at ``1 / gain``: both signs),
runs the detector on the whole normalised volume and prints, per kind and gain, the recall
of the defect rows (a row counts when the defect column, +-1, is flagged at some angle),
and the clean rows flagged: rows with a flag at a column more than 8 columns from every
defect column (the scan's own sample and noise). Truth is the defect list itself.

``--cache DIR`` keeps the scans (one file per size, seed and gain).

Usage::

    PYTHONPATH=$PWD nice python -P scripts/bench_detect_tall.py [--sizes 181x8x256,...]
        [--seeds 1,2] [--gains 1.01,1.03,1.08,1.2] [--detector robust] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from nsgen.io.scan_writer import write_scan
from nsgen.prep.detect import detect_volume
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.scan import open_scan

KINDS = ("all", "half", "4 rows")
#: defects per kind in each scan
PER_KIND = 2
#: columns around a defect column that are not "clean"
NEAR = 8


def draw(n_rows: int, n_cols: int, gain: float, seed: int
         ) -> dict[int, tuple[int, int, float]]:
    """Defects ``{column: (row_start, row_stop, gain)}``: ``PER_KIND`` of each kind at
    columns at least ``3 NEAR`` apart, gains alternately ``gain`` and ``1 / gain``."""
    rng = np.random.default_rng(seed)
    cols: list[int] = []
    while len(cols) < PER_KIND * len(KINDS):
        c = int(rng.integers(NEAR, n_cols - NEAR))
        if all(abs(c - o) >= 3 * NEAR for o in cols):
            cols.append(c)
    out = {}
    for n, c in enumerate(cols):
        kind = KINDS[n // PER_KIND]
        length = n_rows if kind == "all" else max(1, n_rows // 2) if kind == "half" else 4
        start = int(rng.integers(0, n_rows - length + 1))
        out[c] = (start, start + length, gain if n % 2 == 0 else 1.0 / gain)
    return out


def score(mask: np.ndarray, defects: dict[int, tuple[int, int, float]]
          ) -> tuple[dict[str, np.ndarray], int, int]:
    """Per kind [rows found, rows]; clean rows flagged; rows."""
    flags = np.asarray(np.any(mask, axis=0), bool)            # (rows, columns)
    n_rows, n_cols = flags.shape
    found: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(2, int))
    near = np.zeros(n_cols, bool)
    for n, (c, (r0, r1, _)) in enumerate(defects.items()):
        kind = KINDS[n // PER_KIND]
        hit = flags[r0:r1, max(0, c - 1):c + 2].any(axis=1)
        found[kind] += [int(hit.sum()), r1 - r0]
        near[max(0, c - NEAR):c + NEAR + 1] = True
    clean = int(flags[:, ~near].any(axis=1).sum())
    return found, clean, n_rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="181x8x256,361x32x256,721x64x512")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--gains", default="1.01,1.03,1.08,1.2")
    ap.add_argument("--detector", default="robust")
    ap.add_argument("--cache", type=Path, default=None)
    a = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    gains = [float(g) for g in a.gains.split(",")]
    total: dict[tuple[float, str], np.ndarray] = defaultdict(lambda: np.zeros(2, int))
    clean_tot = np.zeros(2, int)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if a.cache is None else a.cache
        root.mkdir(parents=True, exist_ok=True)
        for shape in sizes:
            for seed in (int(v) for v in a.seeds.split(",")):
                for gain in gains:
                    defects = draw(shape[1], shape[2], gain, seed)
                    path = root / f"{shape[0]}x{shape[1]}x{shape[2]}_seed-{seed}_gain-{gain:g}.nxs"
                    if not path.is_file():
                        write_scan(path, n_angles=shape[0], n_rows=shape[1],
                                   n_columns=shape[2], seed=seed, defect_rows=defects,
                                   overwrite=True)
                    with open_scan(str(path)) as s:
                        rows = slice(0, s.shape[1])
                        x = flat_field_log(s.read_projections(rows), s.flat_mean(rows),
                                           s.dark_mean(rows), sinograms_first=False)
                    mask = detect_volume(x, a.detector, DetectParams.for_scan(x.shape))
                    found, clean, n_rows = score(mask, defects)
                    clean_tot += [clean, n_rows]
                    parts = []
                    for kind in KINDS:
                        total[gain, kind] += found[kind]
                        parts.append(f"{kind} {found[kind][0]}/{found[kind][1]}")
                    print(f"{path.stem:32s} rows found: {', '.join(parts)}; clean rows "
                          f"flagged {clean}/{n_rows}", flush=True)
    print(f"TOTAL ({a.detector}): row recall per kind and gain")
    print(f"  {'gain':>6s} " + " ".join(f"{k:>14s}" for k in KINDS))
    for gain in gains:
        cells = [f"{total[gain, k][0]:5d}/{total[gain, k][1]:<4d}"
                 f"{total[gain, k][0] / max(total[gain, k][1], 1):5.2f}" for k in KINDS]
        print(f"  {gain:6g} " + " ".join(f"{c:>14s}" for c in cells))
    print(f"  clean rows flagged {clean_tot[0]} of {clean_tot[1]} "
          f"({100 * clean_tot[0] / max(clean_tot[1], 1):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
