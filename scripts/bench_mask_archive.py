#!/usr/bin/env python
"""Benchmark the compression of mask-archive entries (issue 13: a library, not our encoder).

Arrays like those ``nsgen mask`` stores: a uint8 0/1 stripe mask (angles, detector rows,
detector columns) with stripes of the shapes Larix keeps (600+ angles long, 1-21 columns
wide, 1-30 rows deep) and float32 detection weights (ratios near 1, noisy). Each candidate
compresses the entry's bytes as the archive does: independent raw-deflate pieces of
``--piece-mb`` (every piece but the last sync-flushed, so they concatenate into one stream),
plus the CRC-32 of every piece combined into the entry's CRC. Each result is checked to
inflate back to the same bytes.

Printed per array: the median time over ``--repeats`` runs, throughput, compressed size,
time as a multiple of the floor (``np.copyto`` of the same bytes, measured in the same
run), size as a multiple of zlib level 1's. Then, for the chosen encoder, the pieces on one
thread against two threads (does compressing pieces in parallel still pay?).
Timings on a shared machine are noisy: read the ratios, not the absolute figures.

    python scripts/bench_mask_archive.py [--rows 64] [--weight-rows 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

Encoder = Callable[[memoryview, bool], tuple[bytes, int]]


def stripe_mask(shape: tuple[int, int, int], n_stripes: int, seed: int = 0) -> np.ndarray:
    """A uint8 0/1 mask of ``n_stripes`` boxes shaped like merged Larix stripes."""
    rng = np.random.default_rng(seed)
    n_k, n_j, n_i = shape
    mask = np.zeros(shape, np.uint8)
    for _ in range(n_stripes):
        length = int(rng.integers(min(600, n_k), n_k + 1))
        k = int(rng.integers(0, n_k - length + 1))
        j, depth = int(rng.integers(0, n_j)), int(rng.integers(1, 31))
        i, width = int(rng.integers(0, n_i - 21)), int(rng.integers(1, 22))
        mask[k:k + length, j:j + depth, i:i + width] = 1
    return mask


def noisy_weights(shape: tuple[int, int, int], seed: int = 1) -> np.ndarray:
    """float32 weights: ratios of local means, near 1 with ~3 % noise."""
    rng = np.random.default_rng(seed)
    return (1 + 0.03 * rng.standard_normal(shape, np.float32)).astype(np.float32)


def zlib_like(module, level: int, strategy: int | None = None) -> Encoder:
    """Encoder of one piece through a zlib-compatible module (stdlib, isal_zlib, zlib_ng)."""
    def encode(piece: memoryview, last: bool) -> tuple[bytes, int]:
        if strategy is None:
            c = module.compressobj(level, module.DEFLATED, -15)
        else:
            c = module.compressobj(level, module.DEFLATED, -15, 9, strategy)
        flush = module.Z_FINISH if last else module.Z_SYNC_FLUSH
        return c.compress(piece) + c.flush(flush), module.crc32(piece)
    return encode


def current_rle(piece: memoryview, last: bool) -> tuple[bytes, int]:
    """nsgen's run-length encoder before issue 13 (if it is still in the tree)."""
    from nsgen.io._rle_deflate_jit import rle_deflate
    return rle_deflate(np.frombuffer(piece, np.uint8), final=last), zlib.crc32(piece)


def compress(data: np.ndarray, encode: Encoder, combine: Callable[[int, int, int], int],
             piece_bytes: int, threads: int = 1) -> tuple[bytes, int]:
    """All pieces of ``data`` (on ``threads`` threads), joined, and the combined CRC."""
    raw = memoryview(data.reshape(-1).view(np.uint8))
    starts = range(0, len(raw), piece_bytes)
    jobs = [(raw[s:s + piece_bytes], s + piece_bytes >= len(raw)) for s in starts]
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            out = list(pool.map(lambda job: encode(*job), jobs))
    else:
        out = [encode(*job) for job in jobs]
    crc = out[0][1]
    for (piece, _), (_, c) in zip(jobs[1:], out[1:]):
        crc = combine(crc, c, len(piece))
    return b"".join(p for p, _ in out), crc


