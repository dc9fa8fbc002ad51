#!/usr/bin/env python
"""First-run cost of each command: Numba compiling its kernels into an empty cache.

For each command (``nsgen -m raw``, ``nsgen mask``, ``nsgen -m paired`` with its on-the-fly
mask, ``nsgen make-scan``) on a small scan (ANGLES x ROWS x COLUMNS, made once), this runs
the command twice with ``NUMBA_CACHE_DIR`` pointing at a new, empty directory: the first run
compiles every kernel the command uses (as after a fresh install), the second loads them
from that cache. The difference is the first-run cost. Printed: medians over ``--repeats``
fresh caches of the first and second run, the extra seconds (wall and CPU of the whole
process tree: this script becomes a child subreaper and counts its children's
CPU time exactly), and how many compiled kernel signatures
the command cached. Other caches are left alone (the environment variable
redirects only these runs). Timings on a shared machine vary with the other load.

    python scripts/bench_first_run.py [--repeats 3] [--angles 181] [--rows 32] [--columns 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_synthetic import become_subreaper, run_cpu  # noqa: E402


def commands(scan: Path, out: Path) -> dict[str, list[str]]:
    """The command lines measured (outputs under ``out``)."""
    return {
        "nsgen -m raw": ["-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(out / "raw"),
                         "--no-preview"],
        "nsgen mask": ["mask", "--h5", str(scan), "-a", str(out / "m.npz")],
        "nsgen -m paired": ["-m", "paired", "--hdf-root", str(scan), "-s", "1", "-r",
                            str(out / "paired"), "--no-preview"],
        "nsgen make-scan": ["make-scan", str(out / "made.nxs"), "--angles", "31", "--rows", "8",
                            "--columns", "64"],
    }


def run(args: list[str], cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds (whole process tree) of one ``python -m nsgen ARGS`` with its
    Numba cache in ``cache``."""
    wall, cpu, _ = run_cpu(args, extra=(), env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})
    return wall, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--angles", type=int, default=181)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--columns", type=int, default=256)
    p.add_argument("--only", action="append", help="measure only this command (repeatable)")
    args = p.parse_args()
    if not become_subreaper():
        print("(cannot become a child subreaper: CPU-seconds miss the engine's processes)")
    print(f"load average {os.getloadavg()[0]:.1f}; {args.repeats} fresh caches per command")
    with tempfile.TemporaryDirectory(prefix="nsgen-first-run-") as tmp:
        base = Path(tmp)
        scan = base / "4000.nxs"
        from nsgen.io.scan_writer import write_scan
        write_scan(scan, n_angles=args.angles, n_rows=args.rows, n_columns=args.columns, seed=1)
        print(f"{'command':18s} {'first s':>8s} {'second s':>9s} {'extra s':>8s} "
              f"{'first CPU s':>12s} {'second CPU s':>13s} {'extra CPU s':>12s} {'kernels':>8s}")
        for name in commands(scan, base):
            if args.only and name not in args.only:
                continue
            first, second, kernels = [], [], 0
            for k in range(args.repeats):
                cache = base / f"cache-{name.replace(' ', '_')}-{k}"
                cache.mkdir()
                # each run writes a new output: a rerun into the same root would keep the
                # finished sample and measure no work at all
                first.append(run(commands(scan, base / f"out-{k}-first")[name], cache))
                second.append(run(commands(scan, base / f"out-{k}-second")[name], cache))
                kernels = len(list(cache.rglob("*.nbc")))
            f, s = (statistics.median(t[0] for t in first), statistics.median(t[0] for t in second))
            fc, sc = (statistics.median(t[1] for t in first), statistics.median(t[1] for t in second))
            print(f"{name:18s} {f:8.2f} {s:9.2f} {f - s:8.2f} {fc:12.2f} {sc:13.2f} {fc - sc:12.2f} "
                  f"{kernels:8d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
