"""nsgen.prep.robust_mass: mass conservation over angles as a confirmation of faint partial
stripes (the M0 trace, its common mode, the spread guard, the four rules) and its wiring
(chunked decisions given the volume's traces, ``nsgen mask``)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.modes.real import bad_pixels_of
from nsgen.prep import robust_features, robust_mass, stripe_robust
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.robust_features import feature_layout
from nsgen.prep.robust_mass import candidates, confirm, mass_trace, row_mass, volume_mass
from nsgen.scan import ScanLayout, open_scan
from nsgen.stages.robust import chunk_mass
from nsgen.stages.scan_source import ScanSource

from helpers import normalised

N_K, N_J, N_I = 360, 10, 64
EDGES = np.arange(0, N_K + 1, 60)                 # 6 angle blocks
BINS = np.arange(0, N_K + 1, 5)                   # 72 bins of 5 angles (12 per block)
GAIN = np.log(1.06)


def sample(n_rows: int = N_J, seed: int = 0) -> np.ndarray:
    """``-log`` sinograms ``(angles, rows, columns)`` of a Gaussian blob moving across the
    columns (its sum over the columns, its mass, is the same at every angle), a different
    height per row, with faint noise."""
    theta = np.arange(N_K) * np.pi / N_K
    centre = 32 + 14 * np.sin(2 * theta)
    cols = np.arange(N_I)
    blob = np.exp(-0.5 * ((cols[None] - centre[:, None]) / 4.0) ** 2)
    height = 0.5 + 0.1 * np.arange(n_rows)
    x = blob[:, None, :] * height[None, :, None]
    return x + np.random.default_rng(seed).normal(0, 1e-5, x.shape)


def test_a_partial_gain_step_shifts_the_trace_by_w_log_g_over_exactly_its_angles():
    """A gain ``g`` on 3 pixels of row 4 over angles 60-179 lowers ``-log`` by ``log g``
    there: the row's trace is ``-3 log g`` in exactly those angles' bins, 0 elsewhere, and
    every other row's is 0 (the sample's mass is conserved)."""
    x = sample()
    x[60:180, 4, 40:43] -= GAIN
    t = mass_trace(row_mass(robust_features.bin_means(x.astype(np.float32))))
    assert t.shape == (N_J, N_K + 1)              # (bins of one angle at 360 angles)
    inside = np.zeros(N_K, bool)
    inside[60:180] = True
    assert np.allclose(t[4, :N_K][inside], -3 * GAIN, atol=1e-3)
    assert np.allclose(t[4, :N_K][~inside], 0.0, atol=1e-3)
    assert np.allclose(np.delete(t, 4, axis=0)[:, :N_K], 0.0, atol=1e-3)


def test_the_common_mode_is_removed():
    """A beam drift between flats and projections (every pixel of an angle shifted alike)
    moves every row's ``M0`` by 64 times it; the traces are the same with and without it
    (but for a constant per row: the step's row's median over the bins moves with the
    drift's values; a constant changes no box's z or step)."""
    x = sample()
    x[60:180, 4, 40:43] -= GAIN
    drift = 0.02 * np.sin(np.arange(N_K) / 30.0)
    m_plain = row_mass(robust_features.bin_means(x.astype(np.float32)))
    m_drift = row_mass(robust_features.bin_means((x + drift[:, None, None]).astype(np.float32)))
    assert np.ptp(m_drift[0] - m_plain[0]) > 1.5        # 64 x the drift's range
    t_drift, t_plain = mass_trace(m_drift)[:, :N_K], mass_trace(m_plain)[:, :N_K]
    assert np.allclose(t_drift - t_drift.mean(axis=1, keepdims=True),
                       t_plain - t_plain.mean(axis=1, keepdims=True), atol=1e-3)
    assert abs(t_plain[4, 60:180].mean() - t_plain[4, 180:].mean() + 3 * GAIN) < 1e-3


def test_constant_columns_are_interpolated_before_the_sum():
    """A dead column (constant) hides the sample as it passes: the plain sum over the
    columns dips there, the row's ``M0`` with the column interpolated from its neighbours
    does not."""
    x = sample()
    x[:, 2, 30] = 3.0                              # dead: constant over the angles
    xb = robust_features.bin_means(x.astype(np.float32))
    plain = xb[2].astype(np.float64).sum(axis=1)
    m0 = row_mass(xb)[2]
    assert np.ptp(plain) > 0.5
    assert np.ptp(m0) < 0.1 * np.ptp(plain)
    assert np.array_equal(row_mass(xb)[[0, 1, 3]], xb[[0, 1, 3]].astype(np.float64).sum(axis=2))


@pytest.mark.parametrize("dtype", ["<u2", "<f4"])
def test_the_raw_pass_gives_the_librarys_mass(tmp_path, dtype):
    """``nsgen mask``'s first pass (the bin means taken as the raw rows are ranked, integer
    or float counts, tile by tile) gives the ranks of the pass without them and the row
    masses of the normalised volume's bin means, bit for bit."""
    path = tmp_path / "s.nxs"
    write_scan(path, n_angles=360, n_rows=6, n_columns=64, seed=2, labelled=True)
    with open_scan(str(path)) as s:
        rows = slice(0, 6)
        raw, flat, dark = s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows)
    raw = raw.astype(dtype)
    x = flat_field_log(raw, flat, dark, sinograms_first=False)
    means = np.empty((6, feature_layout(360)[1], 64), np.float32)
    fields = robust_features.raw_feature_fields(raw, flat, dark, means)
    assert np.array_equal(means, robust_features.bin_means(x))
    assert chunk_mass(means).tobytes() == row_mass(robust_features.bin_means(x)).tobytes()
    for got, want in zip(fields, robust_features.raw_feature_fields(raw, flat, dark)):
        assert got.tobytes() == want.tobytes()


