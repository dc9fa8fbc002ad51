#!/usr/bin/env python
"""Replay the robust detector's rows-first offsets on captured features, before/after.

The features (:func:`~nsgen.prep.robust_features.raw_feature_fields`: each angle set's ranks
and the strong columns) of detector rows ``0 .. ROWS - 1`` of ``bench_mask.py``'s scan
(1801 x 256 x 2560, made by it under ``--cache``) are computed once and kept in
``--features`` (a ``.npz``). Each timed process then loads them and measures, as CPU-seconds
of one call each (best of ``--inner``):

* ``set_offsets``: the offsets pass's work on one chunk of 64 rows (rows ``hd .. hd + 64``,
  the volume of 256 rows): :func:`~nsgen.prep.robust_scores.offsets` of every angle set,
  the row-alone scores (``with_tall``) and the rank consistency;
* ``offsets``: the offsets of every angle set alone;
* ``strong_columns``: the first pass's strong columns of the same 64 rows, every set;
* ``robust_scale``: of the 64 x sets rows of offsets (one call a row, from Python).

With ``--baseline ROOT`` another checkout (its code, its compiled kernels) runs in
processes alternating with this one's; medians over ``--repeats`` processes each. With
``--check`` the outputs of both are compared byte for byte.

    python scripts/bench_offsets.py [--repeats 5] [--baseline /tmp/base0] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parents[1])
ROWS = 96        # captured: a chunk of 64 and 15 rows each side, and one more
CHUNK = (15, 79)

CHILD = r"""
import hashlib, json, sys, time
import numpy as np
from nsgen.prep import robust_scores as rs
try:
    from nsgen.prep import _robust_offsets_jit as ro
except ImportError:   # a checkout from before the offsets kernels had their module
    from nsgen.prep import _robust_jit as ro
from nsgen.prep.stripe_robust import set_offsets
d = np.load(sys.argv[1])
f = [d[f"arr_{i}"] for i in range(len(d.files))]
sets, strong = f[:-1], f[-1]
flags = [strong[:, n] > 0.5 for n in range(len(sets))]
inner = int(sys.argv[2])
r0, r1 = %d, %d
def best(fn):
    out, ts = None, []
    for _ in range(inner):
        t = time.process_time(); out = fn(); ts.append(time.process_time() - t)
    return min(ts), out
def offsets():
    cons = [np.zeros((r1 - r0, sets[0].shape[2])) for _ in sets]
    return [rs.offsets(s, fl, r0, r1, 0, 15, 256, c) for s, fl, c in zip(sets, flags, cons)] + cons
best(lambda: set_offsets(sets, flags, 0, (r0, r0 + 3), 256))   # (compiled, loaded)
best(lambda: rs.strong_columns(sets[0][:2]))
res = {}
res["set_offsets"], qs = best(lambda: set_offsets(sets, flags, 0, (r0, r1), 256))
res["offsets"], _ = best(offsets)
res["strong_columns"], st = best(lambda: [rs.strong_columns(s[r0:r1]) for s in sets])
rows = [np.ascontiguousarray(qs[k, n, :-1]) for k in range(qs.shape[0]) for n in range(len(sets))]
res["robust_scale"], sc = best(lambda: [ro.robust_scale(q) for q in rows])
digest = hashlib.sha1(qs.tobytes() + np.stack(st).tobytes() + np.array(sc).tobytes())
res["digest"] = digest.hexdigest()
print(json.dumps(res))
""" % CHUNK


def capture(path: Path, cache: Path) -> None:
    """The features of rows ``0 .. ROWS - 1`` of the bench scan into ``path``."""
    import numpy as np

    from nsgen.prep.robust_features import raw_feature_fields
    from nsgen.scan import ScanLayout
    from nsgen.stages.scan_source import ScanSource
    from nsgen.stages.scan_stages import read_scan_rows
    scan_path = cache / "scan_1801x256x2560.nxs"
    if not scan_path.is_file():
        sys.exit(f"{scan_path}: run scripts/bench_mask.py --cache {cache} first")
    scan = ScanSource(str(scan_path), ScanLayout()).open()
    raw = np.empty((1801, ROWS, 2560), np.uint16)
    flat, dark = np.empty((2, ROWS, 2560), np.float32)
    read_scan_rows(scan, slice(0, ROWS), [raw, flat, dark])
    np.savez(path, *raw_feature_fields(raw, flat, dark))


def run(tree: str, features: Path, inner: int) -> dict[str, float | str]:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, "-P", "-c", CHILD, str(features), str(inner)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--baseline", help="another checkout's root, run alternately")
    ap.add_argument("--check", action="store_true", help="compare the outputs' digests")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/nsgen-bench"))
    ap.add_argument("--features", type=Path, default=Path("/tmp/nsgen-bench/offsets-features.npz"))
    a = ap.parse_args()
    if not a.features.is_file():
        capture(a.features, a.cache)
    trees = {"this": HERE} | ({"baseline": a.baseline} if a.baseline else {})
    runs: dict[str, list[dict[str, float | str]]] = {k: [] for k in trees}
    for _ in range(a.repeats):
        for name, tree in trees.items():
            runs[name].append(run(tree, a.features, a.inner))
    keys = ["set_offsets", "offsets", "strong_columns", "robust_scale"]
    print(f"CPU-s of one call on rows {CHUNK[0]}-{CHUNK[1] - 1} (medians of {a.repeats} "
          f"processes, each the best of {a.inner}); load {os.getloadavg()[0]:.2f}")
    print(f"{'':16s}" + "".join(f"{k:>12s}" for k in trees))
    for key in keys:
        print(f"{key:16s}" + "".join(
            f"{statistics.median(float(r[key]) for r in runs[k]):12.3f}" for k in trees))
    if a.check:
        digests = {str(r["digest"]) for rs in runs.values() for r in rs}
        print("outputs", "identical" if len(digests) == 1 else f"DIFFER: {digests}")


if __name__ == "__main__":
    main()
