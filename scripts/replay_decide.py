#!/usr/bin/env python
"""Replay the robust detector's decision pass (``RobustDecideStage.decide``) of
``bench_mask.py``'s 1801 x 256 x 2560 scan in one process, on captured offsets: time per
chunk and a digest of what it wrote (the bit-packed mask, the per-row flags and the
flagged columns), to compare checkouts (run it with each one first on ``PYTHONPATH``).

The capture (``--capture``, once; ~20 CPU-s) holds every row's offsets
(:func:`~nsgen.prep.stripe_robust.set_offsets`, the same values whatever the chunking) and
the volume's ``M0`` traces, computed here from the scan.

    python scripts/replay_decide.py --capture cap.npz [--scan PATH] [--chunk 64]
                                    [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SCAN = "/tmp/nsgen-bench/scan_1801x256x2560.nxs"


def capture(scan: str, shape: tuple[int, int, int], out: Path) -> None:
    """Every row's offsets and the volume's ``M0`` traces of ``scan`` into ``out``."""
    from nsgen.prep.robust_mass import mass_trace
    from nsgen.prep.stripe_robust import set_offsets
    from nsgen.prep.robust_features import raw_feature_fields
    from nsgen.scan import ScanLayout
    from nsgen.stages.robust import chunk_mass
    from nsgen.stages.scan_source import ScanSource
    from nsgen.stages.scan_stages import read_scan_rows

    source = ScanSource(scan, ScanLayout())
    handle = source.open()
    n_k, n_j, n_i = shape
    sets: list[np.ndarray] = []
    strong = np.empty(0)
    mass = []
    for r0 in range(0, n_j, 16):
        v = slice(r0, min(n_j, r0 + 16))
        raw = np.empty((n_k, v.stop - v.start, n_i), np.uint16)
        flat, dark = np.empty((2, v.stop - v.start, n_i), np.float32)
        read_scan_rows(handle, v, [raw, flat, dark])
        f = raw_feature_fields(raw, flat, dark)
        if not sets:
            sets = [np.empty((n_j, *a.shape[1:]), np.float32) for a in f[:-1]]
            strong = np.empty((n_j, *f[-1].shape[1:]), np.float32)
        for s, a in zip(sets, f[:-1]):
            s[v] = a
        strong[v] = f[-1]
        mass.append(chunk_mass(raw, flat, dark))
    qs = set_offsets(sets, [strong[:, n] > 0.5 for n in range(len(sets))], 0, (0, n_j), n_j)
    np.savez(out, qs=qs, trace=mass_trace(np.concatenate(mass)), shape=(n_k, n_j, n_i))


def replay(cap: Path, scan: str, chunk: int
           ) -> tuple[list[float], dict[str, float], str]:
    """One replay of every chunk: each chunk's CPU-seconds, the seconds per step (the
    stage's clock, summed) and the digest of the outputs."""
    from nsgen.engine.pipeline import row_chunks
    from nsgen.io.spill import Spill
    from nsgen.scan import ScanLayout
    from nsgen.stages.robust import RobustDecideStage
    from nsgen.stages.scan_source import ScanSource

    data = np.load(cap)
    qs_all, trace = data["qs"], data["trace"]
    n_k, n_j, n_i = (int(v) for v in data["shape"])
    with tempfile.TemporaryDirectory() as d:
        spill = Spill.create(Path(d) / "mask.bits", (n_k, n_j, -(-n_i // 8)), "uint8")
        flagged = Spill.create(Path(d) / "flagged.u1", (n_j, 1, n_i), "uint8")
        stage = RobustDecideStage(
            features=SimpleNamespace(shape=(n_j, 0, n_i)),
            offsets=SimpleNamespace(read_rows=lambda a, b: qs_all[a:b]), n_angles=n_k,
            chunk_rows=chunk, source=ScanSource(scan, ScanLayout()), mask_spill=spill,
            flagged=flagged, mass=trace)
        digest = hashlib.md5()
        seconds: list[float] = []
        steps: dict[str, float] = {}
        for c in row_chunks(n_j, chunk):
            t = time.process_time()
            flags, clock = stage.work(c, None).value
            seconds.append(time.process_time() - t)
            for k, v in clock.items():
                steps[k] = steps.get(k, 0.0) + v
            digest.update(np.ascontiguousarray(flags).tobytes())
        digest.update(spill.read_rows(0, n_k).tobytes())
        digest.update(flagged.read_rows(0, n_j).tobytes())
    return seconds, steps, digest.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capture", type=Path, required=True)
    p.add_argument("--scan", default=SCAN)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if not a.capture.exists():
        capture(a.scan, (1801, 256, 2560), a.capture)
    for _ in range(a.repeats):
        seconds, steps, digest = replay(a.capture, a.scan, a.chunk)
        print(f"CPU-s {sum(seconds):.2f} ({' '.join(f'{s:.2f}' for s in seconds)}); "
              + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()) + f"; digest {digest}",
              flush=True)


if __name__ == "__main__":
    main()
