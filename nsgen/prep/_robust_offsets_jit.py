"""Compiled (Numba) kernels of the robust stripe detector's offsets (:mod:`nsgen.prep.stripe_robust`).

The offsets of the ranked rows (:mod:`nsgen.prep._robust_jit` ranks them): each row's ranks
minus, rank by rank, the median of up to 30 neighbouring rows, minus that median-filtered
across 17 columns, averaged over the ranks (:func:`row_offsets`, two or three rows at once:
:func:`row_offsets_pair`, :func:`row_offsets_group`); their spread over rows
(:func:`spread`) and robust scale (:func:`robust_scale`), and the strong columns of each row
alone (:func:`strong_columns`).

How: every median here is a sorting network applied across columns, as the sorts of
:mod:`nsgen.prep._robust_jit` (its :func:`~nsgen.prep._robust_jit.network`, applied by
:func:`~nsgen.prep._robust_jit._sort_rows`). Where it pays, the networks run in registers
(:mod:`nsgen.prep._robust_net`, planned in :mod:`nsgen.prep._robust_plan`): the per-rank
medians of 30 rows and the median across 17 columns as pruned selection networks, three
rows at a time (their windows share all but four values each; two for a chunk's last two
rows) or four columns at a time (windows sharing 14 values: their ranks 5-8 sorted once,
and each window's median from them and its own 3; the mirrored edges dealt in too).
Buffered networks remain for other counts. Loops over columns index with unsigned integers
where they must run as vector code (an ``int64`` index is checked for being negative, a
select LLVM keeps for a loop's counter: gathers or scalar code).

Exactness: a median of an even count is ``(a + b) / 2`` in the values' own precision, as
NumPy's ``median``; means over ranks add in rank order in float64, as NumPy's
``mean(axis=0, dtype=float64)``. The kernels give the same numbers as the NumPy/SciPy
formulation they replace (tested).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nsgen.prep import _robust_net as _net, _robust_plan as _plan
from nsgen.prep._jit import JIT as _JIT
from nsgen.prep._robust_jit import _sort_rows


@nb.njit(**_JIT)
def _median_sorted(buf, m, dst):  # pragma: no cover - compiled
    """``dst`` = the median of the first ``m`` (sorted) rows of ``buf``, per column; of an
    even count ``(a + b) / 2`` in ``buf``'s precision, as NumPy's ``median``."""
    w = dst.shape[0]
    if m % 2 == 1:
        mid = buf[m // 2]
        for t in range(w):
            dst[t] = mid[t]
    else:
        lo = buf[m // 2 - 1]
        hi = buf[m // 2]
        two = buf.dtype.type(2)
        for t in range(w):
            dst[t] = (lo[t] + hi[t]) / two


@nb.njit(**_JIT)
def _row_median(bg, r, pairs_o, rows, bo, med):  # pragma: no cover - compiled
    """``med`` = per column the median of ``bg[o, r]`` over the rows ``rows`` (``pairs_o``:
    their network, ``bo``: a buffer of their rows for more than
    :data:`~nsgen.prep._robust_plan.ROW_MEDIAN`)."""
    n_o = rows.shape[0]
    if n_o <= _plan.ROW_MEDIAN:
        _net.row_median(bg, _padded(rows), r, n_o % 2 == 1, med)
        return
    for m in range(n_o):
        src = bg[rows[m], r]
        dst = bo[m]
        for t in range(med.shape[0]):
            dst[t] = src[t]
    _sort_rows(bo, n_o, pairs_o, med.shape[0])
    _median_sorted(bo, n_o, med)


@nb.njit(**_JIT)
def _padded(rows):  # pragma: no cover - compiled
    """``rows`` padded to :data:`~nsgen.prep._robust_plan.ROW_MEDIAN` with -1 (a row of
    -inf) and -2 (+inf), as many of each (one more +inf for an odd count)."""
    n = _plan.ROW_MEDIAN
    out = np.empty(n, np.int64)
    n_lo = (n - rows.shape[0]) // 2
    for m in range(n):
        out[m] = -1 if m < n_lo else (rows[m - n_lo] if m < n_lo + rows.shape[0] else -2)
    return out


@nb.njit(**_JIT)
def _column_median(d, mir, pairs_w, bw, half, out):  # pragma: no cover - compiled
    """``out`` = ``d`` median-filtered across columns (window ``mir.shape[0]``, mirrored
    edges: ``mir[o, c]`` the column at offset ``o - h`` of column ``c``; ``pairs_w``: its
    network; ``bw``: a buffer ``(window, columns)``; ``half``: ``(4, columns // 2 + 1)``,
    as a buffer of ``2 columns`` values or more)."""
    win, n_i = mir.shape
    h = win // 2
    m_count = 0
    if win == _plan.COLUMN_WINDOW:
        # the inner columns four at a time from every fourth column (two at a time, the
        # windows' shared values sorted for two medians: 1.5x the time)
        m_count = max(0, (n_i - 2 * h) // 4)
        flat = half.reshape(half.size)
        n4 = n_i // 4
        n0, n1, n2 = (n_i + 3) // 4, (n_i + 2) // 4, (n_i + 1) // 4
        d0, d1 = flat[:n0], flat[n0:n0 + n1]
        d2, d3 = flat[n0 + n1:n0 + n1 + n2], flat[n0 + n1 + n2:n_i]
        o0, o1 = flat[n_i:n_i + m_count], flat[n_i + m_count:n_i + 2 * m_count]
        o2 = flat[n_i + 2 * m_count:n_i + 3 * m_count]
        o3 = flat[n_i + 3 * m_count:n_i + 4 * m_count]
        _deinterleave(d, d0, d1, d2, d3, n4)
        for c in range(4 * n4, n_i):
            (d0 if c % 4 == 0 else d1 if c % 4 == 1 else d2)[c // 4] = d[c]
        _net.column_median_quads(d0, d1, d2, d3, o0, o1, o2, o3, m_count)
        _interleave(o0, o1, o2, o3, out[h:h + 4 * m_count], m_count)
    # the others (all without the kernel): their windows sorted side by side
    n_e = 0
    for c in range(n_i):
        if c < h or c >= h + 4 * m_count:
            mc = mir[:, c]
            for o in range(win):
                bw[o, n_e] = d[mc[o]]
            n_e += 1
    _sort_rows(bw, win, pairs_w, n_e)
    n_e = 0
    for c in range(n_i):
        if c < h or c >= h + 4 * m_count:
            out[c] = bw[h, n_e]
            n_e += 1


@nb.njit(**_JIT)
def _median17(d, buf, out):  # pragma: no cover - compiled
    """``out`` = ``d`` median-filtered across 17 columns with mirrored edges (as
    :func:`_column_median` with ``mir = mirror_table(n)``, ``n >= 17``), every column by the
    four-window kernel: the window's columns ``-8 .. n + 7`` (mirrored at the edges,
    SciPy's ``mode="mirror"``) dealt into 4 phases, the first and last 8 by hand.
    ``buf``: float32, at least :func:`median17_buffer` ``(n)`` values.

    The same medians as :func:`_column_median`'s sorting network at the edges, but for
    the sign of a zero among tied zeros (another network can leave ``-0.0`` or ``+0.0``
    at the middle rank): no sum of them sees it (a float64 sum from ``+0.0`` is ``+0.0``
    after adding ``-0.0``, and ``x - (-0.0) == x - 0.0`` squared alike)."""
    n_i = d.shape[0]
    m_count = (n_i + 3) // 4      # groups of 4 outputs (the last may reach past n_i)
    n4 = m_count + 4              # values per phase: 2 groups of window each side
    d0, d1 = buf[:n4], buf[n4:2 * n4]
    d2, d3 = buf[2 * n4:3 * n4], buf[3 * n4:4 * n4]
    o = buf[4 * n4:4 * n4 + 4 * m_count]
    o0, o1 = o[:m_count], o[m_count:2 * m_count]
    o2, o3 = o[2 * m_count:3 * m_count], o[3 * m_count:]
    full = n_i // 4
    # window column k - 8 at k: phase k % 4, place k // 4 (columns 0 .. 4 full - 1 dealt)
    _deinterleave(d, d0[2:], d1[2:], d2[2:], d3[2:], full)
    for k in range(8):
        _put(d0, d1, d2, d3, k, d[8 - k])
    for k in range(8 + 4 * full, 4 * n4):
        c = k - 8
        _put(d0, d1, d2, d3, k, d[c] if c < n_i else d[2 * n_i - 2 - c] if c < 2 * n_i - 1
             else np.float32(0.0))   # (only outputs past the last column read the last)
    _net.column_median_quads(d0, d1, d2, d3, o0, o1, o2, o3, m_count)
    _interleave(o0, o1, o2, o3, out, full)
    for c in range(4 * full, n_i):
        ph = c % 4
        out[c] = (o0 if ph == 0 else o1 if ph == 1 else o2)[c // 4]


@nb.njit(**_JIT)
def _put(d0, d1, d2, d3, k, v):  # pragma: no cover - compiled
    """Value ``k`` of the row dealt into phases ``d0 .. d3`` = ``v``."""
    ph = k % 4
    (d0 if ph == 0 else d1 if ph == 1 else d2 if ph == 2 else d3)[k // 4] = v


def median17_buffer(n_i: int) -> int:
    """Values of :func:`_median17`'s buffer for rows of ``n_i`` columns."""
    return 8 * ((n_i + 3) // 4) + 16


@nb.njit(**_JIT)
def _median_across(d, mir, pairs_w, bw, half, buf, out):  # pragma: no cover - compiled
    """:func:`_column_median` of ``d``, by :func:`_median17` where the window is
    :data:`~nsgen.prep._robust_plan.COLUMN_WINDOW` columns (``buf``: its buffer)."""
    if mir.shape[0] == _plan.COLUMN_WINDOW:
        _median17(d, buf, out)
    else:
        _column_median(d, mir, pairs_w, bw, half, out)


# Loops over columns index with ``u = np.uint64(t)``: an int64 index is checked for being
# negative (NumPy's wrap-around), a select LLVM does not remove for a loop's counter, which
# kept these loops from loading consecutive values (scalar code or gathers: 2-6x slower).
_U1, _U2, _U3, _U4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)


@nb.njit(**_JIT)
def _deinterleave(d, d0, d1, d2, d3, n4):  # pragma: no cover - compiled
    """``dr[m]`` = ``d[4 m + r]`` for ``m < n4``."""
    for m in range(n4):
        u = np.uint64(m)
        k = _U4 * u
        d0[u] = d[k]
        d1[u] = d[k + _U1]
        d2[u] = d[k + _U2]
        d3[u] = d[k + _U3]


@nb.njit(**_JIT)
def _interleave(o0, o1, o2, o3, out, m_count):  # pragma: no cover - compiled
    """``out[4 m + r]`` = ``or[m]`` for ``m < m_count``."""
    for m in range(m_count):
        u = np.uint64(m)
        k = _U4 * u
        out[k] = o0[u]
        out[k + _U1] = o1[u]
        out[k + _U2] = o2[u]
        out[k + _U3] = o3[u]


@nb.njit(**_JIT)
def _residual(row, med, d):  # pragma: no cover - compiled
    """``d`` = ``row - med`` (float32, per column)."""
    for t in range(d.shape[0]):
        u = np.uint64(t)
        d[u] = row[u] - med[u]


@nb.njit(**_JIT)
def _accumulate(d, sm, acc_d, acc_s, acc_2):  # pragma: no cover - compiled
    """``acc_d += d``, ``acc_s += sm`` per column in float64, and, unless ``acc_2`` is
    empty, ``acc_2 += (d - sm) ** 2`` (a rank's residual squared, :func:`_square`)."""
    for t in range(d.shape[0]):
        u = np.uint64(t)
        acc_d[u] += np.float64(d[u])
        acc_s[u] += np.float64(sm[u])
    if acc_2.shape[0]:
        _square(d, sm, acc_2)


@nb.njit(**_JIT)
def row_offsets(srt, bg, i, o_lo, o_hi, pairs_o, mir, pairs_w, q, cons):  # pragma: no cover
    """Offsets ``q`` (float64 per column) of row ``i`` of the ranked rows ``srt``
    ``(rows, ranks, columns)``: ``d`` = its ranks minus, rank by rank, the median of the other
    rows ``o_lo .. o_hi - 1`` of ``bg`` (same shape: the rows as background; none if
    ``o_hi <= o_lo``; ``pairs_o``: their network), then ``q`` = mean over ranks of ``d`` minus
    that of ``d`` median-filtered across columns (window ``mir.shape[0]``, ``mir[o, c]`` the
    mirrored column at offset ``o - h``; ``pairs_w``: its network). ``cons`` (float64 per
    column, or empty: not asked for): the rank consistency of that residual, ``|mean| /
    std`` over the ranks (:func:`_consistency`)."""
    n_r, n_i = srt.shape[1], srt.shape[2]
    n_o = 0
    for o in range(o_lo, o_hi):
        if o != i:
            n_o += 1
    rows = np.empty(n_o, np.int64)
    m = 0
    for o in range(o_lo, o_hi):
        if o != i:
            rows[m] = o
            m += 1
    win = mir.shape[0]
    bo = np.empty((n_o if n_o > _plan.ROW_MEDIAN else 0, n_i), np.float32)
    med = np.empty(n_i, np.float32)
    d = np.empty(n_i, np.float32)
    sm = np.empty(n_i, np.float32)
    bw = np.empty((win, n_i), np.float32)
    half = np.empty((4, n_i // 2 + 1), np.float32)
    buf = np.empty(8 * ((n_i + 3) // 4) + 16, np.float32)
    acc_d = np.zeros(n_i)
    acc_s = np.zeros(n_i)
    acc_2 = np.zeros(n_i if cons.shape[0] else 0)
    for r in range(n_r):
        row = srt[i, r]
        if n_o > 0:
            _row_median(bg, r, pairs_o, rows, bo, med)
            _residual(row, med, d)
        else:
            d[:] = row
        _median_across(d, mir, pairs_w, bw, half, buf, sm)
        _accumulate(d, sm, acc_d, acc_s, acc_2)
    for t in range(n_i):
        q[t] = acc_d[t] / n_r - acc_s[t] / n_r
    if cons.shape[0]:
        _consistency(q, acc_2, n_r, cons)


@nb.njit(**_JIT)
def _square(d, sm, acc):  # pragma: no cover - compiled
    """``acc += (d - sm) ** 2`` per column, in float64 (a rank's residual squared)."""
    for t in range(acc.shape[0]):
        u = np.uint64(t)
        e = np.float64(d[u]) - np.float64(sm[u])
        acc[u] += e * e


@nb.njit(**_JIT)
def _consistency(q, acc_2, n_r, cons):  # pragma: no cover - compiled
    """``cons`` = ``|q| / std`` per column, ``q`` the mean of ``n_r`` ranks' residuals and
    ``acc_2`` the sum of their squares (the std over the ranks, at least 1e-12)."""
    for t in range(q.shape[0]):
        var = acc_2[t] / n_r - q[t] * q[t]
        cons[t] = abs(q[t]) / max(np.sqrt(max(var, 0.0)), 1e-12)


@nb.njit(**_JIT)
def row_offsets_pair(srt, bg, i, hd, mir, pairs_w, q0, q1, c0, c1):  # pragma: no cover
    """:func:`row_offsets` of the rows ``i`` and ``i + 1`` against the other rows within
    ``hd`` of each (``2 hd`` = :data:`~nsgen.prep._robust_plan.ROW_MEDIAN`, all in
    ``bg``): into ``q0`` and ``q1`` (their rank consistency into ``c0`` and ``c1``), the
    same values, the per-rank medians taken for both rows at once (their backgrounds share
    all but 2 rows each)."""
    n_r, n_i = srt.shape[1], srt.shape[2]
    rows = np.empty(_plan.ROW_MEDIAN + 2, np.int64)
    m = 0
    for o in range(i - hd + 1, i + hd + 1):
        if o != i and o != i + 1:
            rows[m] = o
            m += 1
    rows[m], rows[m + 1], rows[m + 2], rows[m + 3] = i - hd, i + 1, i, i + 1 + hd
    med0 = np.empty(n_i, np.float32)
    med1 = np.empty(n_i, np.float32)
    d = np.empty(n_i, np.float32)
    sm = np.empty(n_i, np.float32)
    bw = np.empty((mir.shape[0], n_i), np.float32)
    half = np.empty((4, n_i // 2 + 1), np.float32)
    buf = np.empty(8 * ((n_i + 3) // 4) + 16, np.float32)
    acc = np.zeros((4, n_i))
    acc_2 = np.zeros((2, n_i if c0.shape[0] else 0))
    for r in range(n_r):
        _net.row_median_pair(bg, rows, r, med0, med1)
        for k in range(2):
            _residual(srt[i + k, r], med0 if k == 0 else med1, d)
            _median_across(d, mir, pairs_w, bw, half, buf, sm)
            _accumulate(d, sm, acc[2 * k], acc[2 * k + 1], acc_2[k])
    for t in range(n_i):
        q0[t] = acc[0, t] / n_r - acc[1, t] / n_r
        q1[t] = acc[2, t] / n_r - acc[3, t] / n_r
    if c0.shape[0]:
        _consistency(q0, acc_2[0], n_r, c0)
        _consistency(q1, acc_2[1], n_r, c1)


@nb.njit(**_JIT)
def row_offsets_group(srt, bg, i, hd, mir, pairs_w, q, cons):  # pragma: no cover
    """:func:`row_offsets` of the :data:`~nsgen.prep._robust_plan.ROW_GROUP` rows ``i, i +
    1, ..`` against the other rows within ``hd`` of each (``2 hd`` =
    :data:`~nsgen.prep._robust_plan.ROW_MEDIAN`, all in ``bg``): into ``q[k]`` (their rank
    consistency into ``cons[k]``; ``cons`` ``(rows, 0)``: not asked for), the same values,
    the per-rank medians taken for the rows at once (their backgrounds share all but
    ``2 ROW_GROUP - 2`` rows each: :func:`~nsgen.prep._robust_net.row_median_group`)."""
    n_r, n_i = srt.shape[1], srt.shape[2]
    g = _plan.ROW_GROUP
    n_s = _plan.ROW_MEDIAN + 2 - 2 * g
    rows = np.empty(n_s + 3 * g - 2, np.int64)
    m = 0
    for o in range(i + g - 1 - hd, i + hd + 1):   # the rows all backgrounds hold
        if o < i or o >= i + g:
            rows[m] = o
            m += 1
    for o in range(i - hd, i + g - 1 - hd):        # below those, the rows, above those
        rows[m] = o
        m += 1
    for o in range(i, i + g):
        rows[m] = o
        m += 1
    for o in range(i + hd + 1, i + g + hd):
        rows[m] = o
        m += 1
    meds = np.empty((g, n_i), np.float32)
    d = np.empty(n_i, np.float32)
    sm = np.empty(n_i, np.float32)
    bw = np.empty((mir.shape[0], n_i), np.float32)
    half = np.empty((4, n_i // 2 + 1), np.float32)
    buf = np.empty(8 * ((n_i + 3) // 4) + 16, np.float32)
    acc = np.zeros((2 * g, n_i))
    acc_2 = np.zeros((g, cons.shape[1]))
    for r in range(n_r):
        _net.row_median_group(bg, rows, r, meds[0], meds[1], meds[2])
        for k in range(g):
            _residual(srt[i + k, r], meds[k], d)
            _median_across(d, mir, pairs_w, bw, half, buf, sm)
            _accumulate(d, sm, acc[2 * k], acc[2 * k + 1], acc_2[k])
    for k in range(g):
        for t in range(n_i):
            q[k, t] = acc[2 * k, t] / n_r - acc[2 * k + 1, t] / n_r
        if cons.shape[1]:
            _consistency(q[k], acc_2[k], n_r, cons[k])


@nb.njit(**_JIT)
def spread(qs, pairs, out):  # pragma: no cover - compiled
    """``out`` = 1.4826 x the median absolute deviation from the median of the rows of
    ``qs`` ``(rows, columns)`` float64, per column (as NumPy's ``median`` over axis 0;
    ``pairs``: the network for ``rows`` values). ``qs`` is overwritten."""
    m, n_i = qs.shape
    med = np.empty(n_i)
    _sort_rows(qs, m, pairs, n_i)
    _median_sorted(qs, m, med)
    for o in range(m):
        row = qs[o]
        for t in range(n_i):
            row[t] = abs(row[t] - med[t])
    _sort_rows(qs, m, pairs, n_i)
    _median_sorted(qs, m, out)
    for t in range(n_i):
        out[t] = 1.4826 * out[t]


@nb.njit(**_JIT)
def robust_scale(q):  # pragma: no cover - compiled
    """1.4826 x the median absolute deviation from the median of the non-zero values of
    ``q`` (1-D float64; 0 for at most 8 of them), at least 1e-12: the medians as NumPy's
    (an even count's ``(a + b) / 2`` in float64)."""
    n = 0
    for t in range(q.shape[0]):
        if q[t] != 0:
            n += 1
    s = 0.0
    if n > 8:
        nz = np.empty(n)
        m = 0
        for t in range(q.shape[0]):
            if q[t] != 0:
                nz[m] = q[t]
                m += 1
        med = _median(nz)
        for t in range(n):
            nz[t] = abs(nz[t] - med)
        s = 1.4826 * _median(nz)
    return max(s, 1e-12)


#: values :func:`_median` samples (sorted) to bracket the middle ranks, and sample ranks
#: each side of the middle's expected one that bracket them (a sample rank's spread is
#: ``sqrt(SAMPLE) / 2`` = 5.7: 2.2 of it)
SAMPLE = 128
SAMPLE_REACH = 12


@nb.njit(**_JIT)
def _median(a):  # pragma: no cover - compiled
    """NumPy's ``median`` of ``a`` (1-D float64, read only), without its quickselect over
    every value (whose branches mispredict on data it has not met: 60 us for 2560
    values): the middle ranks are bracketed by two values of a sorted sample of
    :data:`SAMPLE`, the values between them (about a fifth) collected in one pass
    without branches, and NumPy's ``median`` taken of those with as many -inf or +inf
    added as make the middle ranks theirs; where the bracket misses the middle ranks (or
    a value is NaN), NumPy's ``median`` of all. The same number (the middle value, or
    the middle two's ``(a + b) / 2`` as NumPy's), but for the sign of a zero among tied
    zeros."""
    n = a.shape[0]
    if n < 8 * SAMPLE:
        return np.median(a)
    smp = np.empty(SAMPLE)
    for j in range(SAMPLE):
        smp[j] = a[j * n // SAMPLE]
    smp.sort()
    k1, k2 = (n - 1) // 2, n // 2      # the middle ranks (one for an odd count)
    j1, j2 = k1 * SAMPLE // n - SAMPLE_REACH, k2 * SAMPLE // n + SAMPLE_REACH + 1
    lo = smp[j1] if j1 >= 0 else -np.inf
    hi = smp[j2] if j2 < SAMPLE else np.inf
    buf = np.empty(2 * n)
    below = 0
    m = 0
    odd = 0
    for t in range(n):
        x = a[t]
        below += x < lo
        buf[m] = x
        m += (x >= lo) & (x <= hi)
        odd += x != x
    if odd or below > k1 or below + m <= k2:
        return np.median(a)
    # the middle ranks made the middle of the values collected by as many -inf or +inf
    # after them (then NumPy's median of those is the one or the mean of the two, as of
    # all; np.partition instead took as long again to compile)
    j = k1 - below
    pad = (m - 1 - j - (k2 - k1)) - j
    fill = -np.inf if pad > 0 else np.inf
    for t in range(m, m + abs(pad)):
        buf[t] = fill
    return np.median(buf[:m + abs(pad)])


@nb.njit(**_JIT)
def strong_columns(srt, mir, pairs_w, strong, out):  # pragma: no cover - compiled
    """``out[j, i]`` = whether ``|q[i]|`` exceeds ``strong`` :func:`robust_scale` of ``q``,
    the :func:`row_offsets` of row ``j`` of the ranked rows ``srt`` ``(rows, ranks,
    columns)`` alone (no other rows), for every row (``mir``, ``pairs_w``: the window
    across columns and its network)."""
    n_j, n_i = srt.shape[0], srt.shape[2]
    q = np.empty(n_i)
    none = np.empty((0, 2), np.int64)
    no_cons = np.empty(0)
    for j in range(n_j):
        row_offsets(srt, srt, j, 0, 0, none, mir, pairs_w, q, no_cons)
        bar = strong * robust_scale(q)
        for t in range(n_i):
            out[j, t] = abs(q[t]) > bar
