"""The streamed Larix stages (raw counts in, packed bits between) equal the reference ones."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.stripe_detect import (detect_stripe_mask, merge_stripes_rows, rows_to_read,
                                      stripe_candidates_rows)
from nsgen.prep.stripe_packed import candidates_from_raw, merge_packed, packed_columns


def scan(n_k: int, n_j: int, n_i: int, seed: int = 0):
    """Raw counts with a few stripes (full, partial, short) plus flat and dark means."""
    rng = np.random.default_rng(seed)
    raw = rng.poisson(3000, (n_k, n_j, n_i)).astype(np.uint16)
    raw[:, :, n_i // 3] //= 2                      # a full-height stripe
    raw[n_k // 4:, 2:n_j // 2, n_i // 2] //= 3     # partial, some rows
    raw[:, n_j - 3:, n_i - 5:n_i - 3] = 200        # at the bottom edge, two columns wide
    flat = rng.uniform(3900, 4100, (n_j, n_i))
    dark = rng.uniform(90, 110, (n_j, n_i))
    return raw, flat, dark


PARAMS = [DetectParams(size=10, radius=3, threshold=0.63, min_stripe_length=20,
                       min_stripe_depth=6, min_stripe_width=4),
          DetectParams(size=15, radius=2, threshold=0.7, min_stripe_length=30,
                       min_stripe_depth=0, min_stripe_width=3, sensitivity_perc=70)]


@pytest.mark.parametrize("n_i", [64, 61, 8, 300])
@pytest.mark.parametrize("p", PARAMS)
def test_candidates_equal_the_reference_packed(n_i, p):
    raw, flat, dark = scan(48, 20, n_i)
    x = flat_field_log(raw, flat, dark, sinograms_first=False)
    for start, stop in [(0, 20), (0, 5), (7, 13), (17, 20)]:
        lo, hi = rows_to_read(start, stop, 20, p.radius)
        ref = stripe_candidates_rows(x[:, lo:hi], lo, (start, stop), 20, p)
        got = candidates_from_raw(raw[:, lo:hi], flat[lo:hi], dark[lo:hi], lo, (start, stop),
                                  20, p)
        assert got.shape == (stop - start, 48, packed_columns(n_i))
        assert np.array_equal(got, np.packbits(ref, axis=-1))   # type: ignore[arg-type]


@pytest.mark.parametrize("n_i", [64, 61])
@pytest.mark.parametrize("p", PARAMS)
def test_merge_of_packed_equals_the_reference_in_any_chunking(n_i, p):
    raw, flat, dark = scan(48, 24, n_i, seed=3)
    cand = candidates_from_raw(raw, flat, dark, 0, (0, 24), 24, p)
    unpacked = np.unpackbits(cand, axis=-1, count=n_i)
    whole = detect_stripe_mask(flat_field_log(raw, flat, dark, sinograms_first=False),
                               **vars(p))
    assert whole.sum() > 0
    hd = p.min_stripe_depth // 2
    for chunk in (1, 5, 24):
        for start in range(0, 24, chunk):
            stop = min(24, start + chunk)
            lo, hi = rows_to_read(start, stop, 24, hd)
            got = merge_packed(cand[lo:hi], lo, (start, stop), 24, p, n_i)
            ref = merge_stripes_rows(unpacked[lo:hi], lo, (start, stop), 24, p)
            assert np.array_equal(got, ref)
            assert np.array_equal(got.transpose(1, 0, 2), whole[:, start:stop])


def test_a_block_with_more_rows_than_needed_gives_the_same_rows():
    p = PARAMS[0]
    raw, flat, dark = scan(48, 20, 40)
    exact = candidates_from_raw(raw[:, 5:16], flat[5:16], dark[5:16], 5, (8, 13), 20, p)
    wide = candidates_from_raw(raw, flat, dark, 0, (8, 13), 20, p)
    assert np.array_equal(exact, wide)
    cand = candidates_from_raw(raw, flat, dark, 0, (0, 20), 20, p)
    assert np.array_equal(cand[8:13], exact)
    assert np.array_equal(merge_packed(cand[7:15], 7, (10, 12), 20, p, 40),
                          merge_packed(cand, 0, (10, 12), 20, p, 40))


def test_too_few_rows_and_bad_shapes_are_refused():
    p = PARAMS[0]
    raw, flat, dark = scan(48, 20, 40)
    with pytest.raises(ValueError, match=r"need rows \[5, 15\)"):
        candidates_from_raw(raw[:, 6:15], flat[6:15], dark[6:15], 6, (8, 12), 20, p)
    cand = candidates_from_raw(raw, flat, dark, 0, (0, 20), 20, p)
    with pytest.raises(ValueError, match=r"packed must be \(rows, angles, 5\)"):
        merge_packed(cand[:, :, :4], 0, (0, 20), 20, p, 40)
    with pytest.raises(ValueError, match="out must be a C-contiguous uint8 array"):
        merge_packed(cand, 0, (0, 20), 20, p, 40, out=np.empty((20, 48, 41), np.uint8))
