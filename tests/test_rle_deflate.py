"""Tests of nsgen.io._rle_deflate_jit: a valid deflate stream for any bytes, runs compact."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from nsgen.io._rle_deflate_jit import rle_deflate


def inflate(stream: bytes) -> tuple[bytes, bool]:
    d = zlib.decompressobj(-15)
    return d.decompress(stream) + d.flush(), d.eof


RNG = np.random.default_rng(0)
CASES = {
    "one byte": np.zeros(1, np.uint8),
    "two ones": np.ones(2, np.uint8),
    "short mixed": np.array([1, 0, 1, 1, 1, 0, 0, 0, 0], np.uint8),
    "random bytes (9-bit literals too)": RNG.integers(0, 256, 10_000).astype(np.uint8),
    "sparse mask": (RNG.random(100_000) < 0.001).astype(np.uint8),
    "runs of any value and length": np.repeat(RNG.integers(0, 256, 60).astype(np.uint8),
                                              RNG.integers(1, 900, 60)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("final", [True, False])
def test_zlib_inflates_it_back(name: str, final: bool) -> None:
    data = CASES[name]
    out, eof = inflate(rle_deflate(data, final=final))
    assert out == data.tobytes() and eof == final


def test_every_run_length_round_trips() -> None:
    """Lengths around the match limits (3, 258, 258 + 1, 258 + 2, ...) all decode."""
    for length in list(range(1, 530)) + [258 * 7 + r for r in range(-3, 4)]:
        for value in (0, 1, 200):
            data = np.full(length, value, np.uint8)
            assert inflate(rle_deflate(data, final=True))[0] == data.tobytes(), (length, value)


def test_pieces_concatenate_into_one_stream_like_sync_flush() -> None:
    parts = [(RNG.random(50_000) < 0.01).astype(np.uint8), np.ones(30_001, np.uint8),
             np.zeros(777, np.uint8)]
    stream = b"".join(rle_deflate(p, final=k == len(parts) - 1) for k, p in enumerate(parts))
    out, eof = inflate(stream)
    assert out == np.concatenate(parts).tobytes() and eof


def test_unaligned_and_multidimensional_input() -> None:
    base = np.zeros(4097, np.uint8)
    base[1000:3000] = 1
    view = base[1:]                      # not 8-byte aligned
    assert inflate(rle_deflate(view, final=True))[0] == view.tobytes()
    cube = base[1:].reshape(16, 16, 16)
    assert inflate(rle_deflate(cube, final=True))[0] == cube.tobytes()


def test_long_runs_shrink_over_a_hundredfold() -> None:
    """13 bits per 258 bytes of a run (fixed codes, at most ~159x), plus a literal and a
    short match where a run ends."""
    mask = np.zeros((100, 64, 512), np.uint8)
    mask[:, 10:20, 100:130] = 1
    z = rle_deflate(mask, final=True)
    assert mask.nbytes / 159 < len(z) < mask.nbytes / 100
