"""The compiled rectangles of the robust decision (nsgen.prep.robust_pool.pool_rect,
nsgen.prep._robust_decide_jit.pool_rect) against the NumPy formulation they replace."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.prep import robust_pool
from nsgen.prep.detect import detect_rows
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.robust_pool import (POOL_WIDTH, RECT_FLOOR, RECT_MIN, ROW_POOL_CAP,
                                    ROW_POOL_FLOOR, ROW_POOL_REACH, pool_rect, rectangles)
from nsgen.prep.robust_tall import CONSISTENCY

from helpers import normalised


def _reference(q: np.ndarray, z: np.ndarray, cons: np.ndarray, q_start: int,
               rows: tuple[int, int], hd: int, n_rows_total: int,
               strong: float = ROW_POOL_FLOOR, only: np.ndarray | None = None,
               share: float = 1.0) -> np.ndarray:
    """:func:`pool_rect` as NumPy computed it before the kernel (the twentieth round's
    code): every candidate's window, prefix sums by ``cumsum`` and rectangles at once."""
    reach = min(ROW_POOL_REACH, hd)
    start, stop = rows
    best = z.copy()
    n_i = z.shape[1]
    ok_own = (np.abs(z) > RECT_FLOOR) & ((np.abs(z) > strong)
                                         | (cons[start - q_start:stop - q_start] > CONSISTENCY))
    j, c = np.nonzero(ok_own if only is None else ok_own & only)
    if reach < 1 or j.size == 0:
        return best
    half = POOL_WIDTH - 1
    dc = np.arange(-half, half + 1)
    dr = np.arange(-reach, reach + 1)
    cols = c[:, None] + dc[None, :]
    c_in = (cols >= 0) & (cols < n_i)
    cols = np.clip(cols, 0, n_i - 1)
    q_row = q[j[:, None] + start - q_start, cols]
    z_row = z[j[:, None], cols]
    safe = np.where(q_row != 0, q_row, 1.0)
    inv = np.where((q_row != 0) & c_in, z_row / safe, 0.0)
    src = j[:, None] + start + dr[None, :]
    r_in = (src >= 0) & (src < n_rows_total)
    src = np.clip(src, 0, n_rows_total - 1)[:, :, None] - q_start
    win = q[src, cols[:, None, :]] * inv[:, None, :] * r_in[:, :, None]
    agree = cons[src, cols[:, None, :]] > CONSISTENCY
    cap = ROW_POOL_CAP * np.abs(z[j, c])[:, None, None]
    sign = np.sign(z[j, c])[:, None, None]
    v = sign * win
    s = np.where((v > RECT_FLOOR) & (v <= cap) & ((v > strong) | agree), v, 0.0)
    k = np.flatnonzero(np.count_nonzero(s, axis=(1, 2)) >= RECT_MIN)
    if k.size == 0:
        return best
    s = s[k]
    n_r, n_c = 2 * reach + 1, 2 * half + 1
    cs = np.zeros((k.size, n_r + 1, n_c + 1))
    cs[:, 1:, 1:] = s.cumsum(axis=1).cumsum(axis=2)
    cn = np.zeros((k.size, n_r + 1, n_c + 1))
    cn[:, 1:, 1:] = (s > 0).cumsum(axis=1).cumsum(axis=2)
    top = np.abs(z[j[k], c[k]])
    corners, size = rectangles(reach)
    root = np.sqrt(size)
    t, m = cs.reshape(k.size, -1), cn.reshape(k.size, -1)
    tot = t[:, corners[3]] - t[:, corners[1]] - t[:, corners[2]] + t[:, corners[0]]
    cnt = m[:, corners[3]] - m[:, corners[1]] - m[:, corners[2]] + m[:, corners[0]]
    sc = np.where(cnt >= np.maximum(share * size, RECT_MIN), tot / root, 0.0)
    np.maximum(top, sc.max(axis=1), out=top)
    best[j[k], c[k]] = sign[k, 0, 0] * top
    return best


def _random_case(rng: np.random.Generator) -> tuple:
    """Offsets of one angle set among 3 (views, as the decision passes them): noise with
    faint rectangles of both signs, zeros and strong values; random ranks; a random
    volume whose ends may be within the window."""
    n_total = int(rng.integers(3, 30))
    hd = int(rng.integers(1, 10))
    start = int(rng.integers(0, n_total))
    stop = int(rng.integers(start + 1, n_total + 1))
    q_start, q_stop = max(0, start - hd), min(n_total, stop + hd)
    n_i = int(rng.integers(1, 60))
    qs = np.empty((q_stop - q_start, 3, n_i + 1))
    qs[..., -1] = rng.uniform(0.5, 2.0)
    qs[..., :-1] = rng.normal(0.0, rng.uniform(0.5, 2.0), (qs.shape[0], 3, n_i))
    q = qs[:, 1]
    for _ in range(int(rng.integers(0, 5))):
        r0, c0 = rng.integers(0, q.shape[0]), rng.integers(0, n_i)
        q[r0:r0 + rng.integers(1, 9), c0:c0 + rng.integers(1, 6)] += rng.choice([-1, 1]) * (
            rng.uniform(1.0, 5.0))
    q[:, :-1][rng.random((q.shape[0], n_i)) < 0.03] = 0.0
    q[:, :-1][rng.random((q.shape[0], n_i)) < 0.02] *= 8.0
    cons = rng.uniform(0.0, 6.0, (q.shape[0], 3, n_i))[:, 1]
    z = q[start - q_start:stop - q_start, :-1] * rng.uniform(0.5, 2.0, (stop - start, n_i))
    return q, z, cons, q_start, (start, stop), hd, n_total


@pytest.mark.parametrize("kind", ["whole", "blocks"])
def test_pool_rect_is_the_numpy_formulations_bit_for_bit(kind: str):
    """On random fields (rectangles of both signs, zeros, values beyond the cap, the
    volume's ends, views of a set among others): the whole scan's rectangles and the
    blocks' (every value counted, a share of the rectangle's, some values only) equal
    the NumPy formulation's bit for bit."""
    rng = np.random.default_rng(41 if kind == "whole" else 43)
    pooled = 0
    for _ in range(120):
        args = _random_case(rng)
        kw = {} if kind == "whole" else {
            "strong": np.inf, "share": float(rng.choice([1.0, 0.75, 0.5])),
            "only": rng.random(args[1].shape) < 0.7}
        got = pool_rect(*args, **kw)
        want = _reference(*args, **kw)
        assert got.tobytes() == want.tobytes(), args[3:]
        pooled += int((got != args[1]).any())
    assert pooled > 30


def test_pool_rect_on_a_labelled_scan_is_the_numpy_formulations(tmp_path, monkeypatch):
    """Every call of the decision of rows 8-24 of a labelled scan (361 x 32 x 256, i0
    4000, seed 9: partial stripes, sample features) equals the NumPy formulation's."""
    path = tmp_path / "s9.nxs"
    write_scan(path, n_angles=361, n_rows=32, n_columns=256, seed=9, i0=4000.0,
               labelled=True)
    p = DetectParams.for_scan((361, 32, 256))
    x = normalised(path)
    seen = []
    kernel = robust_pool.pool_rect

    def check(*args, **kw):
        got = kernel(*args, **kw)
        assert got.tobytes() == _reference(*args, **kw).tobytes()
        seen.append(int((got != args[1]).sum()))
        return got

    monkeypatch.setattr(robust_pool, "pool_rect", check)
    detect_rows(x, 0, (8, 24), 32, "robust", p)
    assert len(seen) >= 4 and sum(seen) > 50
