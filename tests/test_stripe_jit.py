"""Compiled windowed counts (nsgen.prep._stripe_jit): the packed count equals the plain one.

The plain count (``count_at_least_rows_first``) is checked against a brute force in
tests/test_stripe_detect.py; the merge passes there and in tests/test_stripe_packed.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep import _stripe_jit


@pytest.mark.parametrize("n_k,size", [(21, 10), (40, 3), (7, 1), (30, 15), (9, 4), (6, 5)])
def test_packed_count_equals_the_plain_count_packed(n_k, size):
    """Running counts (window inside the scan) and prefix sums (window longer than the
    scan: (30, 15), (9, 4), (6, 5)) alike, one strip of 256 columns or several."""
    rng = np.random.default_rng(n_k * 100 + size)
    for n_i in (1, 8, 13, 300, 600):
        b = (rng.random((n_k, 3, n_i)) < rng.uniform(0.2, 0.8)).astype(np.uint8)
        for need in (0, 1, size, size + 1, 2 * size + 1, 2 * size + 2):
            plain = np.empty((3, n_k, n_i), np.uint8)
            _stripe_jit.count_at_least_rows_first(b, size, need, plain)
            packed = np.full((3, n_k, -(-n_i // 8)), 0xAA, np.uint8)
            _stripe_jit.count_at_least_packed(b, size, need, packed)
            assert np.array_equal(packed, np.packbits(plain, axis=-1)), (n_i, need)


def test_pack_magic_is_packbits():
    """The multiply that packs eight 0/1 bytes equals np.packbits for all 256 patterns."""
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)   # (256, 8)
    words = np.ascontiguousarray(bits).view(np.uint64)[:, 0]
    packed = (words * _stripe_jit.PACK_MAGIC) >> np.uint64(56)
    assert packed.astype(np.uint8).tolist() == list(range(256))
