"""A run-length deflate encoder (Numba), for stripe masks: long runs of 0 and 1 bytes.

Deflate (RFC 1951) with one fixed-Huffman block per piece, whose only back-references have
distance 1: a run of ``L`` equal bytes becomes one literal and matches of up to 258 bytes
copying the byte before. That is zlib's ``Z_RLE`` strategy, written out for this one case:
runs are found eight bytes at a time, so a mostly-empty mask encodes at ~5 GB/s instead
of zlib's ~0.7, to about the size zlib level 1 gives (fixed codes spend 13 bits on each
258 bytes of a run: a 1.2 GB mask of 1801 x 256 x 2560 takes ~10 MB). Any byte values are
valid input; only runs compress.

A piece ends like zlib's ``Z_SYNC_FLUSH`` (end of block, then an empty stored block, so the
piece ends on a byte boundary) or, for the last piece, ``Z_FINISH`` (a final block), so
pieces encoded independently concatenate into one valid stream, as in
:func:`nsgen.io.mask_archive.deflate_piece`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep._jit import JIT as _JIT


def _reverse(code: int, n: int) -> int:
    """``code``'s low ``n`` bits in reverse order (Huffman codes go MSB first)."""
    return int(f"{code:0{n}b}"[::-1], 2)


def _literal_table() -> tuple[np.ndarray, np.ndarray]:
    """Fixed-Huffman literal codes (bit-reversed) and lengths for bytes 0..255."""
    bits = np.zeros(256, np.uint64)
    nbits = np.zeros(256, np.int64)
    for v in range(256):
        code, n = (0x30 + v, 8) if v < 144 else (0x190 + v - 144, 9)
        bits[v], nbits[v] = _reverse(code, n), n
    return bits, nbits


#: (first length, extra bits) of length symbols 257..285 (RFC 1951 3.2.5)
_LENGTHS = ([(3 + k, 0) for k in range(8)]
            + [(11 + 2 * k, 1) for k in range(4)] + [(19 + 4 * k, 2) for k in range(4)]
            + [(35 + 8 * k, 3) for k in range(4)] + [(67 + 16 * k, 4) for k in range(4)]
            + [(131 + 32 * k, 5) for k in range(4)] + [(258, 0)])


def _match_table() -> tuple[np.ndarray, np.ndarray]:
    """Bits (LSB first) of a match of length 3..258 at distance 1: length symbol, its
    extra bits, then distance code 0 (five zero bits)."""
    bits = np.zeros(259, np.uint64)
    nbits = np.zeros(259, np.int64)
    for length in range(3, 259):
        k = max(i for i, (base, _) in enumerate(_LENGTHS) if base <= length)
        if length == 258:
            k = len(_LENGTHS) - 1          # 258 has its own symbol (285)
        base, extra = _LENGTHS[k]
        sym = 257 + k
        code, n = (sym - 256, 7) if sym < 280 else (0xC0 + sym - 280, 8)
        bits[length] = _reverse(code, n) | ((length - base) << n)
        nbits[length] = n + extra + 5
    return bits, nbits


LITERAL_BITS, LITERAL_NBITS = _literal_table()
MATCH_BITS, MATCH_NBITS = _match_table()
#: eight copies of each byte value, to compare eight bytes of a run at once
_WORD = np.uint64(0x0101010101010101)


@nb.njit(**_JIT)
def _put(out, pos, acc, nacc, bits, n):  # pragma: no cover - compiled
    """Append ``n`` bits (LSB first) to the accumulator; flush whole bytes to ``out``."""
    acc |= bits << np.uint64(nacc)
    nacc += n
    while nacc >= 8:
        out[pos] = np.uint8(acc & np.uint64(0xFF))
        acc >>= np.uint64(8)
        nacc -= 8
        pos += 1
    return pos, acc, nacc


@nb.njit(**_JIT)
def rle_deflate_into(data, words, out, final, lit_bits, lit_n, match_bits, match_n):
    """Encode ``data`` (uint8, 1-D) into ``out``; return the number of bytes written.

    ``words`` is ``data`` viewed as uint64 (its first ``len(data) // 8`` words), ``out``
    holds at least ``len(data) * 9 // 8 + 16`` bytes.
    """  # pragma: no cover - compiled
    n = data.shape[0]
    pos, acc, nacc = 0, np.uint64(0), 0
    pos, acc, nacc = _put(out, pos, acc, nacc, np.uint64(1 if final else 0), 1)
    pos, acc, nacc = _put(out, pos, acc, nacc, np.uint64(1), 2)     # fixed Huffman
    i = 0
    while i < n:
        b = data[i]
        pattern = np.uint64(b) * _WORD
        j = i + 1
        while j < n:
            if (j & 7) == 0 and j + 8 <= n and words[j >> 3] == pattern:
                j += 8
                continue
            if data[j] != b:
                break
            j += 1
        pos, acc, nacc = _put(out, pos, acc, nacc, lit_bits[b], lit_n[b])
        left = j - i - 1
        while left >= 3:
            m = min(left, 258)
            if 0 < left - m < 3:
                m -= 3                     # leave a remainder a match can take
            pos, acc, nacc = _put(out, pos, acc, nacc, match_bits[m], match_n[m])
            left -= m
        for _ in range(left):
            pos, acc, nacc = _put(out, pos, acc, nacc, lit_bits[b], lit_n[b])
        i = j
    pos, acc, nacc = _put(out, pos, acc, nacc, np.uint64(0), 7)    # end of block
    if not final:                          # empty stored block: byte-align (sync flush)
        pos, acc, nacc = _put(out, pos, acc, nacc, np.uint64(0), 3)
    if nacc > 0:
        pos, acc, nacc = _put(out, pos, acc, nacc, np.uint64(0), 8 - nacc)
    if not final:
        out[pos] = 0
        out[pos + 1] = 0
        out[pos + 2] = 0xFF
        out[pos + 3] = 0xFF
        pos += 4
    return pos


def rle_deflate(data: np.ndarray, final: bool) -> bytes:
    """Raw deflate of ``data``'s bytes with runs as distance-1 matches (see module doc).

    Examples
    --------
    >>> import zlib
    >>> x = np.zeros(100_000, np.uint8); x[500:9000] = 1
    >>> z = rle_deflate(x, final=True)
    >>> zlib.decompress(z, -15) == x.tobytes(), len(z) < 1000     # 100 kB in < 1 kB
    (True, True)
    """
    flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if flat.ctypes.data % 8:
        flat = flat.copy()                 # np.empty is aligned: the uint64 view needs it
    words = flat[:flat.size // 8 * 8].view(np.uint64)
    out = np.empty(flat.size * 9 // 8 + 16, np.uint8)
    n = rle_deflate_into(flat, words, out, final, LITERAL_BITS, LITERAL_NBITS,
                         MATCH_BITS, MATCH_NBITS)
    return out[:n].tobytes()
