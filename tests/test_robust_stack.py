"""nsgen.prep.robust_stack: the mass-conservation confirmation pooled over the adjacent rows
of one pixel block's stripe (linked candidates, the pooled z over the spread guard, the
step ratio, the rows' signs, the stack's height) and its wiring (chunked decisions given the
volume's traces, ``nsgen mask``)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.modes.real import bad_pixels_of
from nsgen.prep import robust_features, robust_mass, robust_stack, stripe_robust
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.robust_mass import mass_trace, volume_mass
from nsgen.prep.robust_stack import stack_flags
from nsgen.scan import ScanLayout, open_scan
from nsgen.stages.scan_source import ScanSource

EDGES = np.arange(0, 361, 60)    # 360 angles, 6 blocks
BINS = np.arange(0, 361, 5)      # bins of 5 angles
GAIN = np.log(1.06)


def _case(rows: range = range(3, 6), shift: float = 4 * GAIN, cand_rows: range | None = None,
          q_scale: float = 1.0, seed: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """The traces of 12 rows (noise 0.2 per bin) whose ``rows`` shift by ``shift`` over
    angles 0-119, and the decision's candidates: a 4-column candidate in block 0 of each of
    ``cand_rows`` (``rows``), its offsets ``q_scale`` times the gain."""
    m0 = np.random.default_rng(seed).normal(0, 0.2, (12, 72))
    m0[rows.start:rows.stop, :24] += shift
    cand_rows = rows if cand_rows is None else cand_rows
    cand = np.zeros((12, 6, 32), np.int8)
    q = np.zeros((12, 6, 33))
    cand[cand_rows.start:cand_rows.stop, 0, 20:24] = 1
    q[cand_rows.start:cand_rows.stop, 0, 20:24] = q_scale * GAIN
    return mass_trace(m0), [q, q, q, cand, q]


def _rows(flags: list[tuple[int, int, int, int, int]]) -> list[int]:
    return sorted({f[2] for f in flags})


def test_rows_each_under_the_bar_are_confirmed_together():
    """Each row's own box z (2.6-3.4) is under the per-row bar; the stack of the three
    reaches 5.1: flagged in its columns, from angle 0 on, in its rows only."""
    trace, scores = _case()
    w = np.diff(BINS).astype(float)
    centred = trace[:, :72] - (trace[:, :72] @ w / w.sum())[:, None]
    unit = trace[:, 72] * np.sqrt(w.mean()) * np.sqrt(60 * 300 / 360)
    z_own = (centred[:, :12] @ w[:12]) / unit
    assert np.all(np.abs(z_own[3:6]) < robust_mass.MASS_BAR)
    flags = stack_flags(np.zeros((360, 12, 32), np.uint8), 0, scores, trace, (0, 12), EDGES,
                        BINS)
    assert _rows(flags) == [3, 4, 5]
    assert {(f[3], f[4]) for f in flags} == {(20, 24)} and all(f[0] == 0 for f in flags)


@pytest.mark.parametrize("kw, why", [
    ({"q_scale": -1.0}, "the offsets of the other sign"),
    ({"q_scale": 3.0}, "the step a third of the offsets' prediction"),
    ({"q_scale": 0.4}, "the step 2.5 x the prediction"),
    ({"shift": 0.0}, "no step"),
    ({"cand_rows": range(4, 5)}, "one row's candidate: no stack"),
    ({"rows": range(2, 7)}, "a stack of 5 rows: taller than STACK_ROWS"),
])
def test_what_is_not_a_pixel_blocks_step_is_not_confirmed(kw, why):
    trace, scores = _case(**kw)
    assert stack_flags(np.zeros((360, 12, 32), np.uint8), 0, scores, trace, (0, 12), EDGES,
                       BINS) == [], why


def test_a_row_of_the_other_sign_breaks_the_stack():
    """The rows of one defect step alike: a row of the stack whose trace steps the other
    way (its own shift elsewhere) stops it, however strong the others."""
    trace, scores = _case(rows=range(3, 6), shift=8 * GAIN)
    trace[4, :24] -= 16 * GAIN
    assert stack_flags(np.zeros((360, 12, 32), np.uint8), 0, scores, trace, (0, 12), EDGES,
                       BINS) == []


def test_a_shift_of_every_row_is_not_confirmed():
    """An object leaving the field shifts every row: the spread guard (the other windows'
    pooled z on the same box) keeps it."""
    trace, scores = _case(rows=range(0, 12), cand_rows=range(3, 6), shift=4 * GAIN)
    m0 = np.random.default_rng(1).normal(0, 0.2, (12, 72))
    m0[:, :24] += np.linspace(0, 12 * GAIN, 12)[:, None]   # (every row, by a different step)
    assert stack_flags(np.zeros((360, 12, 32), np.uint8), 0, scores, mass_trace(m0), (0, 12),
                       EDGES, BINS) == []


def test_an_explained_row_is_left_out_of_the_stack():
    """A row whose box holds another stripe's flag at its angles gives no evidence: with
    two of the three rows explained, no stack is left."""
    trace, scores = _case()
    mask = np.zeros((360, 12, 32), np.uint8)
    mask[0:60, 3:5, 5:7] = 1
    assert stack_flags(mask, 0, scores, trace, (0, 12), EDGES, BINS) == []


def test_a_chunks_flags_are_the_whole_volumes():
    """The flags of rows 0-4 from the decided rows 0-8 (REACH rows beyond) equal those of
    the whole volume in those rows."""
    trace, scores = _case()
    mask = np.zeros((360, 12, 32), np.uint8)
    whole = stack_flags(mask, 0, scores, trace, (0, 12), EDGES, BINS)
    part = stack_flags(mask[:, :8], 0, [s[:8] for s in scores], trace, (0, 4), EDGES, BINS)
    assert part == [f for f in whole if f[2] < 4]


@pytest.fixture(scope="module")
def seed8_4000(tmp_path_factory):
    """The labelled scan 361 x 32 x 256 seed 8 i0 4000 (a 5.7 % partial stripe over rows
    1-4, columns 61-64, angles 0-143, each row's M0 shift under the per-row bar; labelled
    benchmark, docs/detection.md), normalised."""
    path = tmp_path_factory.mktemp("stack") / "s8.nxs"
    write_scan(path, n_angles=361, n_rows=32, n_columns=256, seed=8, i0=4000.0,
               labelled=True)
    with open_scan(str(path)) as s:
        rows = slice(0, 32)
        x = flat_field_log(s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows),
                           sinograms_first=False)
    return path, x


def test_the_labelled_stack_is_found_and_chunked_decisions_equal_the_whole(seed8_4000,
                                                                            monkeypatch):
    """The stack confirms rows 1-4 in columns 61-64 (none without it: ``STACK_BAR``
    infinite), and the decisions of row chunks given the volume's traces equal the whole
    volume's."""
    _, x = seed8_4000
    feat = robust_features.row_features(x)
    mass = volume_mass(robust_features.split_features(feat, 361)[2])
    whole = stripe_robust.decide_twice(feat, 0, (0, 32), 32, 361, mass=mass)
    found = [j for j in range(32) if whole[:143, j, 61:65].any()]
    assert found == [1, 2, 3, 4]
    assert not whole[150:, 1:5, 61:65].any() and not whole[:, 1:5, 66:80].any()
    parts = [stripe_robust.decide_twice(feat, 0, rows, 32, 361, mass=mass)
             for rows in ((0, 3), (3, 32))]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    monkeypatch.setattr(robust_stack, "STACK_BAR", np.inf)
    none = stripe_robust.decide_twice(feat, 0, (0, 32), 32, 361, mass=mass)
    assert not none[:, 2:5, 61:65].any()


def test_nsgen_mask_holds_the_stacked_whole_volume_mask(seed8_4000, tmp_path):
    """``nsgen mask`` in row chunks of 8 writes the library's whole-volume mask, the
    stack's flags included."""
    from nsgen import mask as mask_command
    path, x = seed8_4000
    archive = tmp_path / "m.npz"
    assert mask_command.main(["--h5", str(path), "-a", str(archive), "-C", "8",
                              "--workers", "1"]) == 0
    feat = robust_features.row_features(x)
    want = stripe_robust.decide_twice(feat, 0, (0, 32), 32, 361,
                                      mass=volume_mass(robust_features.split_features(feat, 361)[2]))
    want |= bad_pixels_of(ScanSource(str(path), ScanLayout())).mask[None]
    assert want[:, 2:5, 61:65].any()
    with np.load(archive) as z:
        assert np.array_equal(z["ms8"], want)
