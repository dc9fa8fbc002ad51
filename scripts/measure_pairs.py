#!/usr/bin/env python
"""Measure how many complex-mode pairs teach nothing: input identical to its target.

Generates complex-mode samples over several seeds (each in a temporary root) and counts,
per shift, the sinograms whose TIFF is byte-for-byte the clean target's. Prints the
identical-pair rate per seed and over all seeds. Extra arguments go to ``nsgen`` as they
are (for example ``--defect-density 0`` for the reference's density).

    python scripts/measure_pairs.py [--seeds 0 1 2] [--size 128] [-- NSGEN OPTIONS]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import tifffile


def identical_pairs(sample: Path) -> tuple[int, int]:
    """(identical, total) clean/shift pairs of one complex-mode sample directory."""
    identical = total = 0
    for clean in sorted((sample / "clean").glob("*.tif")):
        target = tifffile.imread(clean)
        row = clean.stem.rsplit("_", 1)[1]
        for shift in sorted(p for p in sample.iterdir() if p.name.startswith("shift")):
            total += 1
            image = tifffile.imread(shift / f"{sample.name}_{shift.name}_{row}.tif")
            identical += bool((image == target).all())
    return identical, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("nsgen_args", nargs="*", help="options passed to nsgen (after --)")
    args = ap.parse_args()
    grand = [0, 0]
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "data"
            subprocess.run([sys.executable, "-m", "nsgen", "-m", "complex", "-N", str(args.size),
                            "--seed", str(seed), "-r", str(root), "--no-progress",
                            "--no-preview", *args.nsgen_args], check=True)
            same, total = identical_pairs(root / "0000")
        grand[0] += same
        grand[1] += total
        print(f"seed {seed}: {same} of {total} pairs identical ({100 * same / total:.1f} %)")
    print(f"all seeds (N={args.size}, {' '.join(args.nsgen_args) or 'defaults'}): "
          f"{grand[0]} of {grand[1]} pairs identical ({100 * grand[0] / grand[1]:.1f} %)")


if __name__ == "__main__":
    main()
