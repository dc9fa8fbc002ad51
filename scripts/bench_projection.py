"""Benchmark nsgen.sim.projection.project on random sphere foams.

Prints the median wall time of ``project`` for ``--objects`` spheres at N=256 over
``--repeats`` runs, the time at N=512, and the N=256 median against the 2 s target.
Single process, no timing assertions.

Usage::

    python scripts/bench_projection.py [--repeats 5] [--objects 300] [--seed 0] [--skip-512]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from nsgen.rng import generator
from nsgen.sim.phantom import random_foam
from nsgen.sim.projection import Geometry, project

TARGET_S = 2.0


def _time_project(objects: np.ndarray, geometry: Geometry, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = project(objects, geometry)
        times.append(time.perf_counter() - t0)
        del out
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs at N=256 (default 5)")
    parser.add_argument("--repeats-512", type=int, default=1, help="runs at N=512 (default 1)")
    parser.add_argument("--objects", type=int, default=300, help="spheres requested")
    parser.add_argument("--seed", type=int, default=0, help="run seed for the phantom")
    parser.add_argument("--skip-512", action="store_true", help="do not time N=512")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    objects = random_foam(generator(args.seed, "phantom", 0), args.objects)
    t_foam = time.perf_counter() - t0
    print(f"random_foam: {objects.shape[0]} spheres placed of {args.objects} "
          f"in {t_foam * 1e3:.1f} ms (mean r = {objects[:, 4].mean():.4f})")

    g256 = Geometry.for_size(256)
    project(objects, g256, rows=(120, 136))                       # warm-up
    times = _time_project(objects, g256, args.repeats)
    median = statistics.median(times)
    print(f"N=256 {g256.shape}: median {median:.3f} s over {len(times)} runs "
          f"(min {min(times):.3f}, max {max(times):.3f})")
    print(f"N=256 ratio to the {TARGET_S:.0f} s target: {median / TARGET_S:.2f} "
          f"({TARGET_S / median:.1f}x headroom)")

    if not args.skip_512:
        g512 = Geometry.for_size(512)
        times512 = _time_project(objects, g512, args.repeats_512)
        m512 = statistics.median(times512)
        print(f"N=512 {g512.shape}: median {m512:.3f} s over {len(times512)} runs "
              f"({m512 / median:.1f}x the N=256 time; ratio to target {m512 / TARGET_S:.2f})")


if __name__ == "__main__":
    main()
