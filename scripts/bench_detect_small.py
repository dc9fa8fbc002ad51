"""Detectability of every labelled gain stripe on small scans, and whether the detector finds it.

For scans with few angles, few photons or few rows (issue 17: "build for real data"), the
question before any tuning is which stripes carry enough evidence at all. For every gain
defect (full, partial, fluctuating, near-noise) of the labelled scans given (``*.nxs`` with
``*.nxs.truth.h5`` beside them), this prints its amplitude ``a = |ln gain|`` (``-log``
units) against the Poisson noise of what would reveal it:

* full and fluctuating stripes, and near-noise ones: a gain error shifts the column's mean
  over the angles by ``a``. The noise of that mean, per column, is ``sqrt(mean_k(1 / P_k) /
  n + 1 / (n_flats F))`` with ``F`` the flat counts (flat minus dark) and ``P_k = F
  exp(-x_k)`` the projection counts: the projections' part (the brief's ``1 / sqrt(i0 T
  n)``) and the flats' part (the flat mean's own offset, constant over the angles like a
  stripe: the floor no detector passes). ``z = a sqrt(width) / sigma`` (its columns
  together); ``z_proj`` without the flats' part;
* partial stripes: a step along the angles of the same column, so the flats' offset
  cancels: ``sigma = sqrt(var_in / n_in + var_out / n_out)`` of the pixel noise.

A stripe is physically detectable at ``z > 4`` (``--z``). Then the share of its voxels the
detector (``robust``, the tree imported) flags and the clean rows it flags, per scan and in
total: found / missed for detectable and below-noise stripes.

Usage::

    PYTHONPATH=$PWD nice python -P scripts/bench_detect_small.py /tmp/lead-qa/cache/*.nxs
        [--z 4] [--quiet] [--depth N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

from nsgen.io.scan_defects import KINDS, read_truth, truth_path
from nsgen.prep.detect import detect_volume
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.scan import open_scan

GAIN_KINDS = ("full", "partial", "fluctuating", "low_contrast")


def _defects(scan: Path) -> np.ndarray:
    with h5py.File(truth_path(scan), "r") as f:
        return np.asarray(f["defects"][:])


def stripe_noise(x: np.ndarray, counts: np.ndarray, n_flats: int, col: slice,
                 angles: slice, kind: str) -> tuple[float, float]:
    """``(sigma, sigma of the projections alone)`` of the evidence of a stripe of one row:
    ``x`` ``(angles, columns)`` normalised, ``counts`` ``(columns,)`` flat minus dark."""
    f = np.maximum(counts[col].astype(np.float64), 1e-3)
    var_pix = np.exp(x[:, col].astype(np.float64)) / f  # 1 / P_k per angle and column
    if kind == "partial":
        inside = np.zeros(x.shape[0], bool)
        inside[angles] = True
        n_in, n_out = inside.sum(), (~inside).sum()
        v = var_pix[inside].mean(0) / max(n_in, 1) + var_pix[~inside].mean(0) / max(n_out, 1)
        s = float(np.sqrt(v.mean()))
        return s, s
    v_proj = var_pix.mean(0) / x.shape[0]
    v_flat = 1.0 / (n_flats * f)
    return float(np.sqrt((v_proj + v_flat).mean())), float(np.sqrt(v_proj.mean()))


def analyse(scan: Path, z_min: float, quiet: bool, given: dict[str, int] | None = None
            ) -> dict[str, list[int]]:
    """Print one scan's table; return per class [stripes, found] and clean-row counts."""
    with open_scan(scan) as s:
        rows = slice(0, s.shape[1])
        flat, dark = s.flat_mean(rows), s.dark_mean(rows)
        x = flat_field_log(s.read_projections(rows), flat, dark, sinograms_first=False)
        n_flats = s.n_flats
    counts = flat.astype(np.float64) - dark
    mask = detect_volume(x, "robust", DetectParams.for_scan(x.shape, given,
                                                            detector="robust")).astype(bool)
    truth = read_truth(scan)
    clean = ~(truth > 0).any(axis=(0, 2))
    flagged = mask.any(axis=(0, 2))
    out: dict[str, list[int]] = {"clean": [int(clean.sum()), int((clean & flagged).sum())]}
    if not quiet:
        print(f"{scan.name}: {x.shape[0]} angles x {x.shape[1]} rows x {x.shape[2]} columns, "
              f"{n_flats} flats; clean rows flagged {int((clean & flagged).sum())} of "
              f"{int(clean.sum())}")
        print("    kind          col  w rows   angles    amp    sigma  z_proj      z  found")
    for code, c0, w, r0, r1, a0, a1, gain in _defects(scan):
        kind = KINDS[int(code) - 1]
        if kind not in GAIN_KINDS:
            continue
        c0, w, r0, r1, a0, a1 = (int(v) for v in (c0, w, r0, r1, a0, a1))
        amp = abs(float(np.log(gain)))
        col, ang = slice(c0, c0 + w), slice(a0, a1)
        for r in range(r0, r1):
            sig, sig_p = stripe_noise(x[:, r], counts[r], n_flats, col, ang, kind)
            z, z_p = amp * np.sqrt(w) / sig, amp * np.sqrt(w) / sig_p
            found = float(mask[ang, r, col].mean())
            group = {"low_contrast": "near-noise", "partial": "partial"}.get(kind, "full/fluct.")
            cls = f"{group} {'detectable' if z > z_min else 'below noise'}"
            tot = out.setdefault(cls, [0, 0])
            tot[0] += 1
            tot[1] += found > 0.5
            if not quiet:
                print(f"    {kind:12s} {c0:4d} {w:2d} {r:4d} {a0:4d}-{a1:<4d} {amp:6.4f} "
                      f"{sig:8.5f} {z_p:7.1f} {z:6.1f}  {found:5.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scans", nargs="+", type=Path)
    p.add_argument("--z", type=float, default=4.0, help="detectable above this z (default 4)")
    p.add_argument("--quiet", action="store_true", help="totals only")
    p.add_argument("--depth", type=int, help="min_stripe_depth (default: derived)")
    a = p.parse_args(argv)
    unlabelled = [str(s) for s in a.scans if not truth_path(s).is_file()]
    if unlabelled:   # before any work: one line naming every such scan and the fix
        print(f"bench_detect_small.py: error: no ground truth (<scan>.truth.h5) beside "
              f"{', '.join(unlabelled)}; give labelled scans (nsgen make-scan --labelled)",
              file=sys.stderr)
        return 2
    total: dict[str, list[int]] = {}
    for scan in a.scans:
        for k, v in analyse(scan, a.z, a.quiet,
                                  None if a.depth is None else {"min_stripe_depth": a.depth}).items():
            t = total.setdefault(k, [0, 0])
            t[0] += v[0]
            t[1] += v[1]
    print(f"TOTAL over {len(a.scans)} scans (stripe rows; found: over half its voxels flagged)")
    for group in ("full/fluct.", "partial", "near-noise"):
        for k in (f"{group} detectable", f"{group} below noise"):
            if k in total:
                n, f = total[k]
                print(f"  {k:24s} {f:4d} found of {n:4d}")
    n, f = total["clean"]
    print(f"  clean rows flagged       {f:4d} of {n:4d} ({100 * f / max(n, 1):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
