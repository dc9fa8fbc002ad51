"""The robust detector's row-alone path (nsgen.prep.robust_tall): stripes over many rows."""

import numpy as np
import pytest

from nsgen.prep import robust_tall
from nsgen.prep.robust_scores import ranks
from nsgen.prep.robust_tall import odd_windows, split_tall, tall_scores, with_tall
from nsgen.prep.robust_stack import DECIDE_REACH as REACH
from nsgen.prep.stripe_robust import HALO, depth_rule, robust_mask_rows, robust_stripe_mask

from helpers import normalised


def disc(theta: np.ndarray, s: np.ndarray, radius: float, mu: float, orbit: float = 0.0,
         phase: float = 0.0) -> np.ndarray:
    """Parallel projections ``(angles, columns)`` of a disc of ``radius`` (columns) at
    ``orbit`` columns from the rotation axis (exact chord lengths times ``mu``)."""
    s0 = orbit * np.cos(theta[:, None] + phase)
    return 2 * mu * np.sqrt(np.maximum(radius ** 2 - (s[None, :] - s0) ** 2, 0.0))


def sample(n_k: int = 240, n_j: int = 16, n_i: int = 128, seed: int = 0,
           container: bool = True) -> np.ndarray:
    """A scan ``(angles, rows, columns)`` float32 in -log units: a tube centred on the
    axis (constant over angles: mirror-symmetric features in every row), two moving discs,
    noise."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(0, np.pi, n_k, endpoint=False)
    s = np.arange(n_i) - (n_i - 1) / 2
    x = disc(theta, s, 12, 0.02, 30, 0.4) + disc(theta, s, 6, 0.03, 15, 2.0)
    if container:   # a thin-walled tube: sharp peaks inside its wall, fixed over angles
        x = x + disc(theta, s, 0.42 * n_i, 0.01) - disc(theta, s, 0.42 * n_i - 3, 0.01)
    x = np.repeat(x[:, None, :], n_j, axis=1)
    return (x + rng.normal(0, 0.003, x.shape)).astype(np.float32)


def test_a_stripe_in_every_row_is_found():
    """Rows first cancels a stripe all rows share; the row-alone path finds it, at every
    angle, and nothing else (the container's edges are a mirror pair)."""
    x = sample()
    x[:, :, 40] -= 0.15    # a gain error in every row (-ln 1.16)
    x[:, :, 90] += 0.15    # and one of the other sign
    m = robust_stripe_mask(x)
    assert m[:, :, [40, 90]].all()
    assert np.flatnonzero(m.any(axis=(0, 1))).tolist() == [40, 90]


def test_a_centred_object_is_not_a_stripe():
    """The tube alone (constant over the angles, in every row): its wall's peaks are rank
    consistent in each row, as a stripe's, but come as a mirror pair about the axis."""
    x = sample()
    srt = ranks(x, 0, x.shape[0])
    win = odd_windows(x.shape[2])
    cand, _, _, frac, ratio, (c, sym) = robust_tall._candidates(srt[0], win)
    edges = cand[(frac >= robust_tall.SIGN_FRACTION) & (ratio > robust_tall.CONSISTENCY)]
    assert {12, 115} <= set(edges.tolist()) and c == 63.5
    assert all(min(abs(e - 12), abs(e - 115)) <= 2 for e in edges)   # the wall's peaks and sym > robust_tall.SYMMETRY
    assert not tall_scores(srt).any()


def test_a_moving_feature_is_not_rank_consistent():
    """Without the tube, the moving discs' edges score in the row alone but do not hold at
    every rank: nothing is found."""
    x = sample(container=False)
    srt = ranks(x, 0, x.shape[0])
    cand, _, _, frac, ratio, _ = robust_tall._candidates(srt[0], odd_windows(x.shape[2]))
    assert cand.size > 5   # the discs score in the row alone ...
    assert not ((frac >= robust_tall.SIGN_FRACTION) & (ratio > robust_tall.CONSISTENCY)).any()
    assert not tall_scores(srt).any()   # ... but not at every rank


def test_a_stripe_on_the_axis_is_its_own_mirror_and_kept():
    x = sample()
    x[:, :, 64] -= 0.15
    assert np.flatnonzero(tall_scores(ranks(x, 0, x.shape[0])).any(axis=0)).tolist() == [64]


def test_the_tall_sets_travel_with_the_offsets():
    """with_tall appends a tall set per angle set to row_offsets' sets, split_tall takes
    them off again (the offsets unchanged) and gives its rows' flags per angle set."""
    x = np.random.default_rng(1).normal(0, 0.01, (180, 2, 64)).astype(np.float32)
    x[:, :, 20] -= 0.1
    x[20:, :, 40] -= 0.1   # all angles but the first block's (9 of 10 of them)
    sets = [ranks(x, 0, 20), ranks(x, 20, 180), ranks(x, 0, 180)]
    qs = np.arange(2 * 3 * 65, dtype=np.float64).reshape(2, 3, 65)
    both = with_tall(qs, sets)
    assert both.shape == (2, 3 * (1 + robust_tall.TALL_SETS), 65)
    rest, flags = split_tall(both, 10, (11, 12))
    assert np.array_equal(rest, qs) and flags.shape == (3, 1, 64)
    assert [np.flatnonzero(f[0]).tolist() for f in flags] == [[20], [20, 40], [20, 40]]


@pytest.mark.parametrize("chunk", [1, 5, 24])
def test_chunked_masks_equal_the_whole(chunk):
    """Every row's tall flags come from that row alone: any row chunking gives the whole
    volume's mask."""
    x = sample(n_j=24, seed=3)
    x[:, :, 40] -= 0.15
    x[:, 4:16, 90] += 0.15
    x[:, 18:20, 20] += 0.03
    whole = robust_stripe_mask(x, depth=16)
    assert whole[:, :, 40].all() and whole[:, 4:16, 90].all()
    h = HALO * depth_rule(24, 16) + REACH
    parts = []
    for start in range(0, 24, chunk):
        stop = min(24, start + chunk)
        lo, hi = max(0, start - h), min(24, stop + h)
        parts.append(robust_mask_rows(x[:, lo:hi], lo, (start, stop), 24, depth=16))
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_a_make_scan_defect_in_every_row_is_found(tmp_path):
    """The lead's case on a made scan: a 20 % gain error over all rows and one over 4 rows
    (where the sample changes fast between rows) are found in every row they span."""
    from nsgen.io.scan_writer import write_scan

    path = tmp_path / "t.nxs"
    write_scan(path, n_angles=181, n_rows=16, n_columns=256, seed=3,
               defect_rows={50: (0, 16, 1.2), 180: (5, 9, 1.2)})
    x = normalised(path)
    flags = robust_stripe_mask(x).any(axis=0)
    assert flags[:, 50].all() and flags[5:9, 180].all()


def test_a_lower_partner_is_a_mirror_with_one_angle_block():
    """A candidate whose mirror partner about the axis has 0.6 of its height (same sign) is a
    centred object's feature where no angle block follows (MIRROR_MATCH_ONE_BLOCK: a
    container's inner edge on a 91-angle scan), a stripe where blocks follow; the partner
    itself (its partner 1.7 times its height) is kept either way."""
    x = sample()
    x[:, :, 40] -= 0.15
    x[:, :, 87] -= 0.09     # 2c - 40, c = 63.5: 0.6 of its height
    srt = ranks(x, 0, x.shape[0])
    one = robust_tall.block_scores([srt])[:, -1]
    several = robust_tall.block_scores([srt, srt])[:, -1]
    assert not one[:, 40].any() and several[:, 40].all()
    assert one[:, 87].all() and several[:, 87].all()
