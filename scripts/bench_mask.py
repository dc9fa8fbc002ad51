#!/usr/bin/env python
"""Benchmark ``nsgen mask`` against reading the same scan once, with a per-stage breakdown.

A scan of 1801 x ROWS x 2560 uint16 is made once with the project's scan writer (cached
under --cache, shared with bench_engine.py). The seed's detection parameters (size 250,
radius 3, threshold 0.63, length 600, depth 30, width 22, sensitivity 85) are used with
``--memory-limit``. Printed, from runs alternating with the floor:

* the median time to read the scan's projections once with h5py (the floor) and the median
  wall time of ``nsgen mask``, and their ratio (targets: <= 4 cold, <= 8 warm), first with
  the scan in the page cache (warm), then evicted before each timing (cold scan, warm
  software);
* the per-stage breakdown of the mask runs (medians, from their ``-v`` log): start-up
  (process start to the first stage), each pass's wall time and the seconds its workers
  spent per step (summed over workers: with 2 workers a pass's wall time is about half its
  worker seconds when they are busy; the robust detector's scratch writes and reads are
  the steps ``write`` and ``read``), the rows repeated as halos, the archive write;
* the peak PSS of the whole process tree plus the scratch the run keeps in a memory file
  system (``-v``'s ``scratch: ... in memory``: no process maps it, so PSS misses it) against
  ``--memory-limit`` (target <= 75 %), from a separate run (sampling it slows a run by
  15-20 %).

Every ``nsgen mask`` run is of this checkout (the one the script is in, first on
``PYTHONPATH``: :func:`bench_synthetic.tree_env`), whatever ``nsgen`` is installed or the
working directory holds. With ``--baseline ROOT`` another checkout's ``nsgen mask`` (its code, its compiled kernels)
runs alternating with this one's, and both columns print side by side: before/after figures
from one run, under the same load. With ``--versus DETECTOR`` this checkout's ``nsgen mask
--detector DETECTOR`` runs alternating too (e.g. the robust detector against Larix's).

Only ratios within one run mean anything on a shared machine: other jobs slow the floor
and nsgen alike, but not equally from run to run.

    python scripts/bench_mask.py [--rows 256] [--repeats 3] [--memory-limit 4GB]
                                 [--detector larix] [--baseline ROOT] [--versus larix]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import evict, make_scan, read_once  # noqa: E402
from bench_synthetic import (become_subreaper, compile_tree, run_cpu,  # noqa: E402
                             run_nsgen, tree_env)

TARGETS = {False: 8.0, True: 4.0}   # ratio to the read: warm, cold


def breakdown(stderr: str) -> dict[str, float]:
    """Seconds per stage and per worker step from one ``nsgen mask -v`` log."""
    out: dict[str, float] = {}
    for m in re.finditer(r"\] ([\w ()+,-]+?): \d+ chunks in ([0-9.]+) s", stderr):
        out[f"{m.group(1)}: wall"] = float(m.group(2))
    for m in re.finditer(r"\] ([\w ()+,-]+?) worker seconds: (.*)", stderr):
        for item in m.group(2).split(", "):
            step, value = item.rsplit(" ", 1)
            out[f"{m.group(1)}: {step}"] = float(value)
    for name in ("start-up", "engine stop", "archive write"):
        found = re.search(rf"{name}: ([0-9.]+) s", stderr)
        if found:
            out[name] = float(found.group(1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--columns", type=int, default=2560)
    ap.add_argument("--angles", type=int, default=1801)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--detector", help="--detector of nsgen mask (default: nsgen's)")
    ap.add_argument("--versus", help="another --detector whose nsgen mask (this checkout's) "
                    "runs alternating with the others")
    ap.add_argument("--cache", default="/tmp/nsgen-bench")
    ap.add_argument("--baseline", help="root of another nsgen checkout (e.g. `git worktree "
                    "add /tmp/base main`) whose nsgen mask runs alternating with this one's")
    a = ap.parse_args()
    if not become_subreaper():   # (the tree's CPU seconds then count its workers too)
        print("  (no child subreaper: CPU seconds miss the engine's orphaned workers)")
    cache = Path(a.cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    scan = cache / f"scan_{a.angles}x{a.rows}x{a.columns}.nxs"
    make_scan(scan, a.rows, a.columns, a.angles)
    from nsgen.config import parse_bytes

    def mask_args(directory: str, detector: str | None) -> list[str]:
        return ["mask", "--h5", str(scan), "-a", str(Path(directory) / "masks.npz"),
                "--memory-limit", a.memory_limit,
                *(["--detector", detector] if detector else [])]

    print(f"nsgen mask on {a.angles} x {a.rows} x {a.columns} uint16 (seed parameters, "
          f"--memory-limit {a.memory_limit}{f', --detector {a.detector}' if a.detector else ''}"
          f"), {a.repeats} run(s) each, alternating with the floor; a shared machine: only "
          f"ratios within this run mean anything")
    versions: list[tuple[str, str | None, str | None]] = [("nsgen mask", None, a.detector)]
    if a.baseline:
        versions.insert(0, (f"baseline ({a.baseline})", a.baseline, a.detector))
    if a.versus:
        versions.append((f"--detector {a.versus}", None, a.versus))
    # every run uses its tree's bytecode cache, as an installed nsgen does (tree_env; an
    # environment that sets PYTHONDONTWRITEBYTECODE made each process compile ~40 modules)
    for root in {root for _, root, _ in versions}:
        compile_tree(root)
    for cold in (False, True):
        if cold and not evict(scan):
            print("  (posix_fadvise unavailable: cold-scan figures skipped)")
            break
        if not cold:
            read_once(scan)   # a warm figure never includes a cold first read
        floors: list[float] = []
        walls: dict[str, list[float]] = {name: [] for name, _, _ in versions}
        cpus: dict[str, list[float]] = {name: [] for name, _, _ in versions}
        stages: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in versions}
        for _ in range(a.repeats):
            if cold:
                evict(scan)
            floors.append(read_once(scan))
            for name, root, detector in versions:
                with tempfile.TemporaryDirectory() as d:
                    if cold:
                        evict(scan)
                    wall, cpu, err = run_cpu(mask_args(d, detector), extra=("-v",),
                                             env=tree_env(root))
                walls[name].append(wall)
                cpus[name].append(cpu)
                stages[name].append(breakdown(err))
        floor = statistics.median(floors)
        print(f"  {'cold scan' if cold else 'warm cache'}: read once (h5py) median "
              f"{floor:.2f} s (runs: {', '.join(f'{f:.2f}' for f in floors)})")
        for name, _, _ in versions:
            wall = statistics.median(walls[name])
            print(f"    {name}: median {wall:.2f} s (runs: "
                  f"{', '.join(f'{w:.1f}' for w in walls[name])}) -> ratio {wall / floor:.1f} "
                  f"(target <= {TARGETS[cold]:g}); CPU of the process tree median "
                  f"{statistics.median(cpus[name]):.1f} s (runs: "
                  f"{', '.join(f'{c:.1f}' for c in cpus[name])})")
        print("    breakdown (medians; 'worker' steps are seconds summed over workers):")
        keys = list(dict.fromkeys(k for name, _, _ in versions for k in stages[name][0]))
        print(f"      {'':42s}" + "".join(f"{name[:24]:>26s}" for name, _, _ in versions))
        for key in keys:
            cells = []
            for name, _, _ in versions:
                med = statistics.median([s.get(key, 0.0) for s in stages[name]])
                cells.append(f"{med:8.0f}" + " " * 18 if key.endswith(" rows") else
                             f"{med:8.2f} s ({med / floor:5.2f} x read)")
            print(f"      {key:42s}" + "".join(f"{c:>26s}" for c in cells))
    limit = parse_bytes(a.memory_limit)
    for name, root, detector in versions:
        with tempfile.TemporaryDirectory() as d:
            _, peak, err = run_nsgen(mask_args(d, detector), extra=("-v",), memory=True,
                                     env=tree_env(root))
        # scratch kept in a memory file system is mapped by no process: PSS misses it
        shm = sum(float(m.group(1)) for m in re.finditer(
            r"scratch: \d+ of \d+ rows in memory \(([0-9.]+) MiB\)", err)) * 2**20
        total = peak + shm
        print(f"  {name}: peak PSS of the process tree (separate run) {peak / 2**20:.0f} MiB"
              f" + scratch in memory {shm / 2**20:.0f} MiB = {total / 2**20:.0f} MiB of "
              f"{limit / 2**20:.0f} MiB limit = {100 * total / limit:.0f} % (target <= 75 %)")


if __name__ == "__main__":
    main()
