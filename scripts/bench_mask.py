#!/usr/bin/env python
"""Benchmark ``nsgen mask`` against reading the same scan once (issue: masks in minutes).

A scan of 1801 x ROWS x 2560 uint16 is made once with the project's scan writer (cached
under --cache, shared with bench_engine.py). Printed: the median time to read its
projections once with h5py (the floor), the median wall time of ``nsgen mask`` with the
seed's parameters (size 250, radius 3, threshold 0.63, length 600, depth 30, width 22,
sensitivity 85) and their ratio (target < 5), first with the scan in the page cache, then
with the scan evicted from it before each timing (cold scan, warm software); then the peak
PSS of the whole process tree against ``--memory-limit``, from a separate run (sampling
it slows a run by 15-20 %). The reference needs 2-5 hours per scan.

    python scripts/bench_mask.py [--rows 256] [--repeats 2] [--memory-limit 4GB]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import evict, make_scan, time_against_read  # noqa: E402
from bench_synthetic import run_nsgen  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--columns", type=int, default=2560)
    ap.add_argument("--angles", type=int, default=1801)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--cache", default="/tmp/nsgen-bench")
    a = ap.parse_args()
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    scan = cache / f"scan_{a.angles}x{a.rows}x{a.columns}.nxs"
    make_scan(scan, a.rows, a.columns, a.angles)
    from nsgen.config import parse_bytes

    def mask_args(directory: str) -> list[str]:
        return ["mask", "--h5", str(scan), "-a", str(Path(directory) / "masks.npz"),
                "--memory-limit", a.memory_limit]

    print(f"nsgen mask on {a.angles} x {a.rows} x {a.columns} uint16 (seed parameters), "
          f"{a.repeats} run(s) each")
    for cold in (False, True):
        if cold and not evict(scan):
            print("  (posix_fadvise unavailable: cold-scan figures skipped)")
            break
        floors, walls = time_against_read(scan, a.repeats, cold, mask_args, extra=("-v",))
        floor, wall = statistics.median(floors), statistics.median(walls)
        print(f"  {'cold scan' if cold else 'warm cache'}: read once (h5py) median "
              f"{floor:.2f} s; nsgen mask median {wall:.1f} s (runs: "
              f"{', '.join(f'{w:.1f}' for w in walls)}) -> ratio {wall / floor:.1f} "
              f"(target < 5)")
    with tempfile.TemporaryDirectory() as d:
        peak = run_nsgen(mask_args(d), extra=("-v",), memory=True)[1]
    print(f"  peak PSS of the process tree (separate run) {peak / 2**20:.0f} MiB of "
          f"{parse_bytes(a.memory_limit) / 2**20:.0f} MiB limit")

if __name__ == "__main__":
    main()
