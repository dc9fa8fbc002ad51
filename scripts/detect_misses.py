"""Each labelled defect row of one kind, found or missed by a detector, with how far its
stripe stands above the photon noise when the background is known.

For the labelled scans kept by ``scripts/bench_detect.py --cache DIR``: the detector's mask
(``detect_volume``) and, per row of each defect of ``--kind``, whether the row is flagged
(anywhere: the benchmark's row recall) and whether it is flagged within 2 columns of the
defect, and its photon-limited signal-to-noise ratio::

    snr = |ln gain| * sqrt(sum of the photons over the defect's voxels of that row)

with the photons ``(flat - dark) * exp(-x)`` of the normalised value ``x`` (Poisson noise of
``-ln`` of a count ``N`` has the standard deviation ``1 / sqrt(N)``): the z a matched filter
would reach knowing the defect's columns, angles and the background. ``snr1`` is the same
for one of its columns. Rows are printed from the lowest ``snr`` up, then the missed rows'
``snr`` range and the found rows' lowest.

Usage::

    PYTHONPATH=$PWD nice python scripts/detect_misses.py --cache DIR [--seeds 5,6,7,8]
        [--kind partial] [--detector robust]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

from nsgen.io.scan_defects import KINDS, truth_path
from nsgen.prep.detect import detect_volume
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.scan import open_scan


def photon_snr(x: np.ndarray, flat: np.ndarray, gain: float) -> float:
    """Matched-filter z of a gain error ``gain`` over the normalised values ``x`` whose
    flat-field counts (flat minus dark) are ``flat`` (broadcast against ``x``).

    Examples
    --------
    >>> round(photon_snr(np.zeros((100, 1)), np.full((1,), 10000.0), 1.01), 2)
    9.95
    """
    photons = np.asarray(flat, np.float64) * np.exp(-np.asarray(x, np.float64))
    return float(abs(np.log(gain)) * np.sqrt(photons.sum()))


def scan_rows(path: Path, kind: int, detector: str) -> list[tuple]:
    """(scan, row, column, width, angles, gain, snr, snr1, row found, found in its columns)
    for each row of each defect of kind code ``kind`` in the labelled scan ``path``."""
    with open_scan(str(path)) as s:
        rows = slice(0, s.shape[1])
        flat, dark = s.flat_mean(rows), s.dark_mean(rows)
        x = flat_field_log(s.read_projections(rows), flat, dark, sinograms_first=False)
    with h5py.File(truth_path(path), "r") as f:
        table = f["defects"][...]
    mask = detect_volume(x, detector, DetectParams.for_scan(x.shape))
    counts = np.asarray(flat, np.float64) - np.asarray(dark, np.float64)
    out = []
    for code, c0, w, r0, r1, a0, a1, gain in table:
        if int(code) != kind:
            continue
        c0, w, a0, a1 = int(c0), int(w), int(a0), int(a1)
        for r in range(int(r0), int(r1)):
            block = x[a0:a1, r, c0:c0 + w]
            snr = photon_snr(block, counts[r, c0:c0 + w], gain)
            out.append((path.stem, r, c0, w, a1 - a0, float(gain), snr, snr / np.sqrt(w),
                        bool(mask[:, r].any()),
                        bool(mask[:, r, max(0, c0 - 2):c0 + w + 2].any())))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True,
                    help="directory of labelled scans (bench_detect.py --cache)")
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--kind", default="partial", choices=KINDS)
    ap.add_argument("--detector", default="robust")
    a = ap.parse_args(argv)
    seeds = {int(v) for v in a.seeds.split(",")}
    scans = [p for p in sorted(a.cache.glob("*.nxs"))
             if int(p.stem.split("seed-")[1]) in seeds and truth_path(p).is_file()]
    if not scans:
        print(f"detect_misses.py: no labelled scans of seeds {a.seeds} in {a.cache}; make "
              f"them with scripts/bench_detect.py --cache {a.cache}", file=sys.stderr)
        return 2
    found = [r for p in scans for r in scan_rows(p, KINDS.index(a.kind) + 1, a.detector)]
    for o in sorted(found, key=lambda o: o[6]):
        print(f"{o[0]:34s} row {o[1]:3d} columns {o[2]:4d}+{o[3]} angles {o[4]:4d} gain "
              f"{o[5]:.3f} snr {o[6]:6.1f} snr1 {o[7]:5.1f} row {'found' if o[8] else 'MISSED'}"
              f"{'' if o[9] else ' (not in its columns)'}")
    missed = [o[6] for o in found if not o[8]]
    hit = [o[6] for o in found if o[8]]
    print(f"{a.kind} rows: {len(hit)} found, {len(missed)} missed; missed snr "
          f"{min(missed, default=0):.1f}-{max(missed, default=0):.1f}; lowest found "
          f"{min(hit, default=0):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
