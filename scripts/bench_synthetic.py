#!/usr/bin/env python
"""Benchmark whole synthetic samples against the issue's targets and a measured floor.

Runs ``nsgen -m complex`` (N=256 by default: 300 objects, 5 shifts, 20 flats, 1536 TIFFs)
several times and prints the median wall time, the per-stage times from ``-v``, the
peak RSS of the whole process tree, and the ratio against a floor measured in the same
run: writing the same number of TIFFs of the same size from one process. Then one
N=512 sample. Peak memory comes from one more run (sampling it slows a run down). No assertions: read the ratios.
``--formats tiff hdf5`` instead compares whole-sample wall times per output format
(runs alternate between formats; ratio against tiff in the same run).

    python scripts/bench_synthetic.py [--repeats 3] [--sizes 256 512] [--workers auto]
    python scripts/bench_synthetic.py --sizes 256 --formats tiff hdf5 zarr
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from nsgen.io.tiff import write_tiff


def tree_rss(proc: psutil.Process) -> int:
    """Memory of a process and all its descendants: the sum of their PSS.

    PSS (proportional set size) splits shared pages between the processes that map
    them, so shared-memory slots mapped by the main process, the reader and every worker
    count once (a plain RSS sum counts them once per process).
    """
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total


GENERATION_FLAGS = ("-v", "--no-progress", "--no-preview")


def run_nsgen(args: list[str], extra: tuple[str, ...] = GENERATION_FLAGS,
              memory: bool = False) -> tuple[float, int, str]:
    """Run ``nsgen ARGS EXTRA``; return wall seconds, peak tree PSS and stderr.

    The peak (``memory=True``) is sampled every 0.1 s from ``/proc/<pid>/smaps``, which
    walks every page table of every process of the tree: that slows a run of a few GB by
    15-20 %, so timed runs leave it off (peak 0) and the scripts measure memory in a
    separate run.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "nsgen", *args, *extra],
                            stderr=subprocess.PIPE, text=True)
    peak = [0]
    th = None
    if memory:
        ps = psutil.Process(proc.pid)

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss(ps))
                time.sleep(0.1)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    if th is not None:
        th.join()
    if proc.returncode != 0:
        raise SystemExit(f"nsgen failed:\n{err}")
    return wall, peak[0], err


def stage_times(stderr: str) -> dict[str, float]:
    """Per-stage seconds from the ``-v`` log."""
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r"\] (\w+): \d+ chunks in ([0-9.]+) s", stderr)}


def tiff_floor(n_files: int, shape: tuple[int, int], directory: Path) -> float:
    """Seconds to write ``n_files`` uint16 TIFFs of ``shape`` from one process."""
    img = np.random.default_rng(0).integers(0, 65535, shape, dtype=np.uint16)
    t0 = time.perf_counter()
    for i in range(n_files):
        write_tiff(directory / f"f{i:05d}.tif", img)
    return time.perf_counter() - t0


def compare_formats(n: int, workers: str, repeats: int, formats: list[str]) -> None:
    """Median wall time of a complex sample per output format, runs alternating."""
    args = ["-m", "complex", "-N", str(n), "-o", "300", "-s", "5", "-f", "20",
            "--workers", workers]
    walls: dict[str, list[float]] = {f: [] for f in formats}
    for _ in range(repeats):
        for fmt in formats:
            with tempfile.TemporaryDirectory() as d:
                walls[fmt].append(run_nsgen([*args, "-r", d, "--format", fmt])[0])
    ref = statistics.median(walls[formats[0]])
    print(f"N={n}: complex sample, {repeats} runs per format (alternating)")
    for fmt, w in walls.items():
        med = statistics.median(w)
        print(f"  {fmt:<5} wall median {med:.2f} s (runs: {', '.join(f'{x:.2f}' for x in w)}); "
              f"ratio to {formats[0]} {med / ref:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--formats", nargs="+", default=None,
                    help="compare these --format values (first = reference) instead")
    a = ap.parse_args()
    if a.formats:
        for n in a.sizes:
            compare_formats(n, a.workers, a.repeats, a.formats)
        return
    for n in a.sizes:
        reps = a.repeats if n <= 256 else 1
        walls, stages = [], []
        args = ["-m", "complex", "-N", str(n), "-o", "300", "-s", "5", "-f", "20",
                "--workers", a.workers]
        for _ in range(reps):
            with tempfile.TemporaryDirectory() as d:
                wall, _, err = run_nsgen([*args, "-r", d])
                walls.append(wall)
                stages.append(stage_times(err))
        with tempfile.TemporaryDirectory() as d:
            peak = run_nsgen([*args, "-r", d], memory=True)[1]
        p, dh = int(0.5 * np.pi * n), int(np.sqrt(2) * n)
        n_files = n * 6
        with tempfile.TemporaryDirectory() as d:
            floor = tiff_floor(n_files, (p, dh), Path(d))
        med = statistics.median(walls)
        proj = statistics.median(s.get("project", float("nan")) for s in stages)
        print(f"N={n}: complex sample ({n_files} TIFFs of {p}x{dh}), {reps} run(s)")
        print(f"  wall median {med:.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)})"
              + (f"; target 10 s -> {med / 10:.2f} of target" if n == 256 else ""))
        print(f"  projection stage median {proj:.2f} s"
              + (f"; target 2 s -> {proj / 2:.2f} of target" if n == 256 else ""))
        print("  stages (last run): " + ", ".join(f"{k} {v:.2f} s" for k, v in stages[-1].items()))
        print(f"  floor: writing {n_files} TIFFs from one process {floor:.2f} s; "
              f"ratio run/floor {med / floor:.1f}")
        print(f"  peak memory (PSS) of the process tree {peak / 2**20:.0f} MiB (separate run)")


if __name__ == "__main__":
    main()
