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

``--offsets DIR`` (robust only) keeps each scan's rows-first offsets and angle-bin means in
``DIR`` and decides from them (``stripe_robust.decide_offsets``, then the second rows-first
pass, :func:`second_pass`: the same mask as the whole detector): a rerun after a change of
the decisions (units, pooling, angles) replays only them (seeds 1-4: 5.8 s of detector time
replayed, 20.6 s making and keeping them; the second pass ranks a scan again where it
leaves values out, its offsets depending on the first decision). The
file records a digest of the code that makes the offsets (:func:`offsets_key`); a file of
other code is made again.

Usage::

    PYTHONPATH=$PWD nice python scripts/bench_detect.py [--quick] [--sizes 181x8x256,...]
        [--i0 20000,4000] [--seeds 1,2,3,4] [--detectors larix,robust] [--cache DIR]
        [--offsets DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
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
from nsgen.prep.robust_mass import volume_mass
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


def offsets_key() -> str:
    """Digest of the code that makes the robust detector's offsets and bin means (the
    features, rows first, the row-alone scores, the compiled kernels: every kernel module's,
    :func:`~nsgen.prep._jit.sources_digest`): what ``--offsets`` keeps must come from the
    same code."""
    from nsgen.prep import (normalise, robust_angles, robust_features, robust_scores,
                            robust_tall, stripe_robust)
    from nsgen.prep._jit import sources_digest
    parts = [sources_digest()] + [inspect.getsource(m) for m in (normalise, robust_tall)]
    parts += [inspect.getsource(f) for f in (
        robust_scores.offsets, robust_scores.ranks, robust_scores.pooled,
        robust_scores._pool_index, robust_scores.strong_columns, robust_scores._interpolate,
        robust_scores._robust_scale, robust_scores.rank_index, robust_scores.mirror_table,
        robust_scores._window, robust_angles.angle_bins, robust_features.block_edges,
        robust_features.row_features, robust_features.row_feature_parts,
        robust_features.split_features,
        stripe_robust.row_offsets, stripe_robust.set_offsets)]
    parts += [repr((robust_scores.HALF_WINDOW, robust_scores.DROP, robust_scores.QUANTILES,
                    robust_scores.STRONG, robust_features.BLOCKS, robust_features.MIN_BLOCK))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def replay_robust(x: np.ndarray, store: Path, params: DetectParams) -> np.ndarray:
    """The robust mask of the normalised volume ``x`` from the offsets and bin means kept in
    ``store`` (an ``.npz``; made from ``x`` when missing or of other code)."""
    from nsgen.prep import robust_features, stripe_robust as sr
    n_k, n = x.shape[0], x.shape[1]
    depth = params.min_stripe_depth
    key = offsets_key()
    kept = np.load(store) if store.is_file() else None
    if kept is not None and str(kept["key"]) == key and int(kept["depth"]) == depth:
        qs, xb = kept["qs"], kept["xb"]
    else:
        feat = robust_features.row_features(np.ascontiguousarray(x, np.float32))
        qs = sr.row_offsets(feat, 0, (0, n), n, n_k, depth)
        xb = robust_features.split_features(feat, n_k)[2]
        tmp = store.with_name(f".{store.stem}.tmp.npz")
        np.savez(tmp, qs=qs, xb=xb, key=key, depth=depth)
        tmp.replace(store)
    mass = volume_mass(xb) if xb.shape[1] else None   # (every row's M0: robust_mass)
    scores: list[np.ndarray] = []
    first = sr.decide_offsets(qs, 0, xb, (0, n), n, n_k, depth=depth, mass=mass,
                              scores=scores)
    return second_pass(x, qs, first, xb, depth, scores, mass)


def second_pass(x: np.ndarray, qs: np.ndarray, first: np.ndarray, xb: np.ndarray,
                depth: int, scores: list[np.ndarray], mass: np.ndarray | None = None
                ) -> np.ndarray:
    """The detector's second rows-first pass (``stripe_robust.decide_twice``) after the
    first decision ``first`` (its block scores ``scores``) on the kept offsets ``qs``:
    where it leaves values out, the volume ``x`` is ranked again (the second offsets depend
    on the decisions: not kept); then the rows widened (``robust_rows.grow_rows``) and the stacks
    confirmed (``robust_stack.stack_flags``); ``mass``: the volume's
    ``robust_mass.volume_mass``, as the first decision's."""
    from nsgen.prep import robust_rows as rr, robust_second as rs, robust_stack as rk
    from nsgen.prep import robust_features, stripe_robust as sr
    from nsgen.prep.robust_angles import angle_bins
    n_k, n = x.shape[0], x.shape[1]
    hd = sr.depth_rule(n, depth)
    ex = rs.excluded(np.asarray(first.any(axis=0)), 0, (0, n), hd, n)
    if rs.second_rows(ex, 0, (0, n), hd) is not None:
        feat = robust_features.row_feature_parts(np.ascontiguousarray(x, np.float32), means=False)[0]
        sets, strong, _ = robust_features.split_features(feat, n_k)
        qs2 = rs.second_offsets(sets, strong, ex, 0, qs, 0, (0, n), n, hd)
        scores = []
        first = sr.decide_offsets(qs2, 0, xb, (0, n), n, n_k, depth=depth, mass=mass,
                                  scores=scores)
    edges = robust_features.block_edges(n_k)
    stacked = rk.stack_flags(first, 0, scores, mass, (0, n), edges, angle_bins(edges, n_k))
    return rk.apply(rr.grow_rows(first, 0, xb, scores, (0, n), edges), stacked)


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
    ap.add_argument("--offsets", type=Path, default=None,
                    help="directory keeping the robust offsets: decisions replayed from them")
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
                        if name == "robust" and a.offsets is not None:
                            a.offsets.mkdir(parents=True, exist_ok=True)
                            mask = replay_robust(x, a.offsets / f"{name_scan[:-4]}.npz",
                                                 params)
                        else:
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
