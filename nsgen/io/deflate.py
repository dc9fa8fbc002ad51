"""Raw deflate for the mask archive, through python-isal (Intel ISA-L's ``isal_zlib``).

ISA-L level 1 compresses stripe masks and float32 weights several times faster than zlib
level 1 (and than nsgen's former run-length encoder) to a smaller or equal size, and its
``crc32`` and ``crc32_combine`` let an entry be compressed in independent pieces: every
piece but the last ends with a sync flush (byte-aligned, no final block), so the pieces
concatenate into one deflate stream that any inflater (zlib, hence ``np.load``) reads, and
their CRC-32s combine into the entry's. ``scripts/bench_mask_archive.py`` measures the
candidates (see README, Dependencies).

Examples
--------
>>> import zlib
>>> a, ca = deflate_piece(b"abc" * 100, last=False)
>>> b, cb = deflate_piece(b"xyz" * 100, last=True)
>>> zlib.decompress(a + b, -15) == b"abc" * 100 + b"xyz" * 100
True
>>> crc32_combine(ca, cb, 300) == zlib.crc32(b"abc" * 100 + b"xyz" * 100)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, cast

import numpy as np
from isal import isal_zlib

__all__ = ["DEFLATE_LEVEL", "DeflateWriter", "Deflated", "InflateError", "Inflater", "crc32",
           "crc32_combine", "deflate_piece"]

#: ISA-L level of every entry nsgen compresses (0-3; 1 is the fastest here, and 2-3 gave no
#: smaller masks in scripts/bench_mask_archive.py; any level inflates the same)
DEFLATE_LEVEL = 1

#: compressed bytes an :class:`Inflater` reads from its file at a time
INFLATE_INPUT = 1 << 20

#: what python-isal raises for a corrupt deflate stream
InflateError = cast("type[Exception]", isal_zlib.error)   # typed as an instance in its stubs

#: what the functions here take: any C-contiguous buffer
BytesLike = bytes | bytearray | memoryview | np.ndarray

#: CRC-32 (zlib's polynomial) of a buffer, optionally continuing ``value``
crc32 = isal_zlib.crc32


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len2 = len(B)``.

    Examples
    --------
    >>> crc32_combine(crc32(b"stripe"), crc32(b"mask"), 4) == crc32(b"stripemask")
    True
    """
    return isal_zlib.crc32_combine(crc1, crc2, len2)


def deflate_piece(data: BytesLike, last: bool,
                  level: int = DEFLATE_LEVEL) -> tuple[bytes, int]:
    """Raw-deflate one piece of an entry's bytes; return it and the CRC-32 of ``data``.

    Parameters
    ----------
    data : bytes-like
        Any contiguous buffer (a C-contiguous ndarray too).
    last : bool
        The entry's last piece: end with a final block (``Z_FINISH``); otherwise with a
        sync flush, so that the next piece can follow it.
    level : int
        ISA-L level, 0-3.

    Returns
    -------
    bytes, int
        The compressed piece and ``crc32(data)``.

    Examples
    --------
    >>> import zlib
    >>> import numpy as np
    >>> mask = np.zeros((4, 8, 64), np.uint8); mask[:, 2:5, 10:13] = 1
    >>> z, crc = deflate_piece(mask, last=True)
    >>> zlib.decompress(z, -15) == mask.tobytes(), crc == zlib.crc32(mask)
    (True, True)
    """
    c = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    flush = isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH
    return c.compress(data) + c.flush(flush), isal_zlib.crc32(data)


@dataclass(frozen=True)
class Deflated:
    """An array whose C-order bytes were deflated in independent pieces (in parallel).

    ``pieces`` are raw deflate streams from :func:`deflate_piece`: every one but the last
    sync-flushed, the last one final, so their concatenation is one deflate stream.
    ``crc`` is the CRC-32 of the array bytes, ``size`` their count, ``dtype`` the numpy
    dtype string (``'|u1'``, ``'<f4'``).
    """

    shape: tuple[int, ...]
    dtype: str
    pieces: tuple[bytes, ...]
    crc: int
    size: int


