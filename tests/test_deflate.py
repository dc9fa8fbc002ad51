"""Tests of nsgen.io.deflate: raw deflate pieces that join into one stream, CRC-32s."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest

from nsgen.io.deflate import (DeflateWriter, InflateError, Inflater, crc32, crc32_combine,
                              deflate_piece)


def inflate(stream: bytes) -> tuple[bytes, bool]:
    d = zlib.decompressobj(-15)
    return d.decompress(stream) + d.flush(), d.eof


RNG = np.random.default_rng(0)
CASES: dict[str, np.ndarray] = {
    "one byte": np.zeros(1, np.uint8),
    "two ones": np.ones(2, np.uint8),
    "short mixed": np.array([1, 0, 1, 1, 1, 0, 0, 0, 0], np.uint8),
    "random bytes": RNG.integers(0, 256, 10_000).astype(np.uint8),
    "sparse mask": (RNG.random(100_000) < 0.001).astype(np.uint8),
    "runs of any value and length": np.repeat(RNG.integers(0, 256, 60).astype(np.uint8),
                                              RNG.integers(1, 900, 60)),
    "float32 weights": (1 + 0.03 * RNG.standard_normal(5_000)).astype(np.float32),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("last", [True, False])
def test_zlib_inflates_a_piece_back(name: str, last: bool) -> None:
    data = CASES[name]
    z, crc = deflate_piece(data, last=last)
    out, eof = inflate(z)
    assert out == data.tobytes() and eof == last  # a final block only in the last piece
    assert crc == zlib.crc32(data.tobytes())


def test_every_run_length_round_trips() -> None:
    """Lengths around deflate's match limits (3, 258, 258 + 1, 258 + 2, ...) all decode."""
    for length in list(range(1, 530)) + [258 * 7 + r for r in range(-3, 4)]:
        for value in (0, 1, 200):
            data = np.full(length, value, np.uint8)
            assert inflate(deflate_piece(data, last=True)[0])[0] == data.tobytes()


def test_pieces_concatenate_into_one_stream_and_crcs_combine() -> None:
    parts = [(RNG.random(50_000) < 0.01).astype(np.uint8), np.ones(30_001, np.uint8),
             np.zeros(777, np.uint8), np.zeros(0, np.uint8), np.ones(5, np.uint8)]
    coded = [deflate_piece(p, last=k == len(parts) - 1) for k, p in enumerate(parts)]
    out, eof = inflate(b"".join(z for z, _ in coded))
    whole = np.concatenate(parts).tobytes()
    assert out == whole and eof
    crc = coded[0][1]
    for part, (_, c) in zip(parts[1:], coded[1:]):
        crc = crc32_combine(crc, c, part.nbytes)
    assert crc == zlib.crc32(whole)


def test_crc32_combine_matches_zlib() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        a, b = rng.bytes(int(rng.integers(0, 5000))), rng.bytes(int(rng.integers(0, 5000)))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
        assert crc32(b, crc32(a)) == zlib.crc32(a + b)


def test_unaligned_and_multidimensional_input() -> None:
    base = np.zeros(4097, np.uint8)
    base[1000:3000] = 1
    view = base[1:]                      # not 8-byte aligned
    assert inflate(deflate_piece(view, last=True)[0])[0] == view.tobytes()
    cube = base[1:].reshape(16, 16, 16)
    assert inflate(deflate_piece(cube, last=True)[0])[0] == cube.tobytes()


def test_long_runs_shrink_over_a_hundredfold() -> None:
    mask = np.zeros((100, 64, 512), np.uint8)
    mask[:, 10:20, 100:130] = 1
    z, _ = deflate_piece(mask, last=True)
    assert len(z) < mask.nbytes / 100


def test_writer_streams_one_stream_with_counts() -> None:
    sink = io.BytesIO()
    w = DeflateWriter(sink)
    parts = [b"\x93NUMPY header", CASES["sparse mask"].tobytes(), b"", b"tail" * 1000]
    for p in parts:
        assert w.write(p) == len(p)
    w.finish()
    out, eof = inflate(sink.getvalue())
    assert out == b"".join(parts) and eof
    assert (w.size, w.compressed, w.crc) == (len(out), len(sink.getvalue()), zlib.crc32(out))


def _zlib_raw(data: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _read_all(f: Inflater, n: int) -> bytes:
    parts = []
    while piece := f.read(n):
        parts.append(bytes(piece))
    return b"".join(parts)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("n", [1, 7, 4096, 1 << 20])
def test_inflater_gives_the_bytes_zlib_compressed(name, n):
    """Any read size, zlib's and ISA-L's streams, pieces joined by sync flushes."""
    data = CASES[name].tobytes()
    a, ca = deflate_piece(data[: len(data) // 2], last=False)
    b, cb = deflate_piece(data[len(data) // 2:], last=True)
    streams = [_zlib_raw(data, 1), _zlib_raw(data, 9), a + b]
    for z in streams:
        f = Inflater(io.BytesIO(z + b"next member"), len(z), len(data), zlib.crc32(data))
        assert _read_all(f, n) == data
        assert f.read(n) == b""
    assert crc32_combine(ca, cb, len(data) - len(data) // 2) == zlib.crc32(data)


def test_inflater_refuses_damaged_streams():
    data = CASES["random bytes"].tobytes() * 20
    z = _zlib_raw(data, 6)
    crc = zlib.crc32(data)

    def read(stream: bytes, size: int, crc: int) -> bytes:
        return _read_all(Inflater(io.BytesIO(stream), len(stream), size, crc), 65536)

    with pytest.raises(EOFError, match="ends before its last byte"):
        read(z[: len(z) // 2], len(data), crc)
    with pytest.raises(EOFError, match="holds more bytes"):
        read(z, len(data) - 10, zlib.crc32(data[:-10]))
    with pytest.raises(EOFError, match="ends before its last byte"):
        read(z, len(data) + 10, crc)
    with pytest.raises(ValueError, match="CRC-32"):
        read(z, len(data), crc ^ 1)
    with pytest.raises(InflateError):
        read(b"\xff" * 100, len(data), crc)
