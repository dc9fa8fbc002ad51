"""Training pairs per second: simulated on the fly vs read from disk (TIFF and HDF5).

Writes one small dataset twice (``--format tiff`` and ``--format hdf5``, same options)
into a temporary directory, then iterates one shuffled epoch of the same pairs with
:class:`nsgen.dataset.SyntheticPairs` (on the fly) and :class:`nsgen.dataset.PairDataset`
(TIFF, HDF5), through a ``torch.utils.data.DataLoader`` (or a process pool without
torch) with 1 and 2 worker processes. Prints the median pairs/s of ``--repeats`` epochs
and the ratio to the floor measured in the same run: reading TIFFs with one worker.
Every epoch starts fresh worker processes (no persistent workers), so on-the-fly epochs
include measuring the scale of each sample a worker meets (once per sample and worker).

Usage: ``PYTHONPATH=. python scripts/bench_dataset.py [--size 64] [--samples 2]``.
Timings on a shared machine are contended: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import nsgen
from nsgen.dataset import PairDataset, SyntheticPairs


def _touch(ds: Any, indices: list[int]) -> int:
    return sum(int(ds[i][0].shape[0] > 0) for i in indices)


def epoch(ds: Any, order: list[int], workers: int) -> float:
    """Seconds for one pass over ``order`` with ``workers`` processes."""
    t0 = time.perf_counter()
    try:
        import torch
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, order), batch_size=8,
                                             num_workers=workers)
        n = sum(len(x) for x, _ in loader)
    except ImportError:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers) as pool:
            parts = [order[i::workers] for i in range(workers)]
            n = sum(pool.map(_touch, [ds] * workers, parts))
    assert n == len(order)
    return time.perf_counter() - t0


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--mode", default="complex", choices=["simple", "complex"])
    a.add_argument("--size", type=int, default=64)
    a.add_argument("--samples", type=int, default=2)
    a.add_argument("--shifts", type=int, default=3)
    a.add_argument("--pairs", type=int, default=192, help="pairs per epoch")
    a.add_argument("--repeats", type=int, default=3)
    ns = a.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        opts = {"mode": ns.mode, "size": ns.size, "samples": ns.samples, "shifts": ns.shifts,
                "preview": False, "progress": False}
        sources: dict[str, Any] = {}
        for fmt in ("tiff", "hdf5"):
            root = Path(tmp) / fmt
            t0 = time.perf_counter()
            nsgen.generate(root=root, format=fmt, **opts)
            print(f"wrote {fmt:<5} dataset in {time.perf_counter() - t0:.2f} s")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # empty splits of a tiny dataset
                sources[f"disk {fmt}"] = PairDataset(root)
        sources["on the fly"] = SyntheticPairs(mode=ns.mode, size=ns.size, samples=ns.samples,
                                               shifts=ns.shifts)
        n = len(sources["on the fly"])
        order = [int(i) for i in np.random.default_rng(0).permutation(n)[:ns.pairs]]
        rates: dict[tuple[str, int], float] = {}
        for workers in (1, 2):
            for name, ds in sources.items():
                epoch(ds, order[:16], workers)   # warm-up: imports, first file opens
                times = [epoch(ds, order, workers) for _ in range(ns.repeats)]
                rates[name, workers] = len(order) / statistics.median(times)
        floor = rates["disk tiff", 1]
        print(f"{ns.mode}, size {ns.size}, {ns.samples} samples x {ns.shifts} shifts: "
              f"{n} pairs; {len(order)} shuffled pairs per epoch, median of {ns.repeats}")
        print(f"{'source':<12} {'workers':>7} {'pairs/s':>10} {'vs tiff,1':>10}")
        for (name, workers), rate in rates.items():
            print(f"{name:<12} {workers:>7} {rate:>10.1f} {rate / floor:>10.2f}")


if __name__ == "__main__":
    main()