class DeflateWriter:
    """Write-only file object that deflates what it is given into ``out``.

    Counts the bytes in (``size``) and out (``compressed``) and their CRC-32 (``crc``);
    :meth:`finish` writes the final block. Used to stream ``np.lib.format.write_array``
    into a zip member without holding the array's compressed bytes.

    Examples
    --------
    >>> import io, zlib
    >>> sink = io.BytesIO()
    >>> w = DeflateWriter(sink)
    >>> w.write(b"0" * 1000), w.write(b"1" * 10)
    (1000, 10)
    >>> w.finish()
    >>> zlib.decompress(sink.getvalue(), -15) == b"0" * 1000 + b"1" * 10
    True
    >>> w.size, w.compressed == len(sink.getvalue()), w.crc == zlib.crc32(b"0" * 1000 + b"1" * 10)
    (1010, True, True)
    """

    def __init__(self, out: BinaryIO, level: int = DEFLATE_LEVEL) -> None:
        self._out = out
        self._c = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
        self.crc = 0
        self.size = 0
        self.compressed = 0

    def write(self, data: BytesLike) -> int:
        """Deflate ``data`` (any contiguous buffer); return its length in bytes."""
        n = data.nbytes if isinstance(data, np.ndarray) else memoryview(data).nbytes
        self.crc = isal_zlib.crc32(data, self.crc)
        self.size += n
        self._emit(self._c.compress(data))
        return n

    def finish(self) -> None:
        """End the deflate stream (final block)."""
        self._emit(self._c.flush(isal_zlib.Z_FINISH))

    def _emit(self, chunk: bytes) -> None:
        if chunk:
            self._out.write(chunk)
            self.compressed += len(chunk)


class Inflater:
    """Read-only stream of the bytes of one raw-deflate entry (a zip member's data), inflated
    with python-isal (about twice as fast as zlib here, with a CRC-32 ~7x faster) and
    checked against the entry's CRC-32 and size once its end is read.

    Parameters
    ----------
    fh : binary file
        Positioned at the first compressed byte; ``compressed`` bytes are read from it.
    compressed, size, crc : int
        The entry's compressed and inflated sizes and the CRC-32 of its inflated bytes.

    Raises
    ------
    EOFError
        From :meth:`read`: the stream ends before ``size`` bytes, or holds more.
    ValueError
        From :meth:`read`: the inflated bytes do not match ``crc``.
    InflateError
        From :meth:`read`: the compressed bytes are not a deflate stream.

    Examples
    --------
    >>> import io
    >>> z, crc = deflate_piece(b"stripes" * 1000, last=True)
    >>> f = Inflater(io.BytesIO(z), len(z), 7000, crc)
    >>> bytes(f.read(7)), len(f.read(10_000)), f.read(1)
    (b'stripes', 6993, b'')
    >>> Inflater(io.BytesIO(z), len(z), 7000, crc ^ 1).read(7000)
    Traceback (most recent call last):
    ...
    ValueError: CRC-32 of the inflated bytes does not match
    """

    def __init__(self, fh: BinaryIO, compressed: int, size: int, crc: int) -> None:
        self._fh = fh
        self._left = compressed          # compressed bytes not read from the file yet
        self._size = size
        self._crc = crc
        self._d = isal_zlib.decompressobj(-15)
        self._tail = b""                 # compressed bytes read but not inflated
        self._got = 0                    # inflated bytes so far
        self._sum = 0                    # their CRC-32
        self._checked = False            # the end was checked (:meth:`_finish`)

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at the end of the entry; ``b""`` after it).
        One piece the inflater made, when it made exactly ``n`` bytes at once (no copy)."""
        parts: list[bytes] = []
        need = n
        while need > 0 and self._got < self._size:
            if not self._tail and self._left > 0:
                self._tail = self._fh.read(min(INFLATE_INPUT, self._left))
                if not self._tail:
                    raise EOFError("the compressed stream is truncated")
                self._left -= len(self._tail)
            out = self._d.decompress(self._tail, min(need, self._size - self._got))
            self._tail = self._d.unconsumed_tail
            if out:
                self._got += len(out)
                self._sum = isal_zlib.crc32(out, self._sum)
                parts.append(out)
                need -= len(out)
            elif not self._tail and self._left <= 0:
                raise EOFError("the compressed stream ends before its last byte")
        if self._got >= self._size and not self._checked:
            self._finish()
            self._checked = True
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts) if parts else b""

    def _finish(self) -> None:
        """At the entry's size: the deflate stream must end there, with its CRC-32."""
        if self._sum != self._crc:
            raise ValueError("CRC-32 of the inflated bytes does not match")
        while not self._d.eof:
            if not self._tail and self._left > 0:
                self._tail = self._fh.read(min(INFLATE_INPUT, self._left))
                self._left -= len(self._tail)
            if self._d.decompress(self._tail, 1):
                raise EOFError("the compressed stream holds more bytes than its size")
            self._tail = self._d.unconsumed_tail
            if not self._d.eof and not self._tail and self._left <= 0:
                raise EOFError("the compressed stream is truncated")
