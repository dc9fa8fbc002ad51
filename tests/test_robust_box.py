"""Box sums of faint partial stripes over several rows and columns (nsgen.prep.robust_box)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_defects import KINDS, read_truth
from nsgen.io.scan_writer import write_scan
from nsgen.prep import robust_box
from nsgen.prep.detect import detect_rows, halo
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.robust_box import box_runs, box_scores
from nsgen.prep.stripe_detect import rows_to_read
from nsgen.scan import open_scan


def _field(n_rows: int = 12, n_cols: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(rows, columns + 1)`` of zero (robust scale 1 last) and consistent ranks."""
    q = np.zeros((n_rows, n_cols + 1))
    q[:, -1] = 1.0
    return q, np.full((n_rows, n_cols), 5.0)


def test_a_faint_box_adds_up_and_the_sample_around_it_does_not():
    """A box of 4 x 4 values at 1.5 each (below every per-value floor) scores 6 in each of
    its rows and columns and nowhere else; the same values spread into the rows just
    outside it or the columns beside it (a sample feature wider than a detector defect),
    held by one strong row, of mixed sign or with ranks that disagree score nothing."""
    q, cons = _field()
    q[4:8, 6:10] = 1.5
    r = box_scores(q, q[:, :-1].copy(), cons, 0, (0, 12), 6, 12)
    assert np.allclose(r[4:8, 6:10], 6.0) and not r[:4].any() and not r[8:].any()
    assert not r[:, :6].any() and not r[:, 10:].any()
    for wider in ((slice(0, 12), slice(6, 10)), (slice(4, 8), slice(0, 16))):
        q2 = q.copy()
        q2[wider] = 1.5
        assert not box_scores(q2, q2[:, :-1].copy(), cons, 0, (0, 12), 6, 12)[5, 8]
    q3 = q.copy()
    q3[4:8, 6:10] = 0.2
    q3[5, 6:10] = 9.0                       # one strong row carries the sum
    assert not box_scores(q3, q3[:, :-1].copy(), cons, 0, (0, 12), 6, 12)[4, 8]
    q4 = q.copy()
    q4[6, 8] = -0.5                         # one value of the other sign
    assert box_scores(q4, q4[:, :-1].copy(), cons, 0, (0, 12), 6, 12)[6, 8] < 6.0
    assert not box_scores(q, q[:, :-1].copy(), cons / 5, 0, (0, 12), 6, 12).any()


def test_box_runs_keep_one_run_per_value_and_only_steps():
    """Two runs of boxes over the same values, blocks 0-1 (0.9 per value) and 3-4 (2.0):
    each value keeps the stronger run's blocks only (runs may cover every block, which
    refine would not test). The same box at 1.5 in blocks 0-3 and 1.0 in block 4 is an
    offset nearly constant over the angles, no step: no run."""
    q, cons = _field()
    qs = np.stack([q] * 6, axis=1)          # 5 blocks + the whole scan
    qs[4:8, :2, 6:10] = 0.9
    qs[4:8, 3:5, 6:10] = 2.0
    zb = [qs[:, b, :-1].copy() for b in range(5)]
    cs = np.stack([cons] * 6, axis=1)
    r = box_runs(qs, zb, cs, 0, (0, 12), 6, 12)
    assert np.allclose(r[3:, 4:8, 6:10], 8 * 2 / np.sqrt(2)) and not r[:3].any()
    qs[4:8, :4, 6:10] = 1.5
    qs[4:8, 4, 6:10] = 1.0
    zb = [qs[:, b, :-1].copy() for b in range(5)]
    assert not box_runs(qs, zb, cs, 0, (0, 12), 6, 12).any()


def test_a_faint_partial_stripe_over_four_rows_is_found_by_its_box(tmp_path, monkeypatch):
    """Labelled scan 361 x 32 x 256, i0 4000, seed 9: a 2.8 % partial stripe over rows
    28-31 (the volume's end), columns 170-173, angles 39-252 scores 1-3.3 per value and
    angle block (5 of its 16 values per block above the block rectangles' floor): its
    boxes reach 8-10 over runs of blocks and row 29 is found in its columns, at its
    angles, and not without the box rule."""
    path = tmp_path / "s9.nxs"
    write_scan(path, n_angles=361, n_rows=32, n_columns=256, seed=9, i0=4000.0,
               labelled=True)
    truth = read_truth(path)[:, 29] == KINDS.index("partial") + 1
    assert np.flatnonzero(truth.any(axis=0)).tolist() == [170, 171, 172, 173]
    p = DetectParams.for_scan((361, 32, 256))
    lo, hi = rows_to_read(29, 30, 32, halo("robust", p, 32))
    with open_scan(str(path)) as s:
        rows = slice(lo, hi)
        x = flat_field_log(s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows),
                           sinograms_first=False)
    m = detect_rows(x, lo, (29, 30), 32, "robust", p).astype(bool)[:, 0]
    assert set(np.flatnonzero(m.any(axis=0)).tolist()) == {170, 171, 172, 173}
    on = m[:, 170:174].all(axis=1)
    ang = np.flatnonzero(truth.any(axis=1))
    assert on[ang].mean() > 0.9 and on[~truth.any(axis=1)].mean() < 0.05
    monkeypatch.setattr(robust_box, "BOX_BAR", np.inf)
    assert not detect_rows(x, lo, (29, 30), 32, "robust", p)[:, 0, 170:174].any()


@pytest.mark.parametrize("n_rows", [1, 2])
def test_too_few_rows_for_a_box(n_rows: int):
    """A box needs 2 rows and a row just outside them within the compared rows: none in a
    volume of 1-2 rows (hd 0-1)."""
    q, cons = _field(n_rows)
    q[:, 3:6] = 3.0
    assert not box_scores(q, q[:, :-1].copy(), cons, 0, (0, n_rows), n_rows - 1, n_rows).any()


def test_prefix_sums_are_numpys_cumulative_sums_bit_for_bit():
    from nsgen.prep import _robust_box_jit as bj
    rng = np.random.default_rng(3)
    for shape in [(2, 1, 1), (3, 5, 7), (2, 14, 300)]:
        for x in (rng.normal(size=shape), (rng.random(shape) > 0.5).astype(float),
                  rng.normal(size=shape) * 1e8 + rng.normal(size=shape)):
            want = np.zeros((shape[0], shape[1] + 1, shape[2] + 1))
            want[:, 1:, 1:] = x.cumsum(axis=1).cumsum(axis=2)
            got = np.full_like(want, np.nan)
            bj.prefix_sums(x, got)
            assert got.tobytes() == want.tobytes(), shape
