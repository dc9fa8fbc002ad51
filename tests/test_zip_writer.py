"""Tests of nsgen.io.zip_writer: zip files that zipfile and np.load read, raw copies, Zip64."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from nsgen.io import zip_writer
from nsgen.io.deflate import deflate_piece
from nsgen.io.zip_writer import ZipWriter, member_span


class Unseekable(io.RawIOBase):
    """A write-only stream without seek: zipfile then writes data descriptors."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.buf += bytes(b)
        return len(b)


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def write_sample(out) -> dict[str, bytes]:
    """Two members, one given as pieces, one streamed; return their contents."""
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    b = np.zeros((5, 7, 9), np.uint8)
    b[:, 2:4, 3] = 1
    raw_a, raw_b = npy(a), npy(b)
    with ZipWriter(out) as zw:
        p1, c1 = deflate_piece(raw_a[:300], last=False)
        p2, c2 = deflate_piece(raw_a[300:], last=True)
        from nsgen.io.deflate import crc32_combine
        zw.add("a.npy", [p1, p2], crc32_combine(c1, c2, len(raw_a) - 300), len(raw_a))
        with zw.stream("b.npy") as fh:
            np.lib.format.write_array(fh, b)
    return {"a.npy": raw_a, "b.npy": raw_b}


def test_written_members_read_back_with_zipfile_and_numpy(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as fh:
        contents = write_sample(fh)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # CRCs right
        assert {i.filename: zf.read(i) for i in zf.infolist()} == contents
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    with np.load(path) as z:
        assert z["a"].shape == (10, 100) and z["b"].sum() == 10


def test_identical_input_gives_identical_bytes():
    one, two = io.BytesIO(), io.BytesIO()
    write_sample(one)
    write_sample(two)
    assert one.getvalue() == two.getvalue()


def test_streamed_local_header_holds_crc_and_sizes():
    buf = io.BytesIO()
    contents = write_sample(buf)
    with zipfile.ZipFile(buf) as zf:
        info = zf.getinfo("b.npy")
    data = buf.getvalue()[info.header_offset:]
    crc, = struct.unpack("<L", data[14:18])
    n = struct.unpack("<H", data[26:28])[0]
    hid, size, usize, csize = struct.unpack("<HHQQ", data[30 + n:30 + n + 20])
    assert (crc, hid, size) == (info.CRC, 1, 16)
    assert (usize, csize) == (len(contents["b.npy"]), info.compress_size)


def test_copy_is_byte_for_byte_with_and_without_descriptors(tmp_path):
    sources = {}
    np.savez_compressed(tmp_path / "numpy.npz", m=np.eye(30, dtype=np.uint8),
                        w=np.ones(7, np.float32))
    sources["seekable"] = (tmp_path / "numpy.npz").read_bytes()
    stream = Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d.npy", npy(np.arange(50)))
        zf.writestr(zipfile.ZipInfo("stored.txt"), b"plain", zipfile.ZIP_STORED)
        with zf.open("big.npy", "w", force_zip64=True) as fh:  # Zip64 descriptor
            fh.write(npy(np.zeros(3000, np.int16)))
        zf.writestr("ünï.npy", npy(np.ones(3)))
    sources["descriptors"] = bytes(stream.buf)
    for label, blob in sources.items():
        src = io.BytesIO(blob)
        with zipfile.ZipFile(src) as zf:
            infos = zf.infolist()
            originals = {i.filename: zf.read(i) for i in infos}
            spans = {i.filename: blob[i.header_offset:i.header_offset + member_span(src, i)]
                     for i in infos}
        if label == "descriptors":
            assert all(i.flag_bits & 0x08 for i in infos)
        out = io.BytesIO()
        with ZipWriter(out) as zw:
            for info in reversed(infos):
                zw.copy(src, info)
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None, label
            assert {i.filename: zf.read(i) for i in zf.infolist()} == originals
            for info in zf.infolist():
                copied = out.getvalue()[info.header_offset:]
                assert copied[:len(spans[info.filename])] == spans[info.filename]


def test_zip64_fields_where_values_exceed_the_limits(monkeypatch, tmp_path):
    """With the limits lowered, sizes, offsets and the count go to Zip64 fields, and
    zipfile and np.load still find every member."""
    monkeypatch.setattr(zip_writer, "ZIP64_LIMIT", 100)
    monkeypatch.setattr(zip_writer, "COUNT_LIMIT", 3)
    path = tmp_path / "z.npz"
    arrays = {f"k{n}": np.full((n + 1, 40), n, np.int32) for n in range(5)}
    with open(path, "wb") as fh, ZipWriter(fh) as zw:
        for key, a in arrays.items():
            with zw.stream(key + ".npy") as f:
                np.lib.format.write_array(f, a)
    data = path.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # Zip64 end record + locator
    count, = struct.unpack("<H", data[-22 + 8:-22 + 10])
    assert count == 0xFFFF
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert all(i.file_size > 100 for i in zf.infolist())
        assert [i.header_offset > 100 for i in zf.infolist()] == [False] + [True] * 4
    with np.load(path) as z:
        assert sorted(z.files) == sorted(arrays)
        assert all(np.array_equal(z[k], a) for k, a in arrays.items())


def test_no_central_directory_after_an_error():
    buf = io.BytesIO()
    with pytest.raises(RuntimeError), ZipWriter(buf) as zw, zw.stream("a.npy") as fh:
        fh.write(b"partial")
        raise RuntimeError("disk full")
    assert b"PK\x05\x06" not in buf.getvalue()


def test_member_span_rejects_bad_offsets():
    buf = io.BytesIO()
    write_sample(buf)
    with zipfile.ZipFile(buf) as zf:
        info = zf.getinfo("b.npy")
    info.header_offset += 1
    with pytest.raises(zipfile.BadZipFile, match="bad local header"):
        member_span(buf, info)
    cut = io.BytesIO(buf.getvalue()[:info.header_offset + 40])
    info.header_offset -= 1
    with pytest.raises(zipfile.BadZipFile, match="truncated"):
        ZipWriter(io.BytesIO()).copy(cut, info)
