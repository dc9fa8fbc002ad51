"""Quality of the stripe detectors on labelled synthetic scans (``nsgen make-scan --labelled``).

For every size, noise level (``--i0``: photons per pixel at the beam centre) and seed, writes a
labelled scan, reads and normalises it (timed: the floor), runs every detector on the whole
volume (timed) and prints, per detector and per defect kind:

* voxel level: precision, recall, F1. A kind's precision counts the false voxels in the rows
  of that kind's defects within 8 columns of them (false alarms elsewhere go to ``clean``);
* row (sinogram) level: recall of the rows holding that kind; overall row precision/recall
  and the percentage of clean rows flagged.

Where the row-level errors are: the clean rows flagged and the stripe rows missed (each by
its first kind other than near-noise) by distance to the volume's first or last row (rows
there are compared with rows on one side only), and the row recall without the rows whose
only defects are near-noise stripes (issue 17 exempts those).

Then one line per scan and detector (rows flagged that are clean, rows missed: the clean-row
false alarms vary a lot between seeds, hence 4 seeds per size and noise level by default) and
the totals over all runs. Timings are of the current machine (2 shared cores: say so).

``--cache DIR`` keeps the labelled scans in ``DIR`` (one file per size, noise level and seed,
written once; a rerun with other detector code measures the same scans without making them
again). Without it the scans go to a temporary directory.

Usage::

    PYTHONPATH=$PWD nice python scripts/bench_detect.py [--quick] [--sizes 181x8x256,...]
        [--i0 20000,4000] [--seeds 1,2,3,4] [--detectors larix,robust] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from nsgen.io.scan_defects import KINDS, read_truth, truth_path
from nsgen.io.scan_writer import write_scan
from nsgen.prep.detect import DETECTORS, detect_volume
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.scan import open_scan


#: distance of a row to the volume's first or last row: buckets [0, 4), [4, 8), [8, 16), 16+
END_BUCKETS = (4, 8, 16)
END_NAMES = ("0-3", "4-7", "8-15", "16+")


def end_bucket(n_rows: int) -> np.ndarray:
    """Per row of a volume of ``n_rows``: its :data:`END_BUCKETS` index.

    Examples
    --------
    >>> end_bucket(10).tolist()
    [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    """
    d = np.minimum(np.arange(n_rows), n_rows - 1 - np.arange(n_rows))
    return np.searchsorted(END_BUCKETS, d, side="right")


def counts(mask: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per kind: [tp, fp, fn] voxels, [rows found, rows]; overall rows [tp, fp, fn, clean];
    ``clean_end``: clean rows flagged per :func:`end_bucket`; ``missed_end`` ``(kinds,
    buckets)``: stripe rows missed, by their first kind other than near-noise (near-noise
    only: that kind); ``real_rows``: [found, rows] of rows with a defect other than
    near-noise."""
    out: dict[str, np.ndarray] = {}
    m = mask.astype(bool)
    t = truth > 0
    near = np.zeros_like(t)
    for code, kind in enumerate(KINDS, 1):
        tk = truth == code
        if not tk.any():
            continue
        cols = np.flatnonzero(tk.any(axis=(0, 1)))
        rows = np.flatnonzero(tk.any(axis=(0, 2)))
        zone = np.zeros(t.shape[1:], bool)
        for c in cols:
            zone[rows, max(0, c - 8):c + 9] = True
        local = np.broadcast_to(zone, t.shape) & ~t
        near |= local
        row_has = tk.any(axis=(0, 2))
        out[kind] = np.array([(m & tk).sum(), (m & local).sum(), (~m & tk).sum(),
                              (m.any(axis=(0, 2)) & row_has).sum(), row_has.sum()])
    out["clean"] = np.array([0, (m & ~t & ~near).sum(), 0, 0, 0])
    rt, rm = t.any(axis=(0, 2)), m.any(axis=(0, 2))
    out["rows"] = np.array([(rm & rt).sum(), (rm & ~rt).sum(), (~rm & rt).sum(), (~rt).sum()])
    out["voxels"] = np.array([(m & t).sum(), (m & ~t).sum(), (~m & t).sum()])
    bucket = end_bucket(t.shape[1])
    out["clean_end"] = np.bincount(bucket[rm & ~rt], minlength=len(END_NAMES))
    near_noise = KINDS.index("low_contrast") + 1
    present = np.stack([(truth == code).any(axis=(0, 2)) for code in range(1, len(KINDS) + 1)])
    real = present.copy()
    real[near_noise - 1] = False
    first = np.where(real.any(axis=0), real.argmax(axis=0), near_noise - 1)
    missed = np.zeros((len(KINDS), len(END_NAMES)), np.int64)
    np.add.at(missed, (first[~rm & rt], bucket[~rm & rt]), 1)
    out["missed_end"] = missed
    has_real = real.any(axis=0)
    out["real_rows"] = np.array([(rm & has_real).sum(), has_real.sum()])
    return out


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def report(name: str, c: dict[str, np.ndarray]) -> None:
    print(f"  {name}:")
    print(f"    {'kind':13s} {'vox P':>6s} {'vox R':>6s} {'vox F1':>6s} {'row R':>6s}")
    for kind in KINDS:
        if kind in c:
            tp, fp, fn, rf, rn = c[kind]
            p, r, f = prf(tp, fp, fn)
            print(f"    {kind:13s} {p:6.3f} {r:6.3f} {f:6.3f} {rf / max(rn, 1):6.3f}")
    p, r, f = prf(*c["voxels"])
    rp, rr, rf1 = prf(*c["rows"][:3])
    print(f"    all voxels P {p:.3f} R {r:.3f} F1 {f:.3f}; false voxels away from defects "
          f"{int(c['clean'][1])}")
    print(f"    rows P {rp:.3f} R {rr:.3f} F1 {rf1:.3f}; clean rows flagged "
          f"{int(c['rows'][1])} of {int(c['rows'][3])} "
          f"({100 * c['rows'][1] / max(c['rows'][3], 1):.1f} %)")
    found, n_real = c["real_rows"]
    print(f"    rows R without near-noise-only rows {found / max(n_real, 1):.3f} "
          f"({int(found)} of {int(n_real)})")
    head = " ".join(f"{b:>5s}" for b in END_NAMES)
    print(f"    rows from the volume's end:  {head}")
    print(f"      clean rows flagged         {' '.join(f'{v:5d}' for v in c['clean_end'])}")
    for kind, row in zip(KINDS, c["missed_end"]):
        if row.any():
            print(f"      missed {kind:19s} {' '.join(f'{v:5d}' for v in row)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="181x8x256,361x32x256,721x64x512,1801x32x1024",
                    help="ANGLESxROWSxCOLUMNS,...")
    ap.add_argument("--i0", default="20000,4000", help="photons per pixel (noise levels)")
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--quick", action="store_true", help="two small sizes, one seed")
    ap.add_argument("--cache", type=Path, default=None,
                    help="directory keeping the labelled scans between runs")
    a = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    if a.quick:
        sizes, a.seeds = sizes[:2], a.seeds.split(",")[0]
    detectors = a.detectors.split(",")
    totals: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if a.cache is None else a.cache
        root.mkdir(parents=True, exist_ok=True)
        for shape in sizes:
            for i0 in (float(v) for v in a.i0.split(",")):
                for seed in (int(v) for v in a.seeds.split(",")):
                    name_scan = f"{shape[0]}x{shape[1]}x{shape[2]}_i0-{i0:g}_seed-{seed}.nxs"
                    path = root / name_scan
                    if a.cache is None or not (path.is_file() and truth_path(path).is_file()):
                        write_scan(path, n_angles=shape[0], n_rows=shape[1],
                                   n_columns=shape[2], seed=seed, i0=i0, labelled=True,
                                   overwrite=True)
                    t0 = time.perf_counter()
                    with open_scan(str(path)) as s:
                        rows = slice(0, s.shape[1])
                        x = flat_field_log(s.read_projections(rows), s.flat_mean(rows),
                                           s.dark_mean(rows), sinograms_first=False)
                    t_read = time.perf_counter() - t0
                    truth = read_truth(path)
                    print(f"{shape[0]}x{shape[1]}x{shape[2]} i0 {i0:g} seed {seed}: read + "
                          f"normalise {t_read:.2f} s", flush=True)
                    params = DetectParams.for_scan(x.shape)  # type: ignore[arg-type]
                    for name in detectors:
                        t0 = time.perf_counter()
                        mask = detect_volume(x, name, params)
                        dt = time.perf_counter() - t0
                        c = counts(mask, truth)
                        report(f"{name} ({dt:.2f} s, {dt / t_read:.1f}x reading)", c)
                        tp, fp, fn, n_clean = c["rows"]
                        lines.append(f"  {name:8s} {name_scan[:-4]:34s} clean rows flagged "
                                     f"{fp:3d} of {n_clean:3d}, stripe rows missed {fn:3d} "
                                     f"of {tp + fn:3d}")
                        for k, v in c.items():
                            totals[name][k] = totals[name].get(k, 0) + v
    print("PER SCAN")
    print("\n".join(sorted(lines)))
    print("TOTAL over all runs")
    for name in detectors:
        report(name, totals[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
