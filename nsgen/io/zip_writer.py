"""A small zip writer: members given as deflate streams, or copied raw from another zip.

The standard library's :mod:`zipfile` reads nsgen's archives, but it can only write a
member by compressing it itself: it cannot take pieces compressed in parallel elsewhere,
nor copy a member of another archive without inflating and deflating it again. This
module writes the zip container (PKWARE APPNOTE 6.3) for those two cases, and for members
streamed through :class:`nsgen.io.deflate.DeflateWriter`:

- every member written here has a local header with a Zip64 extra field holding its sizes
  (as ``zipfile`` writes with ``force_zip64=True``), so a member of any size needs no
  rewrite; a streamed member's CRC and sizes are filled in by seeking back once it is done;
- a copied member is its local header, data and data descriptor (if it has one: flag
  bit 3) byte for byte (:func:`member_span` finds where it ends);
- the central directory gets a Zip64 extra field, and the archive a Zip64 end record, only
  where a size, offset or count does not fit the classic fields.

Members carry a fixed timestamp (1980-01-01 00:00 unless copied), so identical content
gives identical bytes.

Examples
--------
>>> import io, zipfile
>>> from nsgen.io.deflate import deflate_piece
>>> buf = io.BytesIO()
>>> with ZipWriter(buf) as zw:
...     with zw.stream("a.txt") as fh:
...         _ = fh.write(b"streamed " * 3)
...     z, crc = deflate_piece(b"given", last=True)
...     zw.add("b.txt", [z], crc, 5)
>>> with zipfile.ZipFile(buf) as zf:
...     zf.testzip() is None, zf.read("a.txt"), zf.read("b.txt")
(True, b'streamed streamed streamed ', b'given')
"""

from __future__ import annotations

import contextlib
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from nsgen.io.deflate import DeflateWriter

__all__ = ["ZipWriter", "member_span"]

_LOCAL = struct.Struct("<4sHHHHHLLLHH")       # local file header (30 bytes)
_CENTRAL = struct.Struct("<4sHHHHHHLLLHHHHHLL")  # central directory header (46 bytes)
_END = struct.Struct("<4sHHHHLLH")            # end of central directory (22 bytes)
_END64 = struct.Struct("<4sQHHLLQQQQ")        # Zip64 end of central directory (56 bytes)
_LOCATOR64 = struct.Struct("<4sLQL")          # Zip64 end locator (20 bytes)
_DESCRIPTOR_SIG = b"PK\x07\x08"
_ZIP64_ID = 0x0001
#: values from which a 32-bit size/offset field (16-bit count) moves to Zip64 fields
ZIP64_LIMIT = 0xFFFFFFFF
COUNT_LIMIT = 0xFFFF
_DEFLATED = zipfile.ZIP_DEFLATED
_UTF8 = 0x800
_VERSION = 45                                 # 4.5: Zip64
_MADE_BY = (3 << 8) | _VERSION                # Unix, 4.5
_ATTR = 0o100644 << 16                        # regular file, rw-r--r--
_COPY_BLOCK = 16 << 20
_DATE_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class _Entry:
    """What the central directory records of one member."""

    name: bytes
    flags: int
    method: int
    date_time: tuple[int, int, int, int, int, int]
    crc: int
    compressed: int
    size: int
    offset: int
    version: int = _VERSION
    external_attr: int = _ATTR
    internal_attr: int = 0


def _dos(date_time: tuple[int, ...]) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def _name(name: str) -> tuple[bytes, int]:
    """Encoded member name and its flag (bit 11 marks UTF-8)."""
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8


