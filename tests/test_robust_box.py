"""Box sums of faint partial stripes over several rows and columns (nsgen.prep.robust_box)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_defects import KINDS, read_truth
from nsgen.io.scan_writer import write_scan
from nsgen.prep import robust_box
from nsgen.prep.detect import detect_rows, halo
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.robust_box import box_runs, box_scores
from nsgen.prep.stripe_detect import rows_to_read

from helpers import normalised


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


def test_a_faint_partial_stripe_over_four_rows_is_found_by_its_box(scan_s9, monkeypatch):
    """Labelled scan 361 x 32 x 256, i0 4000, seed 9: a 2.8 % partial stripe over rows
    28-31 (the volume's end), columns 170-173, angles 39-252 scores 1-3.3 per value and
    angle block (5 of its 16 values per block above the block rectangles' floor): its
    boxes reach 8-10 over runs of blocks and row 29 is found in its columns, at its
    angles, and not without the box rule."""
    path, p = scan_s9
    truth = read_truth(path)[:, 29] == KINDS.index("partial") + 1
    assert np.flatnonzero(truth.any(axis=0)).tolist() == [170, 171, 172, 173]
    x, lo = _read(path, p, 29, 30)
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
    for shape in [(1, 1), (5, 7), (14, 300)]:
        for x in (rng.normal(size=shape), (rng.random(shape) > 0.5).astype(float),
                  rng.normal(size=shape) * 1e8 + rng.normal(size=shape)):
            want = np.zeros((shape[0] + 1, shape[1] + 1))
            want[1:, 1:] = x.cumsum(axis=0).cumsum(axis=1)
            got = np.full_like(want, np.nan)
            bj.prefix_sums(x, np.empty(shape[1]), got)
            assert got.tobytes() == want.tobytes(), shape


def _reference(q: np.ndarray, z: np.ndarray, cons: np.ndarray, q_start: int,
               rows: tuple[int, int], hd: int, n_rows_total: int) -> np.ndarray:
    """:func:`box_scores` the exhaustive way (the sixteenth round's NumPy formulation):
    every box of every row and column start tested on the windows' prefix sums
    (NumPy's ``cumsum``), no shortcut."""
    start, stop = rows
    n_j, n_i = z.shape
    reach = min(robust_box.BOX_ROWS - 1, hd - 1)
    best = np.zeros(z.shape)
    if reach < 1 or n_j == 0:
        return best
    qv = q[:, :n_i]
    own = qv[start - q_start:stop - q_start]
    inv = np.where(own != 0, z / np.where(own != 0, own, 1.0), 0.0)
    dr = np.arange(-reach - 1, reach + 2)
    src = np.arange(start, stop)[:, None] + dr[None, :]
    r_in = (src >= 0) & (src < n_rows_total)
    srcq = np.clip(src, 0, n_rows_total - 1) - q_start
    win = qv[srcq] * inv[:, None, :] * r_in[:, :, None]

    def sums(v: np.ndarray) -> np.ndarray:
        out = np.zeros((v.shape[0], v.shape[1] + 1, v.shape[2] + 1))
        out[:, 1:, 1:] = v.cumsum(axis=1).cumsum(axis=2)
        return out

    def padded(v: np.ndarray) -> np.ndarray:
        out = np.zeros(v.shape[:2] + (n_i + 2,))
        out[:, :, 1:-1] = v
        return out

    s_in = sums(padded(np.broadcast_to(r_in[:, :, None], win.shape)).astype(float))
    s_cons = sums(padded((robust_box.CONSISTENCY < cons[srcq]) & r_in[:, :, None]))
    for sign in (1.0, -1.0):
        pad = padded(sign * win)
        s_val, s_raw = sums(np.minimum(pad, robust_box.BOX_CAP)), sums(pad)
        s_pos = sums(padded((sign * win > 0) & r_in[:, :, None]))
        cand = np.zeros(z.shape)
        for top, h, w in robust_box._boxes(reach):
            a, n, nx = top + 1, h * w, n_i - w + 1

            def box(s: np.ndarray, r0: int, r1: int, u: int, v: int,
                    nx: int = nx) -> np.ndarray:
                """Sums of rows r0 .. r1 - 1, columns x + u .. x + v - 1, every x."""
                c0, c1 = slice(1 + u, 1 + u + nx), slice(1 + v, 1 + v + nx)
                return s[:, r1, c1] - s[:, r0, c1] - s[:, r1, c0] + s[:, r0, c0]

            if nx < 1:
                continue
            ok = ((box(s_pos, a, a + h, 0, w) == n) & (box(s_in, a, a + h, 0, w) == n)
                  & ~(box(s_cons, a, a + h, 0, w) < robust_box.BOX_CONS * n))
            tot = box(s_val, a, a + h, 0, w)
            mean = tot / n
            for r in range(a, a + h):
                ok &= ~(box(s_val, r, r + 1, 0, w) < robust_box.BOX_EVEN * mean * w)
            for c in range(w):
                ok &= ~(box(s_val, a, a + h, c, c + 1) < robust_box.BOX_EVEN * mean * h)
            for r0, r1, u, v in ((a - 1, a, 0, w), (a + h, a + h + 1, 0, w), (a, a + h, -1, 0),
                                 (a, a + h, w, w + 1)):
                m = box(s_in, r0, r1, u, v)
                ok &= (m == 0) | (box(s_raw, r0, r1, u, v)
                                  < robust_box.BOX_OUT * mean * np.maximum(m, 1.0))
            sc = np.where(ok, tot / np.sqrt(n), 0.0)
            for dx in range(w):
                cand[:, dx:dx + nx] = np.fmax(cand[:, dx:dx + nx], sc)
        best = np.where(cand > np.abs(best), sign * cand, best)
    return best


def _random_case(rng: np.random.Generator, n_cols: tuple[int, int] = (1, 40),
                 n_rows: tuple[int, int] = (3, 20)) -> tuple:
    """Offsets of noise, with faint boxes of both signs, zeros and values beyond BOX_CAP,
    random ranks; a random volume (its ends in or out of the compared rows), ``n_cols``
    columns and ``n_rows`` rows (ranges)."""
    n_total = int(rng.integers(*n_rows))
    hd = int(rng.integers(1, 9))
    start = int(rng.integers(0, n_total))
    stop = int(rng.integers(start + 1, n_total + 1))
    q_start, q_stop = max(0, start - hd), min(n_total, stop + hd)
    n_i = int(rng.integers(*n_cols))
    q = np.empty((q_stop - q_start, n_i + 1))
    q[:, -1] = rng.uniform(0.5, 2.0)
    q[:, :-1] = rng.normal(0.0, rng.uniform(0.3, 1.5), (q.shape[0], n_i))
    for _ in range(int(rng.integers(0, 4))):
        r0, c0 = rng.integers(0, q.shape[0]), rng.integers(0, n_i)
        q[r0:r0 + rng.integers(1, 8), c0:c0 + rng.integers(1, 7)] += rng.choice([-1, 1]) * (
            rng.uniform(0.5, 6.0))
    q[:, :-1][rng.random((q.shape[0], n_i)) < 0.03] = 0.0
    cons = rng.uniform(0.0, 6.0, (q.shape[0], n_i))
    z = q[start - q_start:stop - q_start, :-1] * rng.uniform(0.5, 2.0, (stop - start, n_i))
    return q, z, cons, q_start, (start, stop), hd, n_total


def test_box_scores_are_the_exhaustive_passs_bit_for_bit_on_random_fields():
    """The kernel's shortcuts (runs of one sign, the bound on a box's score, counts, the
    sign -1's raw sums negated) skip only what decides nothing: the scores equal the
    exhaustive NumPy pass's bit for bit, on random offsets with faint boxes."""
    rng = np.random.default_rng(17)
    scored = 0
    for _ in range(70):
        args = _random_case(rng)
        got = box_scores(*args)
        assert got.tobytes() == _reference(*args).tobytes(), args[3:]
        scored += int((got != 0).any())
    assert scored > 25           # (boxes of both signs scored in many of them)


def test_box_scores_across_the_kernels_column_tiles_are_the_exhaustive_passs():
    """Rows wider than the kernel's column tile (its prefix sums and boxes built
    ``tile`` columns at a time, the boxes of a tile's last columns with the next tile):
    the scores equal the exhaustive NumPy pass's bit for bit, boxes across the tiles'
    edges included."""
    TILE = 64
    rng = np.random.default_rng(29)
    edges = 0
    for _ in range(12):
        q, z, cons, q_start, rows, hd, n_total = _random_case(
            rng, (2 * TILE - 20, 2 * TILE + 30), (4, 9))
        for edge in (TILE, 2 * TILE):   # faint boxes over the tiles' edges
            q[:, edge - int(rng.integers(1, 6)):edge + int(rng.integers(0, 4))] += 1.5
        # ... and 5 wide (the widest) ending at the edge, the column beside it half as
        # strong (not standing out) in some rows: its test reads the next tile's sums
        r0 = int(rng.integers(0, q.shape[0] - 3))
        q[r0:r0 + 3, TILE - 5:TILE] = 2.0
        q[r0:r0 + 3, TILE] = rng.choice([0.0, 1.0], 3)
        z = q[rows[0] - q_start:rows[1] - q_start, :-1].copy()
        got = box_scores(q, z, cons, q_start, rows, hd, n_total, tile=TILE)
        assert got.tobytes() == _reference(q, z, cons, q_start, rows, hd,
                                           n_total).tobytes()
        assert got.tobytes() == box_scores(q, z, cons, q_start, rows, hd, n_total).tobytes()
        edges += int((got[:, TILE - 6:TILE + 6] != 0).any())
    assert edges >= 4


@pytest.fixture(scope="module")
def scan_s9(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Labelled scan 361 x 32 x 256, i0 4000, seed 9, read per test."""
    path = tmp_path_factory.mktemp("box") / "s9.nxs"
    write_scan(path, n_angles=361, n_rows=32, n_columns=256, seed=9, i0=4000.0,
               labelled=True)
    return path, DetectParams.for_scan((361, 32, 256))


def _read(path, p, start: int, stop: int) -> tuple[np.ndarray, int]:
    lo, hi = rows_to_read(start, stop, 32, halo("robust", p, 32))
    return normalised(path, (lo, hi)), lo


def test_box_scores_on_a_labelled_scan_are_the_exhaustive_passs(scan_s9, monkeypatch):
    """Every angle block's box scores of rows 26-32 of the labelled 361x32x256 i0 4000
    seed 9 scan (its faint 4-row stripe, sample features) equal the exhaustive pass's
    bit for bit."""
    path, p = scan_s9
    x, lo = _read(path, p, 26, 32)
    seen = []

    def check(*args):
        got = box_scores(*args)
        assert got.tobytes() == _reference(*args).tobytes()
        seen.append(int((got != 0).sum()))
        return got

    monkeypatch.setattr(robust_box, "box_scores", check)
    detect_rows(x, lo, (26, 32), 32, "robust", p)
    assert len(seen) >= 6 and sum(seen) > 100