def median_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def candidates(is_mask: bool) -> dict[str, tuple[Encoder, Callable[[int, int, int], int]]]:
    from isal import isal_zlib
    from zlib_ng import zlib_ng

    out = {
        "zlib level 1 (stdlib)": (zlib_like(zlib, 1), isal_zlib.crc32_combine),
        "zlib Z_RLE (stdlib)": (zlib_like(zlib, 1, zlib.Z_RLE), isal_zlib.crc32_combine),
        "isal level 0": (zlib_like(isal_zlib, 0), isal_zlib.crc32_combine),
        "isal level 1": (zlib_like(isal_zlib, 1), isal_zlib.crc32_combine),
        "isal level 2": (zlib_like(isal_zlib, 2), isal_zlib.crc32_combine),
        "zlib-ng level 1": (zlib_like(zlib_ng, 1), zlib_ng.crc32_combine),
        "zlib-ng Z_RLE": (zlib_like(zlib_ng, 1, zlib_ng.Z_RLE), zlib_ng.crc32_combine),
    }
    if is_mask:
        try:
            from nsgen.io._rle_deflate_jit import rle_deflate
            rle_deflate(np.zeros(16, np.uint8), final=True)  # compile outside the timing
            out["nsgen run-length (numba)"] = (current_rle, isal_zlib.crc32_combine)
        except ImportError:
            pass
    return out


def numcodecs_zlib(data: np.ndarray) -> bytes:
    """numcodecs' Zlib codec: one zlib-wrapped stream (no pieces, no raw deflate)."""
    import numcodecs
    return numcodecs.Zlib(level=1).encode(data)


def table(name: str, data: np.ndarray, piece_bytes: int, repeats: int) -> None:
    expected = data.tobytes()
    expected_crc = zlib.crc32(expected)
    dst = np.empty_like(data)
    floor, _ = median_time(lambda: np.copyto(dst, data), repeats)
    rows: list[tuple[str, float, int]] = []
    for label, (encode, combine) in candidates(data.dtype == np.uint8).items():
        t, (stream, crc) = median_time(
            lambda e=encode, c=combine: compress(data, e, c, piece_bytes), repeats)
        assert zlib.decompress(stream, -15) == expected and crc == expected_crc, label
        rows.append((label, t, len(stream)))
    t, blob = median_time(lambda: numcodecs_zlib(data), repeats)
    assert zlib.decompress(blob) == expected
    rows.append(("numcodecs Zlib(1), one stream", t, len(blob)))
    zlib_size = rows[0][2]
    print(f"\n{name}: {data.shape} {data.dtype}, {data.nbytes / 1e6:.0f} MB, "
          f"pieces of {piece_bytes >> 20} MiB, median of {repeats}")
    print(f"  {'candidate':32s} {'median s':>9s} {'GB/s':>7s} {'size kB':>9s} "
          f"{'x floor':>8s} {'size/zlib1':>10s}")
    print(f"  {'floor: np.copyto (memcpy)':32s} {floor:9.3f} {data.nbytes / floor / 1e9:7.2f} "
          f"{'':>9s} {1:8.1f} {'':>10s}")
    for label, t, size in rows:
        print(f"  {label:32s} {t:9.3f} {data.nbytes / t / 1e9:7.2f} {size / 1e3:9.0f} "
              f"{t / floor:8.1f} {size / zlib_size:10.2f}")


def parallel(name: str, data: np.ndarray, piece_bytes: int, repeats: int) -> None:
    from isal import isal_zlib
    encode = zlib_like(isal_zlib, 1)
    one, _ = median_time(lambda: compress(data, encode, isal_zlib.crc32_combine,
                                          piece_bytes), repeats)
    two, _ = median_time(lambda: compress(data, encode, isal_zlib.crc32_combine,
                                          piece_bytes, threads=2), repeats)
    print(f"  {name}: isal level 1, pieces on 1 thread {one:.3f} s, on 2 threads {two:.3f} s "
          f"-> speed-up {one / two:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--angles", type=int, default=1801)
    ap.add_argument("--rows", type=int, default=64, help="detector rows of the mask")
    ap.add_argument("--columns", type=int, default=2560)
    ap.add_argument("--stripes", type=int, default=60, help="stripes in the mask")
    ap.add_argument("--weight-rows", type=int, default=8, help="detector rows of the weights")
    ap.add_argument("--piece-mb", type=int, default=32, help="MiB per piece (as nsgen mask)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    piece = a.piece_mb << 20
    mask = stripe_mask((a.angles, a.rows, a.columns), a.stripes)
    print(f"mask: {mask.mean() * 100:.2f} % ones in {a.stripes} stripes")
    table("mask", mask, piece, a.repeats)
    weights = noisy_weights((a.angles, a.weight_rows, a.columns))
    table("weights", weights, piece, a.repeats)
    print("\nparallel pieces (2 cores shared with other work: contention lowers the speed-up)")
    parallel("mask", mask, piece, a.repeats)
    parallel("weights", weights, piece, a.repeats)


if __name__ == "__main__":
    main()
