"""Training pairs per second: simulated on the fly vs read from disk (TIFF and HDF5).

Writes one small dataset twice (``--format tiff`` and ``--format hdf5``, same options)
into a temporary directory, then iterates one shuffled epoch of the same pairs with
:class:`nsgen.dataset.SyntheticPairs` (on the fly) and :class:`nsgen.dataset.PairDataset`
(TIFF, HDF5), through a ``torch.utils.data.DataLoader`` (or a process pool without
torch) with 1 and 2 worker processes. Prints pairs/s of the first epoch and the median of
``--repeats`` more, and its ratio to the floor measured in the same run: reading TIFFs
with one worker.
Workers persist across epochs: the first epoch includes starting them and, on the fly,
measuring the scale of each sample a worker meets (once per sample and worker); the
following epochs are the steady state.

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


def epochs(ds: Any, order: list[int], workers: int, repeats: int) -> list[float]:
    """Seconds of ``1 + repeats`` passes over ``order`` by the same ``workers`` processes
    (persistent workers: the first pass starts them and fills their caches)."""
    out = []
    try:
        import torch
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, order), batch_size=8,
                                             num_workers=workers, persistent_workers=True)
        for _ in range(1 + repeats):
            t0 = time.perf_counter()
            n = sum(len(x) for x, _ in loader)
            out.append(time.perf_counter() - t0)
            assert n == len(order)
    except ImportError:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers) as pool:
            for _ in range(1 + repeats):
                t0 = time.perf_counter()
                parts = [order[i::workers] for i in range(workers)]
                n = sum(pool.map(_touch, [ds] * workers, parts))
                out.append(time.perf_counter() - t0)
                assert n == len(order)
    return out


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
        rates: dict[tuple[str, int], tuple[float, float]] = {}
        for workers in (1, 2):
            for name, ds in sources.items():
                times = epochs(ds, order, workers, ns.repeats)
                rates[name, workers] = (len(order) / times[0],
                                        len(order) / statistics.median(times[1:]))
        floor = rates["disk tiff", 1][1]
        print(f"{ns.mode}, size {ns.size}, {ns.samples} samples x {ns.shifts} shifts: "
              f"{n} pairs; {len(order)} shuffled pairs per epoch; first epoch (workers "
              f"start, caches fill) and median of {ns.repeats} more (persistent workers)")
        print(f"{'source':<12} {'workers':>7} {'first pairs/s':>14} {'then pairs/s':>13} "
              f"{'vs tiff,1':>10}")
        for (name, workers), (first, then) in rates.items():
            print(f"{name:<12} {workers:>7} {first:>14.1f} {then:>13.1f} {then / floor:>10.2f}")


if __name__ == "__main__":
    main()
