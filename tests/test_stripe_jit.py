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


def depth_reference(bits: np.ndarray, b0: int, n_out: int, hd: int, t_d: int) -> np.ndarray:
    """The depth pass on unpacked rows (``depth_pass``, itself checked against a brute
    force in tests/test_stripe_detect.py), rows ``b0 .. b0 + n_out - 1``."""
    m = bits.copy()
    if hd >= 0:
        _stripe_jit.depth_pass(m, hd, t_d)
    return m[b0:b0 + n_out]


@pytest.mark.parametrize("density", [0.02, 0.5, 0.95])
def test_depth_pass_on_packed_rows_equals_the_unpacked_one(density):
    """Sparse or dense candidates, any output rows of the block, mirrored windows."""
    rng = np.random.default_rng(int(density * 100))
    for _ in range(60):
        n_block, n_k, n_i = int(rng.integers(1, 30)), int(rng.integers(1, 5)), int(rng.integers(1, 40))
        bits = (rng.random((n_block, n_k, n_i)) < density).astype(np.uint8)
        b0 = int(rng.integers(0, n_block))
        n_out = int(rng.integers(1, n_block - b0 + 1))
        hd = int(rng.integers(-1, 8))
        t_d = int(rng.integers(0, 2 * max(hd, 0) + 2))
        out = np.full((n_out, n_k, n_i), 7, np.uint8)
        active = np.full((n_out, n_i), 7, np.uint8)
        kept = np.full((n_out, n_k, -(-n_i // 8)), 0x55, np.uint8)
        _stripe_jit.depth_unpack(np.packbits(bits, axis=-1), b0, hd, t_d, out, active, kept)
        ref = depth_reference(bits, b0, n_out, hd, t_d)
        assert np.array_equal(out, ref)
        assert np.array_equal(active, ref.any(axis=1))
        assert np.array_equal(kept, np.packbits(ref, axis=-1))


def test_depth_pass_counts_in_blocks_taller_than_its_counters():
    """Prefix sums over rows wrap at 2**16; the window counts must not."""
    n_block = 70_000
    bits = np.zeros((n_block, 1, 8), np.uint8)
    bits[:, 0, 2] = 1                        # a column set in every row: deep, cleared
    bits[68_000:68_005, 0, 5] = 1            # 5 rows deep: kept
    out = np.empty((10, 1, 8), np.uint8)
    active = np.empty((10, 8), np.uint8)
    kept = np.empty((10, 1, 1), np.uint8)
    _stripe_jit.depth_unpack(np.packbits(bits, axis=-1), 67_998, 15, 25, out, active, kept)
    assert out[:, 0, 2].sum() == 0
    assert out[:, 0, 5].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]


def test_pack_bits_is_packbits():
    m = (np.random.default_rng(4).random((3, 5, 21)) < 0.5).astype(np.uint8)
    out = np.full((3, 5, 3), 0xAA, np.uint8)
    _stripe_jit.pack_bits(m, out)
    assert np.array_equal(out, np.packbits(m, axis=-1))
