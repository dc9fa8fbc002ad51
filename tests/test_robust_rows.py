"""nsgen.prep.robust_rows: partial stripes widened along the detector rows (the rows beside a
decided stripe holding its step in its columns and angles, their block scores agreeing)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.prep import robust_rows
from nsgen.prep.detect import detect_rows, halo
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.robust_angles import GROW_BLOCK
from nsgen.prep.robust_rows import grow_rows

from helpers import normalised

EDGES = np.arange(7) * 60   # 360 angles, 6 blocks, bins of one angle


def field(steps: list[float], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bin means ``(rows, 360, 40)`` of rows each holding a step ``steps[j]`` over angles
    100-250 in columns 20-21 (noise 0.002), and the mask of row 1's stripe there."""
    rng = np.random.default_rng(seed)
    xb = rng.normal(0, 0.002, (len(steps), 360, 40))
    for j, s in enumerate(steps):
        xb[j, 100:250, 20:22] += s
    m = np.zeros((360, len(steps), 40), np.uint8)
    m[100:250, 1, 20:22] = 1
    return xb, m


def scores(n_j: int, level: float) -> list[np.ndarray]:
    """decide_offsets' scores: block scores ``level`` in columns 20-21 of every row, rank
    consistency, row 1's candidate columns before the refinement."""
    zb = np.zeros((6, n_j, 40))
    zb[:, :, 20:22] = level
    pre = np.zeros((n_j, 40), bool)
    pre[1, 20:22] = True
    return [zb, zb.copy(), pre]


def rows_cols(m: np.ndarray) -> list[list[int]]:
    return [np.flatnonzero(m[:, j].any(axis=0)).tolist() for j in range(m.shape[1])]


def test_the_rows_beside_a_stripe_holding_its_step_are_widened_at_its_angles():
    """Rows 0 and 2 hold row 1's step (0.6 and 1.5 times its height): flagged in its columns
    at its angles, nowhere else; a row of 4 is not (row 3: only row 2's flag, which is a
    widening, could reach it)."""
    xb, m = field([0.006, 0.01, 0.015, 0.01])
    g = grow_rows(m.copy(), 0, xb, scores(4, 2.0), (0, 4), EDGES)
    assert rows_cols(g) == [[20, 21], [20, 21], [20, 21], []]
    assert np.array_equal(np.flatnonzero(g[:, 0, 20]), np.arange(100, 250))


@pytest.mark.parametrize("steps, level", [
    ([0.004, 0.01, 0.025], 2.0),         # a third of the step, two and a half times it
    ([-0.01, 0.01, 0.0], 2.0),           # the other sign, none
    ([0.01, 0.01, 0.01], GROW_BLOCK),    # the block scores do not agree enough
])
def test_a_row_without_the_same_step_is_not_widened(steps, level):
    xb, m = field(steps)
    g = grow_rows(m.copy(), 0, xb, scores(3, level), (0, 3), EDGES)
    assert rows_cols(g) == [[], [20, 21], []]


def test_no_widening_over_one_block_a_candidate_refine_dropped_a_flag_or_the_whole_scan():
    """A stripe over one angle block (a feature's turning point for the runs of blocks), a
    row whose own candidate the refinement dropped, a row flagged beside the columns, and
    a stripe at every angle are not widened into (nor is anything with one block)."""
    xb, m = field([0.01, 0.01, 0.01])
    one = np.zeros_like(m)
    one[120:180, 1, 20:22] = 1
    assert rows_cols(grow_rows(one, 0, xb, scores(3, 2.0), (0, 3), EDGES)) == [[], [20, 21], []]
    sc = scores(3, 2.0)
    sc[2][0, 21] = True
    assert rows_cols(grow_rows(m.copy(), 0, xb, sc, (0, 3), EDGES)) == [[], [20, 21], [20, 21]]
    near = m.copy()
    near[:, 2, 22] = 1
    assert rows_cols(grow_rows(near, 0, xb, scores(3, 2.0), (0, 3), EDGES)) == [
        [20, 21], [20, 21], [22]]
    whole = m.copy()
    whole[:, 1, 20:22] = 1
    assert rows_cols(grow_rows(whole, 0, xb, scores(3, 2.0), (0, 3), EDGES)) == [
        [], [20, 21], []]
    assert rows_cols(grow_rows(m.copy(), 0, xb, [], (0, 3), EDGES)) == [[], [20, 21], []]