def member_span(src: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Bytes of a member in ``src``: local header + data (+ data descriptor).

    ``info`` comes from ``zipfile.ZipFile(...).infolist()`` on the same file. A data
    descriptor (flag bit 3) is 12 or 16 bytes with its optional signature, 20 or 24 when
    the local header has a Zip64 field (8-byte sizes).

    Raises
    ------
    zipfile.BadZipFile
        No local header at the member's offset.
    """
    src.seek(info.header_offset)
    head = src.read(_LOCAL.size)
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for member {info.filename!r}")
    fields = _LOCAL.unpack(head)
    flags, name_len, extra_len = fields[2], fields[9], fields[10]
    span = _LOCAL.size + name_len + extra_len + info.compress_size
    if flags & 0x08:
        src.seek(info.header_offset + _LOCAL.size + name_len)
        extra = src.read(extra_len)
        zip64 = False
        while len(extra) >= 4:
            hid, size = struct.unpack("<HH", extra[:4])
            zip64 |= hid == _ZIP64_ID
            extra = extra[4 + size:]
        src.seek(info.header_offset + span)
        signed = src.read(4) == _DESCRIPTOR_SIG
        span += (4 if signed else 0) + 4 + (16 if zip64 else 8)
    return span


class ZipWriter:
    """Write a zip archive member by member to a seekable binary file.

    Use as a context manager: the central directory is written when the block ends without
    an exception (after one, the file is incomplete and the caller discards it).

    Parameters
    ----------
    out : binary file
        Seekable, written from its current position on (offsets count from there).
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._base = out.tell()
        self._entries: list[_Entry] = []

    def __enter__(self) -> ZipWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()

    def _tell(self) -> int:
        return self._out.tell() - self._base

    def _local_header(self, name: bytes, flags: int, crc: int, compressed: int,
                      size: int) -> None:
        time, date = _dos(_DATE_TIME)
        extra = struct.pack("<HHQQ", _ZIP64_ID, 16, size, compressed)
        self._out.write(_LOCAL.pack(b"PK\x03\x04", _VERSION, flags, _DEFLATED, time, date,
                                    crc, ZIP64_LIMIT, ZIP64_LIMIT, len(name), len(extra)))
        self._out.write(name + extra)

    def add(self, name: str, pieces: Iterable[bytes], crc: int, size: int) -> None:
        """Add member ``name`` from raw deflate ``pieces`` (one stream when joined).

        ``crc`` and ``size`` are the CRC-32 and length of the uncompressed bytes.
        """
        raw, flags = _name(name)
        pieces = list(pieces)
        compressed = sum(len(p) for p in pieces)
        offset = self._tell()
        self._local_header(raw, flags, crc, compressed, size)
        for piece in pieces:
            self._out.write(piece)
        self._entries.append(_Entry(raw, flags, _DEFLATED, _DATE_TIME,
                                    crc, compressed, size, offset))

    @contextlib.contextmanager
    def stream(self, name: str) -> Iterator[DeflateWriter]:
        """Add member ``name`` from what is written to the yielded file object.

        The data is deflated as it comes; then the CRC and sizes are written into the
        local header (one seek back).
        """
        raw, flags = _name(name)
        offset = self._tell()
        self._local_header(raw, flags, 0, 0, 0)
        writer = DeflateWriter(self._out)
        yield writer
        writer.finish()
        end = self._out.tell()
        self._out.seek(self._base + offset + 14)
        self._out.write(struct.pack("<L", writer.crc))
        self._out.seek(self._base + offset + _LOCAL.size + len(raw) + 4)
        self._out.write(struct.pack("<QQ", writer.size, writer.compressed))
        self._out.seek(end)
        self._entries.append(_Entry(raw, flags, _DEFLATED, _DATE_TIME,
                                    writer.crc, writer.compressed, writer.size, offset))

    def copy(self, src: BinaryIO, info: zipfile.ZipInfo) -> None:
        """Copy member ``info`` of the zip file ``src`` byte for byte (no inflating).

        Raises
        ------
        zipfile.BadZipFile
            The member's local header is missing or its data is cut short.
        """
        left = member_span(src, info)
        offset = self._tell()
        src.seek(info.header_offset)
        while left:
            block = src.read(min(left, _COPY_BLOCK))
            if not block:
                raise zipfile.BadZipFile(f"member {info.filename!r} is truncated")
            self._out.write(block)
            left -= len(block)
        raw = info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8 else "cp437")
        self._entries.append(_Entry(raw, info.flag_bits, info.compress_type, info.date_time,
                                    info.CRC, info.compress_size, info.file_size, offset,
                                    info.extract_version, info.external_attr,
                                    info.internal_attr))

    def close(self) -> None:
        """Write the central directory and the end records."""
        start = self._tell()
        for e in self._entries:
            self._out.write(_central(e))
        end = self._tell()
        count, size = len(self._entries), end - start
        if count >= COUNT_LIMIT or size >= ZIP64_LIMIT or start >= ZIP64_LIMIT:
            self._out.write(_END64.pack(b"PK\x06\x06", _END64.size - 12, _MADE_BY, _VERSION,
                                        0, 0, count, count, size, start))
            self._out.write(_LOCATOR64.pack(b"PK\x06\x07", 0, end, 1))
            count = count if count < COUNT_LIMIT else 0xFFFF
            size, start = _fit(size), _fit(start)
        self._out.write(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0))
        self._out.flush()


def _fit(value: int) -> int:
    """A 32-bit field's value: ``value``, or 0xFFFFFFFF if it goes to a Zip64 field."""
    return value if value < ZIP64_LIMIT else 0xFFFFFFFF


def _central(e: _Entry) -> bytes:
    """Central directory header of ``e``, with a Zip64 field for the values that need it."""
    big = [v for v in (e.size, e.compressed, e.offset) if v >= ZIP64_LIMIT]
    extra = struct.pack(f"<HH{len(big)}Q", _ZIP64_ID, 8 * len(big), *big) if big else b""
    time, date = _dos(e.date_time)
    return _CENTRAL.pack(
        b"PK\x01\x02", _MADE_BY, max(e.version, _VERSION if big else 20), e.flags, e.method,
        time, date, e.crc, _fit(e.compressed), _fit(e.size), len(e.name), len(extra), 0, 0,
        e.internal_attr, e.external_attr, _fit(e.offset),
    ) + e.name + extra
