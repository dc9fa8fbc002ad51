"""Tests for nsgen.prep.robust_second (the second rows-first pass)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_defects import KINDS, read_truth
from nsgen.io.scan_writer import write_scan
from nsgen.prep import robust_features, robust_scores, robust_second, stripe_robust
from nsgen.prep.robust_second import excluded, second_offsets, second_rows

from helpers import normalised


def test_a_defects_flags_over_a_few_rows_are_left_out_and_others_are_not():
    flags = np.zeros((40, 30), bool)
    flags[5:9, 3] = True                  # 4 rows: out
    flags[10, 20] = flags[11, 22] = True  # 2 rows, 2 columns apart: out
    flags[15, 10] = flags[16, 13] = True  # 3 columns apart: two one-row flags, kept
    flags[20, 5] = True                   # one row: kept
    flags[:, 27] = True                   # every row (more than hd): kept
    flags[30:37, 0] = True                # 7 rows > hd 6: kept
    got = excluded(flags, 0, (0, 40), 6, 40)
    assert np.argwhere(got).tolist() == [[5, 3], [6, 3], [7, 3], [8, 3], [10, 20], [11, 22]]


@pytest.mark.parametrize("seed", range(6))
def test_left_out_values_and_rows_decided_again_need_their_halos_only(seed):
    """Any rows with ``hd`` rows of flags each side (``2 hd`` of exclusions for the rows
    decided again) give the whole volume's answer, runs cut at the held rows' ends too."""
    rng = np.random.default_rng(seed)
    n, hd = 60, 5
    flags = rng.random((n, 12)) < 0.3
    flags[:, 4] = rng.random(n) < 0.8    # long runs with gaps
    whole = excluded(flags, 0, (0, n), hd, n)
    for start, stop in [(0, 7), (7, 20), (20, 21), (33, 60), (12, 48)]:
        lo, hi = max(0, start - hd), min(n, stop + hd)
        assert np.array_equal(excluded(flags[lo:hi], lo, (start, stop), hd, n),
                              whole[start:stop])
        e_lo, e_hi = max(0, start - 2 * hd), min(n, stop + 2 * hd)
        got = second_rows(whole[e_lo:e_hi], e_lo, (start, stop), hd)
        rows = [j for j in range(start, stop)
                if whole[max(0, j - 2 * hd):j + 2 * hd + 1].any()]
        assert got == ((rows[0], rows[-1] + 1) if rows else None)
    with pytest.raises(ValueError, match="need rows"):
        excluded(flags[10:], 10, (12, 20), hd, n)


def test_second_offsets_are_rows_first_without_the_left_out_values():
    """Rows whose compared rows hold a left-out value: the offsets of the ranks against
    backgrounds without it (as a strong defect); the others and the tall sets as they were."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.01, (360, 24, 48)).astype(np.float32)
    x[:, 8:12, 20:22] += 0.01
    feat = robust_features.row_features(x)
    sets, strong, _ = robust_features.split_features(feat, 360)
    qs = stripe_robust.row_offsets(feat, 0, (0, 24), 24, 360, 8)
    ex = np.zeros((24, 48), bool)
    ex[8:12, 20:22] = True
    got = second_offsets(sets, strong, ex, 0, qs, 0, (0, 24), 24, 4)
    want = stripe_robust.set_offsets(sets, [s | ex for s in strong], 0, (0, 24), 24, 8)
    far = [j for j in range(24) if not ex[max(0, j - 4):j + 5].any()]
    assert far and np.array_equal(got[far], qs[far])
    near = [j for j in range(24) if j not in far]
    assert np.array_equal(got[near], want[near])
    assert np.abs(got[10, -1, 20] - qs[10, -1, 20]) > 0   # (the rank consistency too)


def test_a_defects_middle_rows_are_found_without_its_flagged_rows_in_the_median(tmp_path):
    """A 7.4 % full stripe over rows 38-45 and columns 172-176 (labelled scan 721 x 64 x 512,
    seed 3, i0 20000) on a sample that changes fast along the rows: the first decision
    flags some of its rows; left out of the compared rows' backgrounds, they no longer
    shift the per-rank median of the others, and row 44 is found in the stripe's columns."""
    path = tmp_path / "f3.nxs"
    write_scan(path, n_angles=721, n_rows=64, n_columns=512, seed=3, i0=20000.0,
               labelled=True)
    x = normalised(path)
    full = read_truth(path)[:, 44] == KINDS.index("full") + 1
    cols = np.flatnonzero(full.any(axis=0)).tolist()
    assert cols == [172, 173, 174, 175, 176]
    first = _first_decision(x)
    assert not first[:, 44, 160:190].any() and first[:, 38:46, 172:177].any()
    m = stripe_robust.robust_stripe_mask(x)
    got = np.flatnonzero(m[:, 44].any(axis=0)).tolist()
    assert got and set(got) <= set(cols), got


def _first_decision(x: np.ndarray) -> np.ndarray:
    n_k, n = x.shape[:2]
    feat = robust_features.row_features(x)
    qs = stripe_robust.row_offsets(feat, 0, (0, n), n, n_k)
    return stripe_robust.decide_offsets(qs, 0, robust_features.split_features(feat, n_k)[2], (0, n), n,
                                        n_k)


def test_the_module_constants_are_used(monkeypatch):
    """SHORT_MIN above hd: nothing left out, the first decision is the mask."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, (180, 16, 48)).astype(np.float32)
    x[:, 4:9, 30] += 0.03
    monkeypatch.setattr(robust_second, "SHORT_MIN", 100)
    assert np.array_equal(stripe_robust.robust_stripe_mask(x), _first_decision(x))
    assert robust_scores.STRONG > 0


@pytest.mark.parametrize("slab", [0, robust_second.SLAB, 10**6])
@pytest.mark.parametrize("seed", range(3))
def test_second_offsets_computed_on_the_changed_columns_only_are_exact(seed, slab,
                                                                       monkeypatch):
    """Left-out values anywhere (at the row's ends, beside and inside strong columns, in
    runs): the offsets, scales and consistencies equal rows first over whole rows with them
    as strong defects, bit for bit (on slabs of columns, slab 0, or on whole rows)."""
    monkeypatch.setattr(robust_second, "SLAB", slab)
    rng = np.random.default_rng(seed)
    n, n_i, n_k = 20, 80, 360
    x = rng.normal(0, 0.01, (n_k, n, n_i)).astype(np.float32)
    x += np.linspace(0, 0.05, n)[None, :, None] * np.sin(np.arange(n_i) / 7.0)[None, None]
    x[:, :, [0, 33, 34, 79]] += 2.0           # strong columns (dead-like), at the ends too
    feat = robust_features.row_features(x)
    sets, strong, _ = robust_features.split_features(feat, n_k)
    qs = stripe_robust.row_offsets(feat, 0, (0, n), n, n_k, 8)
    ex = rng.random((n, n_i)) < 0.02
    ex[3:6, [1, 32, 35, 78]] = True           # beside the strong ones
    ex[12:14, 50:60] = True
    got = second_offsets(sets, strong, ex, 0, qs, 0, (0, n), n, 4)
    want = stripe_robust.set_offsets(sets, [s | ex for s in strong], 0, (0, n), n, 8)
    assert got.tobytes() == want.tobytes()
