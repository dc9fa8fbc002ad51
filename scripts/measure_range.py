#!/usr/bin/env python
"""Measure how much of the 16-bit range real-mode sinograms use.

Makes a scan with ``nsgen make-scan`` (optionally with dead pixels: 0 in every flat, dark
and projection, as a dead detector pixel reads), runs ``nsgen -m raw`` on it once per
option set, reads every written TIFF and prints, per run, the fraction of 0..65535 used
per file (``(max - min) / 65535``: median, 10th percentile, share of files under 10 %).
TIFFs are read directly, so any nsgen checkout can be measured (``--checkout``, put first
on PYTHONPATH; e.g. the main branch for "before").

    python scripts/measure_range.py [--angles 1801 --rows 64 --columns 512] \\
        [--dead 30:100] [--checkout PATH] [--runs "" "--bounds-percentile 0.1"]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import tifffile


def nsgen(args: list[str], checkout: str) -> None:
    env = {**os.environ, "PYTHONPATH": checkout}
    subprocess.run([sys.executable, "-m", "nsgen", *args], check=True, env=env, cwd=checkout,
                   stdout=subprocess.DEVNULL)


def ranges(root: Path) -> np.ndarray:
    out = []
    for path in sorted(root.rglob("*.tif")):
        u = tifffile.imread(path)
        out.append((int(u.max()) - int(u.min())) / 65535)
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--angles", type=int, default=1801)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--columns", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dead", nargs="*", default=[], metavar="ROW:COL",
                    help="pixels reading 0 in every frame")
    ap.add_argument("--checkout", default=str(Path(__file__).resolve().parents[1]),
                    help="nsgen checkout to run (default: this one)")
    ap.add_argument("--runs", nargs="+", default=["", "--bounds-percentile 0.1"],
                    help="option sets, one run each")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "1000.nxs"
        nsgen(["make-scan", str(scan), "--angles", str(args.angles), "--rows", str(args.rows),
               "--columns", str(args.columns), "--seed", str(args.seed)], args.checkout)
        if args.dead:
            with h5py.File(scan, "r+") as f:
                data = f["entry1/tomo_entry/data/data"]
                for spec in args.dead:
                    r, c = (int(x) for x in spec.split(":"))
                    data[:, r, c] = 0
        for i, options in enumerate(args.runs):
            root = Path(tmp) / f"out{i}"
            nsgen(["-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(root),
                   "--no-progress", "--no-preview", *shlex.split(options)], args.checkout)
            used = ranges(root)
            print(f"{Path(args.checkout).name} [{options or 'defaults'}] "
                  f"({args.angles}x{args.rows}x{args.columns}, dead {args.dead or 'none'}): "
                  f"range used per file median {np.median(used):.1%}, "
                  f"10th percentile {np.percentile(used, 10):.1%}, "
                  f"{np.mean(used < 0.1):.0%} of {used.size} files under 10 %")


if __name__ == "__main__":
    main()