def _case(n_rows: int = N_J, seed: int = 1) -> tuple[np.ndarray, np.ndarray,
                                                      list[np.ndarray], np.ndarray]:
    """Row masses (noise), offsets, block scores and a mask of nothing, for :func:`confirm`
    (32 columns)."""
    m0 = np.random.default_rng(seed).normal(0, 0.002, (n_rows, 72))
    q = np.zeros((n_rows, 6, 33))
    z = [np.zeros((n_rows, 32)) for _ in range(6)]
    return m0, q, z, np.zeros((N_K, n_rows, 32), np.uint8)


def _candidate(q: np.ndarray, z: list[np.ndarray], row: int, cols: slice, blocks: range,
               offset: float = GAIN, score: float = 3.0) -> None:
    for b in blocks:
        q[row, b, cols] = offset
        z[b][row, cols] = score


def test_a_step_its_offsets_predict_is_confirmed_in_its_blocks_angles_and_columns():
    m0, q, z, out = _case()
    m0[3, :24] += 4 * GAIN                        # blocks 0-1
    _candidate(q, z, 3, slice(20, 24), range(2))
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == 1
    assert out[:120, 3, 20:24].all() and out.sum() == 120 * 4


@pytest.mark.parametrize("first, last", [(0, 149), (30, 119), (30, 149)])
def test_a_confirmed_boxs_angles_are_where_its_rows_trace_steps(first, last):
    """The box is flagged at the angles where the row's ``M0`` steps (within a block of its
    blocks), not at its blocks' angles: a gain change's step is in exactly its angles."""
    m0, q, z, out = _case()
    m0[3, first // 5:(last + 1) // 5] += 4 * GAIN
    _candidate(q, z, 3, slice(20, 24), range(2))
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == 1
    on = np.flatnonzero(out[:, 3, 20])
    assert (on[0], on[-1]) == (first, last) and on.size == last + 1 - first
    assert np.array_equal(out[:, 3, 20:24], np.repeat(out[:, 3, 20:21], 4, axis=1))


@pytest.mark.parametrize("offset, why", [(-GAIN, "sign"), (GAIN / 4, "measured 4x expected"),
                                         (3 * GAIN, "measured a third of expected")])
def test_a_step_of_the_wrong_sign_or_size_confirms_nothing(offset, why):
    m0, q, z, out = _case()
    m0[3, :24] += 4 * GAIN
    _candidate(q, z, 3, slice(20, 24), range(2), offset)
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == 0, why
    assert not out.any()


def test_no_step_confirms_nothing():
    m0, q, z, out = _case()
    _candidate(q, z, 3, slice(20, 24), range(2))
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == 0


def test_a_shift_of_every_row_confirms_nothing(monkeypatch):
    """The same shift in every row is the common mode (nothing left); shifts of every row
    that differ from row to row (an object leaving the field of view) leave the candidate's
    row a large z, but no larger than the other rows' spread on the box (the guard)."""
    m0, q, z, out = _case()
    _candidate(q, z, 3, slice(20, 24), range(2))
    same = m0.copy()
    same[:, :24] += 4 * GAIN
    assert confirm(out, q, z, mass_trace(same), (0, N_J), EDGES, BINS) == 0
    spread = m0.copy()
    spread[:, :24] += 4 * GAIN * np.linspace(-1, 1, N_J)[:, None]
    spread[3, :24] = m0[3, :24] + 4 * GAIN
    t = mass_trace(spread)
    assert 0.5 < (t[3, :24].mean() - t[3, 24:72].mean()) / (4 * GAIN) < 2.0
    assert confirm(out, q, z, t, (0, N_J), EDGES, BINS) == 0
    monkeypatch.setattr(robust_mass, "_MAD", 0.0)   # no guard: the row's own z passes
    assert confirm(out, q, z, t, (0, N_J), EDGES, BINS) == 1
    monkeypatch.undo()
    out[:] = 0
    alone = m0.copy()
    alone[3, :24] += 4 * GAIN                     # the same row's step, the others still
    assert confirm(out, q, z, mass_trace(alone), (0, N_J), EDGES, BINS) == 1


@pytest.mark.parametrize("cols, angles, confirmed", [
    (slice(5, 7), slice(0, 60), False),           # another stripe in the box's angles
    (slice(18, 19), slice(0, 60), True),          # beside the candidate: its own
    (slice(5, 7), slice(200, 260), True),         # another stripe, other angles
    (slice(5, 7), slice(0, N_K), False)])         # a flag over the whole scan in the row
def test_a_shift_explained_by_another_flag_of_the_row_is_left(cols, angles, confirmed):
    m0, q, z, out = _case()
    m0[3, :24] += 4 * GAIN
    _candidate(q, z, 3, slice(20, 24), range(2))
    out[angles, 3, cols] = 1
    before = out.copy()
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == int(confirmed)
    assert out[:120, 3, 20:24].all() == confirmed
    assert np.array_equal(out[:, 3, cols], before[:, 3, cols])


def test_one_step_one_candidate():
    """Two candidates of one row on one step, each predicting a size within the range:
    only the one of the stronger value score is flagged."""
    m0, q, z, out = _case()
    m0[3, :24] += 4 * GAIN
    _candidate(q, z, 3, slice(20, 24), range(2), score=3.5)          # 7.0 pooled
    _candidate(q, z, 3, slice(8, 11), range(1, 2), 1.3 * GAIN)       # 5.2 pooled
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == 1
    assert out[:120, 3, 20:24].all() and not out[:, 3, 8:11].any()
    out[:] = 0
    _candidate(q, z, 3, slice(20, 24), range(2), score=2.6)          # 5.2 pooled
    _candidate(q, z, 3, slice(8, 11), range(1, 2), 1.3 * GAIN, score=4.0)
    assert confirm(out, q, z, mass_trace(m0), (0, N_J), EDGES, BINS) == 1
    assert out[60:120, 3, 8:11].all() and not out[:, 3, 20:24].any()


def test_candidates_are_unflagged_runs_of_one_sign():
    z = np.array([[3.0, 3.0, 0.0, 2.6, -2.6, -2.6, 2.4, 4.0, 4.0, 4.0]])
    flagged = np.zeros(z.shape, bool)
    assert candidates(z, flagged).tolist() == [[1, 1, 0, 0, -1, -1, 0, 1, 1, 1]]
    flagged[0, 8] = True                           # splits the run: 4.0 and 4.0 alone
    assert candidates(z, flagged).tolist() == [[1, 1, 0, 0, -1, -1, 0, 1, 0, 1]]
    assert not candidates(np.full((2, 5), 2.4), np.zeros((2, 5), bool)).any()


@pytest.fixture(scope="module")
def seed8(tmp_path_factory):
    """The labelled scan 361 x 32 x 256 seed 8 i0 20000 (a 5.7 % partial stripe over rows
    1-4, columns 61-64, angles 0-143, that the value statistics miss in some of its rows;
    labelled benchmark, docs/detection.md), normalised."""
    path = tmp_path_factory.mktemp("mass") / "s8.nxs"
    write_scan(path, n_angles=361, n_rows=32, n_columns=256, seed=8, i0=20000.0,
               labelled=True)
    x = normalised(path)
    return path, x


def test_chunked_decisions_given_the_volumes_mass_equal_the_whole(seed8, monkeypatch):
    """The confirmation fires (rows 1-4) and the decisions of row chunks given the volume's
    traces equal the whole volume's; without them, the chunk's mask differs."""
    _, x = seed8
    fired = []
    original = robust_mass.confirm

    def counting(*args: object, **kwargs: object) -> int:
        n = original(*args, **kwargs)  # type: ignore[arg-type]
        fired.append(n)
        return n
    monkeypatch.setattr(stripe_robust._mass, "confirm", counting)
    feat = robust_features.row_features(x)
    mass = volume_mass(robust_features.split_features(feat, 361)[2])
    whole = stripe_robust.decide_twice(feat, 0, (0, 32), 32, 361, depth=8, mass=mass)
    assert sum(fired) > 0
    parts = [stripe_robust.decide_twice(feat, 0, rows, 32, 361, depth=8, mass=mass)
             for rows in ((0, 8), (8, 32))]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    alone = stripe_robust.decide_twice(feat, 0, (0, 8), 32, 361, depth=8)
    assert not np.array_equal(alone, whole[:, :8])
    assert set(np.flatnonzero((alone != whole[:, :8]).any(axis=(0, 2)))) <= {1, 2, 3, 4}


def test_nsgen_mask_holds_the_confirmed_whole_volume_mask(seed8, tmp_path):
    """``nsgen mask`` in row chunks of 5 (the traces from its first pass, every row's)
    writes the library's whole-volume mask, confirmations included."""
    from nsgen import mask as mask_command
    path, x = seed8
    archive = tmp_path / "m.npz"
    assert mask_command.main(["--h5", str(path), "-a", str(archive), "-C", "5",
                              "--workers", "1", "--min-stripe-depth", "8"]) == 0
    # (the library's whole-volume mask: detect_volume's, decide_twice on every row)
    feat = robust_features.row_features(x)
    want = stripe_robust.decide_twice(feat, 0, (0, 32), 32, 361, depth=8,
                                      mass=volume_mass(robust_features.split_features(feat, 361)[2]))
    want |= bad_pixels_of(ScanSource(str(path), ScanLayout())).mask[None]
    with np.load(archive) as z:
        assert np.array_equal(z["ms8"], want)


@pytest.mark.parametrize("spoil", [False, True])
def test_row_mass_of_float32_means_is_that_of_their_float64_values(spoil):
    """The first pass's float32 means take a shortcut (their extremes in float32, no
    non-finite values to zero): the same masses, bit for bit, as the float64 values give."""
    rng = np.random.default_rng(7)
    xb = rng.normal(1.0, 0.3, (5, 40, 300)).astype(np.float32)
    xb[1, :, [0, 17, 299]] = 0.25              # constant columns: interpolated
    xb[2, :, 40] += np.float32(1e-7)           # nearly constant: within CONSTANT
    xb[3, 5, 9] += np.float32(2e-6)            # a range just above it
    xb[2, :, 41] = np.float32(1e-3)            # ... and within 0.01 % of it
    xb[2, ::2, 41] = np.float32(1e-3 + 1.00003e-6)
    if spoil:
        xb[4, 3, 3] = np.nan
        xb[0, 0, 1] = np.inf
    assert row_mass(xb).tobytes() == row_mass(xb.astype(np.float64)).tobytes()