def test_a_step_that_spreads_into_the_columns_beside_is_not_widened_into():
    """Row 0 holds the step in columns 19-22 (a sample feature spreads beyond the stripe's
    columns; a gain change stays in its own): not widened into, row 2 is."""
    xb, m = field([0.01, 0.01, 0.01])
    xb[0, 100:250, [19, 22]] += 0.01
    g = grow_rows(m.copy(), 0, xb, scores(3, 2.0), (0, 3), EDGES)
    assert rows_cols(g) == [[], [20, 21], [20, 21]]


def test_only_the_rows_asked_for_are_returned_and_read_from_their_neighbours():
    """``rows`` inside the held rows: a view of them, widened from the held rows beside."""
    xb, m = field([0.01, 0.01, 0.01, 0.01])
    g = grow_rows(m.copy(), 10, xb, scores(4, 2.0), (12, 14), EDGES)
    assert g.shape == (360, 2, 40) and rows_cols(g) == [[20, 21], []]


@pytest.fixture(scope="module")
def labelled_small(tmp_path_factory):
    """A labelled scan 360 x 40 x 96 whose decision widens rows (seed 5, i0 4000: row 8
    beside a flagged stripe over part of the scan): ``(path, normalised volume, its robust
    mask, flags the widening added to it)``."""
    path = tmp_path_factory.mktemp("rows") / "s5.nxs"
    write_scan(path, n_angles=360, n_rows=40, n_columns=96, seed=5, i0=4000.0, labelled=True)
    x = normalised(path)
    added = []
    grow = robust_rows.grow_rows

    def spy(m, s, xb, sc, rows, edges, bins=None):
        before = m[:, rows[0] - s:rows[1] - s].sum()
        out = grow(m, s, xb, sc, rows, edges, bins)
        added.append(int(out.sum() - before))
        return out
    mp = pytest.MonkeyPatch()
    mp.setattr(robust_rows, "grow_rows", spy)
    try:
        whole = detect_rows(x, 0, (0, 40), 40, "robust", DetectParams.for_scan(x.shape))
    finally:
        mp.undo()
    return path, x, whole, sum(added)


def test_chunked_masks_with_widened_rows_equal_the_whole(labelled_small):
    """Row chunks with the detector's halo give the whole volume's mask, which holds
    widened rows (the widening added flags to it)."""
    _, x, whole, added = labelled_small
    assert added > 0
    p = DetectParams.for_scan(x.shape)
    h = halo("robust", p, 40)
    parts = [detect_rows(x[:, max(0, a - h):min(40, a + 20 + h)], max(0, a - h),
                         (a, min(40, a + 20)), 40, "robust", p) for a in (0, 20)]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_the_passes_over_a_scan_with_widened_rows_equal_the_library(labelled_small,
                                                                    tmp_path):
    """``nsgen mask`` in row chunks of 3 (each decided with a row more each side, the
    second decision's rows too) writes the library's mask, widened rows and all."""
    from nsgen import mask as mask_command
    from nsgen.modes.real import bad_pixels_of
    from nsgen.scan import ScanLayout
    from nsgen.stages.scan_source import ScanSource
    path, _, whole, _ = labelled_small
    archive = tmp_path / "m.npz"
    assert mask_command.main(["--h5", str(path), "-a", str(archive), "-C", "3"]) == 0
    want = whole | bad_pixels_of(ScanSource(str(path), ScanLayout())).mask[None]
    with np.load(archive) as z:
        assert np.array_equal(z["ms5"], want)
