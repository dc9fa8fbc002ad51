#!/usr/bin/env python
"""``nsgen make-scan`` against writing the same bytes with h5py, in the same run.

For a scan of ANGLES projections (plus 20 flats and 10 darks) of ROWS x COLUMNS uint16:

* floor: h5py writes the same number of frames, same shape, chunks (one frame each) and
  dtype, from one frame made beforehand, in blocks of the size make-scan writes;
* ``python -m nsgen make-scan`` (whole command: start-up, workers, writing) with
  ``--workers 1`` and with one worker per core.

Printed: medians of ``--repeats`` runs (wall and CPU-seconds of the whole process tree),
MB/s, nanoseconds per voxel, the ratio to the floor (target <= 2) and, per tree, the CPU
milliseconds of each stage of one projection frame (line integrals, exp, labelled defects,
NumPy's normals for reference, noise + counts + uint16 conversion, pwrite of the frame, the
whole frame), each measured in a fresh process running that tree. ``--baseline TREE`` also
runs make-scan from another source tree (e.g. a worktree of main), alternating with this one
in every repeat. Each file is deleted after its timing.
Timings on a shared machine vary with the other load: compare the ratios, not the seconds.

    python scripts/bench_make_scan.py [--angles 1801] [--rows 256] [--columns 2560]
                                      [--repeats 3] [--dir DIR] [--baseline TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_synthetic import _children_cpu, _reap_orphans, become_subreaper  # noqa: E402

FLATS, DARKS = 20, 10


def write_floor(path: Path, frame: np.ndarray, n_frames: int, block: int) -> float:
    """Seconds to write ``n_frames`` copies of ``frame`` with h5py (one frame per chunk)."""
    rows, columns = frame.shape
    blockdata = np.broadcast_to(frame, (block, rows, columns)).copy()
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", (n_frames, rows, columns), frame.dtype, chunks=(1, rows, columns))
        for a in range(0, n_frames, block):
            b = min(n_frames, a + block)
            d[a:b] = blockdata[:b - a]
    return time.perf_counter() - t0


def make_scan(path: Path, args: argparse.Namespace, workers: int, tree: str | None = None
              ) -> tuple[float, float]:
    """Wall and CPU seconds (whole process tree) of one ``python -m nsgen make-scan``, run
    from source ``tree`` (first on ``PYTHONPATH``) if given."""
    cmd = [sys.executable, "-m", "nsgen", "make-scan", str(path), "--angles", str(args.angles),
           "--rows", str(args.rows), "--columns", str(args.columns), "--flats", str(FLATS),
           "--darks", str(DARKS), "--workers", str(workers), "--overwrite"]
    env = None if tree is None else {**os.environ, "PYTHONPATH": tree}
    _reap_orphans()
    c0, t0 = _children_cpu(), time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path (a checkout there would win)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=path.parent)
    wall = time.perf_counter() - t0
    _reap_orphans()
    return wall, _children_cpu() - c0


def frame_breakdown(rows: int, columns: int, repeats: int = 7) -> dict[str, float]:
    """Median CPU milliseconds of the stages of one projection frame, in this process (the
    tree first on ``sys.path``). Only functions whose signatures every tree since the
    parallel frames shares, so a baseline tree is measured the same way."""
    from nsgen.io.scan_defects import apply_defects, draw_defects
    from nsgen.io.scan_frames import FrameMaker, FrameSpec, _line_integrals, expose
    from nsgen.rng import generator

    key = np.array([2, 1] + [0] * 9, np.int32)
    spec = FrameSpec(n_rows=rows, n_columns=columns, n_angles=9, seed=0, i0=20000.0, dtype="uint16",
                     image_key=key, frame_angle=np.linspace(0, 180, key.size))
    maker = FrameMaker(spec)
    out = np.empty((rows, columns), np.uint16)
    maker.frame(5, out)  # compile
    labels = draw_defects(1801, rows, columns, 0) if columns >= 64 else []
    t = _line_integrals(maker._phantom, 30.0, rows, columns, maker._container)
    np.exp(-t, out=t)
    gain = maker._gain.copy()
    rng = generator(0, "bench")
    fd, name = tempfile.mkstemp(prefix="nsgen-bench-write-", dir=os.environ.get("TMPDIR"))
    offset = [0]

    def write() -> None:  # a new frame's worth of page cache, as make-scan's workers write
        view = out.data.cast("B")
        while view:
            n = os.pwrite(fd, view, offset[0])
            view, offset[0] = view[n:], offset[0] + n

    parts = {
        "line integrals": lambda: _line_integrals(maker._phantom, 30.0, rows, columns, maker._container),
        "exp": lambda: np.exp(t, out=np.empty_like(t)),
        "defects (labelled)": lambda: apply_defects(gain, np.zeros_like(gain), 5, 1801, labels),
        "NumPy normals": lambda: rng.standard_normal((rows, columns), dtype=np.float32),
        "expose (noise, counts, uint16)": lambda: expose(t, maker._beam, maker._flat_drift, maker._gain,
                                                          maker._dark, generator(0, "scan-frame", 5), out),
        "write (pwrite)": write,
        "whole frame (no write)": lambda: maker.frame(5, out),
    }
    result = {}
    try:
        for name_, fn in parts.items():
            times = []
            for _ in range(repeats):
                t0 = time.process_time()
                fn()
                times.append(time.process_time() - t0)
            result[name_] = 1e3 * statistics.median(times)
    finally:
        os.close(fd)
        os.unlink(name)
    return result


def tree_breakdown(rows: int, columns: int, tree: str | None) -> dict[str, float]:
    """:func:`frame_breakdown` in a fresh process running source ``tree`` (None: this one)."""
    env = {**os.environ, "PYTHONPATH": tree or str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-P", __file__, "--breakdown", "--rows", str(rows),
                           "--columns", str(columns)], check=True, capture_output=True, text=True,
                          env=env, cwd=tempfile.gettempdir())
    return json.loads(done.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--angles", type=int, default=1801)
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--columns", type=int, default=2560)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dir", type=Path, default=None, help="where the files go (default: a temporary folder)")
    p.add_argument("--workers", type=int, nargs="+", default=None,
                   help="worker counts to run (default: 1 and one per core)")
    p.add_argument("--baseline", action="append", default=[],
                   help="another source tree to run alternately (before/after; repeatable)")
    p.add_argument("--breakdown", action="store_true",
                   help="only print the per-frame stages of this process's tree (JSON)")
    args = p.parse_args()
    if args.breakdown:
        print(json.dumps(frame_breakdown(args.rows, args.columns)))
        return 0
    if not become_subreaper():
        print("(cannot become a child subreaper: CPU-seconds miss the worker processes)")
    from nsgen.io.scan_frames import FrameMaker, FrameSpec, default_workers
    from nsgen.io.scan_writer import _BLOCK_BYTES

    n_frames = args.angles + FLATS + DARKS
    nbytes = n_frames * args.rows * args.columns * 2
    cores = default_workers()
    block = max(1, _BLOCK_BYTES // (args.rows * args.columns * 4))
    print(f"scan {args.angles} x {args.rows} x {args.columns} uint16 + {FLATS} flats, {DARKS} darks: "
          f"{nbytes / 1e9:.2f} GB; {cores} cores; load average {os.getloadavg()[0]:.1f}")
    key = np.array([0], np.int32)
    frame = FrameMaker(FrameSpec(n_rows=args.rows, n_columns=args.columns, n_angles=1, seed=0, i0=2e4,
                                 dtype="uint16", image_key=key, frame_angle=np.zeros(1))).frame(0)
    trees = [(f"{Path(t).name}: ", t) for t in args.baseline] + [("", None)]
    stages = {label or "this tree": tree_breakdown(args.rows, args.columns, tree) for label, tree in trees}
    names_ = list(next(iter(stages.values())))
    print(f"per-frame CPU ms (median of 7, one {args.rows} x {args.columns} projection):")
    print(f"  {'stage':32s}" + "".join(f"{k.rstrip(': '):>16s}" for k in stages))
    for stage in names_:
        print(f"  {stage:32s}" + "".join(f"{v.get(stage, float('nan')):16.2f}" for v in stages.values()))
    counts = args.workers or [1, cores]
    names = {(label, w): f"{label}make-scan --workers {w}" for label, _ in trees for w in counts}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="nsgen-bench-make-scan-") as tmp:
        path = Path(tmp) / "scan.nxs"
        times: dict[str, list[tuple[float, float]]] = {"h5py write (floor)": []}
        times.update({name: [] for name in names.values()})
        for _ in range(args.repeats):
            c0 = time.process_time()
            wall = write_floor(path, frame, n_frames, block)
            times["h5py write (floor)"].append((wall, time.process_time() - c0))
            path.unlink()
            for w in counts:
                for label, tree in trees:
                    times[names[(label, w)]].append(make_scan(path, args, w, tree))
                    path.unlink()
    floor = statistics.median(t[0] for t in times["h5py write (floor)"])
    floor_cpu = statistics.median(t[1] for t in times["h5py write (floor)"])
    voxels = nbytes / 2
    print(f"{'':35s} {'median s':>9s} {'MB/s':>7s} {'ns/voxel':>9s} {'x floor':>8s} {'CPU s':>7s} {'x CPU':>6s}"
          "  runs (wall/CPU)")
    for name, ts in times.items():
        m, c = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        print(f"{name:35s} {m:9.2f} {nbytes / 1e6 / m:7.0f} {1e9 * m / voxels:9.2f} {m / floor:8.2f} {c:7.2f} "
              f"{c / floor_cpu:6.2f}  " + " ".join(f"{t[0]:.1f}/{t[1]:.1f}" for t in ts))
    w = max(counts)
    print(f"target: make-scan with one worker per core <= 2.00 x floor (got "
          f"{statistics.median(t[0] for t in times[names[('', w)]]) / floor:.2f} with {w}); "
          f"load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
