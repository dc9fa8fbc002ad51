"""Benchmark ``nsgen check`` on a synthetic tree of many small TIFFs.

Builds (once, reused if present) a complex-mode-like dataset of ``--samples`` samples x
``--rows`` sinograms x (1 clean + ``--shifts`` shifts) TIFFs of shape ``--shape``, with
manifests, by writing one TIFF and copying its bytes; then times
:func:`nsgen.check.check_dataset` for several thread counts and prints files/s
(median of ``--repeat`` runs; page cache warm after the first run, stated in the output).

    python scripts/bench_check.py                  # 100 x 200 x 5 = 100,000 files
    python scripts/bench_check.py --root /tmp/bc --workers 1 2 8 32
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path

import numpy as np
import tifffile

from nsgen.check import check_dataset, default_workers
from nsgen.io.manifest import write_manifest


def build(root: Path, samples: int, rows: int, shifts: int, shape: tuple[int, int]) -> int:
    """Write the tree (skipped when its last manifest exists); return the file count."""
    n_files = samples * rows * (shifts + 1)
    if (root / f"{samples - 1:04d}" / "manifest.json").exists():
        return n_files
    buf = io.BytesIO()
    img = (np.arange(shape[0] * shape[1]) % 65536).astype(np.uint16).reshape(shape)
    tifffile.imwrite(buf, img, photometric="minisblack", metadata=None, software=False)
    data = buf.getvalue()
    names = ["clean"] + [f"shift{i:02d}" for i in range(shifts)]
    t0 = time.monotonic()
    for s in range(samples):
        tag = f"{s:04d}"
        files = []
        for name in names:
            d = root / tag / name
            d.mkdir(parents=True, exist_ok=True)
            for v in range(rows):
                p = f"{tag}/{name}/{tag}_{name}_{v:04d}.tif"
                with open(root / p, "wb") as f:
                    f.write(data)
                entry = {"path": p, "role": "clean" if name == "clean" else "stripe",
                         "index": v, "shape": list(shape), "bounds": [0.0, 1.0]}
                if name != "clean":
                    entry.update(shift=int(name[5:]),
                                 target=f"{tag}/clean/{tag}_clean_{v:04d}.tif")
                files.append(entry)
        write_manifest(root / tag / "manifest.json",
                       {"nsgen_version": "bench", "mode": "complex", "sample": s, "seed": 0,
                        "config": {}, "files": files})
    print(f"built {n_files} files ({len(data)} bytes each) in {time.monotonic() - t0:.1f} s")
    return n_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/nsgen-bench-check"))
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--shifts", type=int, default=4)
    ap.add_argument("--shape", type=int, nargs=2, default=[50, 45])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, default_workers()])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    n = build(a.root, a.samples, a.rows, a.shifts, tuple(a.shape))
    print(f"{n} files under {a.root}; {os.cpu_count()} CPUs; warm page cache after run 1")
    for w in a.workers:
        times = []
        for _ in range(a.repeat):
            report = check_dataset(a.root, w)
            assert report.ok and report.files == n, report.problems[:5]
            times.append(report.seconds)
        med = statistics.median(times)
        print(f"workers {w:>3}: median {med:6.2f} s  ({n / med:8.0f} files/s)  "
              f"runs {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    main()
