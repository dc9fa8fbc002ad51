"""Exact percentiles of float32 data streamed in chunks: two-level counting of bit patterns.

A float32 ``x`` maps to a 32-bit key that sorts like ``x`` (:func:`order_keys`). Level one
counts the keys' top 16 bits per chunk (65,536 bins); the counts add up whatever the
chunking, so the bin holding the value of rank ``k`` is known exactly after one pass. Level
two counts the low 16 bits of the keys inside that bin (again 65,536 bins, summed over
chunks) and gives the key, hence the value, of rank ``k`` exactly. Both levels are integer
sums: deterministic whatever the chunking, workers or order.

Ranks follow NumPy's ``percentile(method="lower")`` for the low bound and
``method="higher"`` for the high one (:func:`ranks`), so the bounds are data values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["KeyCounts", "key_value", "level_two", "order_keys", "rank_bin", "ranks"]

BINS = 1 << 16


def order_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys that sort like the float32 values (NaN excluded by the caller).

    Examples
    --------
    >>> v = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0], np.float32)
    >>> k = order_keys(v); bool((np.diff(k.astype(np.int64)) >= 0).all())
    True
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    negative = (bits >> 31).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000))


def key_value(key: int) -> float:
    """The float32 value of a key of :func:`order_keys` (as a Python float).

    Examples
    --------
    >>> key_value(int(order_keys(np.array([-1.5], np.float32))[0]))
    -1.5
    """
    k = np.uint32(key)
    bits = k & np.uint32(0x7FFFFFFF) if k >> 31 else ~k
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def ranks(n: int, percentile: float) -> tuple[int, int]:
    """0-based ranks of the low and high bounds among ``n`` values.

    ``lo = floor(q (n - 1))`` and ``hi = ceil((1 - q) (n - 1))`` with ``q = percentile / 100``
    (NumPy's ``method="lower"`` and ``method="higher"``).

    Examples
    --------
    >>> ranks(1001, 1.0), ranks(5, 0.0)
    ((10, 990), (0, 4))
    """
    q = percentile / 100.0
    return int(np.floor(q * (n - 1))), int(np.ceil((1.0 - q) * (n - 1)))


def rank_bin(counts: np.ndarray, rank: int) -> tuple[int, int]:
    """The bin holding the value of 0-based ``rank``, and its rank inside the bin.

    Examples
    --------
    >>> rank_bin(np.array([2, 0, 3]), 3)
    (2, 1)
    """
    cum = np.cumsum(counts)
    b = int(np.searchsorted(cum, rank, side="right"))
    return b, rank - (int(cum[b - 1]) if b else 0)


@dataclass
class KeyCounts:
    """Level-one (``top``) or level-two (``low`` per chosen top bin) counts of a chunk."""

    top: np.ndarray = field(default_factory=lambda: np.zeros(BINS, np.int64))
    #: level two: top bin -> counts of the low 16 bits of the keys in it
    low: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, values: np.ndarray, bins: tuple[int, ...] = ()) -> None:
        """Count the finite ``values``: level one, or level two inside ``bins``."""
        v = np.asarray(values, dtype=np.float32).ravel()
        keys = order_keys(v[np.isfinite(v)])
        if not bins:
            self.top += np.bincount(keys >> 16, minlength=BINS)
            return
        top = keys >> 16
        for b in bins:
            inside = keys[top == b] & np.uint32(0xFFFF)
            self.low[b] = self.low.get(b, np.zeros(BINS, np.int64)) + np.bincount(
                inside, minlength=BINS)

    def union(self, other: KeyCounts) -> KeyCounts:
        low = dict(self.low)
        for b, c in other.low.items():
            low[b] = low[b] + c if b in low else c
        return KeyCounts(self.top + other.top, low)


def level_two(counts: KeyCounts, percentile: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """From level-one counts: ``((top bin, rank in bin) of the low bound, ... high bound)``."""
    n = int(counts.top.sum())
    k_lo, k_hi = ranks(n, percentile)
    return rank_bin(counts.top, k_lo), rank_bin(counts.top, k_hi)


def exact_bounds(counts: KeyCounts, where: tuple[tuple[int, int], tuple[int, int]]
                 ) -> tuple[float, float]:
    """The low and high bound values from level-two counts of the bins in ``where``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=1001).astype(np.float32)
    >>> c = KeyCounts(); c.add(x[:500]); c.add(x[500:])
    >>> where = level_two(c, 1.0)
    >>> c2 = KeyCounts(); c2.add(x, bins=(where[0][0], where[1][0]))
    >>> exact_bounds(c2, where) == (float(np.percentile(x, 1.0, method="lower")),
    ...                             float(np.percentile(x, 99.0, method="higher")))
    True
    """
    out = []
    for b, r in where:
        low, _ = rank_bin(counts.low[b], r)
        out.append(key_value((b << 16) | low))
    return out[0], out[1]
