"""Mass conservation pooled over the rows of one pixel block's stripe (nineteenth round).

A gain change of a pixel block that spans several detector rows shifts the ``M0`` trace
of **each** of its rows (:mod:`nsgen.prep.robust_mass`: the sum over every column per
angle bin, the volume's common mode removed) over the same angles by the same step (its
width times ``log g``), whatever the sample does; a sample feature conserves mass row by
row. Where each row alone stays under :data:`~nsgen.prep.robust_mass.MASS_BAR` (a faint
stripe, few photons), the rows together may not: :func:`stack_flags` links the
candidates :func:`~nsgen.prep.robust_mass.confirm` leaves in adjacent rows (overlapping
columns, overlapping angle blocks, one sign: a detector defect stays in its columns and
angles) and tests each stack of 2 to :data:`STACK_ROWS` rows on the sum of its rows'
traces over the blocks they share:

* the pooled box z (the rows' box sums over the root of their summed variances) over
  ``max(1, the robust spread of every other window of as many rows on the same box)``
  (:func:`~nsgen.prep.robust_mass.confirm`'s spread guard) reaches :data:`STACK_BAR` with
  the offsets' sign, and each row's own box z has that sign;
* the pooled step over the sum of the rows' expected steps (their candidates' offsets) is
  within :data:`STACK_RATIO` and its inverse (the same relative step in every row; pooled
  over rows the step is measured well enough for a tighter window than one row's);
* a row whose box holds another stripe's flag in its angles is left out before the
  stack is formed (its shift is explained already: ``robust_mass._explained``).

A confirmed stack is flagged in each row's candidate columns at the angles where the
pooled trace steps most (``robust_mass._interval``). A row's flags read the decided
candidates of the rows within :data:`REACH` (a stack taller than :data:`STACK_ROWS` is
not tested: such a stack seen from a row reaches the edge of what it reads), so the mask
does not depend on the chunking. Labelled benchmark: docs/detection.md, nineteenth round.
Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from nsgen.prep import robust_mass as rm
from nsgen.prep.robust_rows import REACH as GROW_REACH

__all__ = ["DECIDE_REACH", "REACH", "STACK_BAR", "STACK_RATIO", "STACK_ROWS", "apply",
           "stack_flags"]

#: the pooled z (over the spread guard) a stack must reach
STACK_BAR = 4.0
#: the pooled step over the expected one: within this and its inverse
STACK_RATIO = 0.7
#: the most rows a stack spans
STACK_ROWS = 4
#: rows each side whose decided candidates a row's stacks read
REACH = STACK_ROWS
#: rows each side of their rows the decisions decide for the steps after them (the
#: widening along the rows, :mod:`nsgen.prep.robust_rows`, and the stacks)
DECIDE_REACH = max(GROW_REACH, REACH)


def _boxes(mask: np.ndarray, cand: np.ndarray, q: np.ndarray, edges: np.ndarray,
           bins: np.ndarray, per_bin: bool = False
           ) -> list[tuple[int, int, int, int, int, float]]:
    """Each row's candidate boxes ``(row, i, j, b0, b1, expected step)`` as
    :func:`~nsgen.prep.robust_mass.confirm` forms them (a run of adjacent candidate
    columns x a run of consecutive blocks holding candidates there; columns those of its
    own blocks' candidates), those whose shift another flag explains left out (as
    ``robust_mass._explained``, read at each angle bin's first angle: the decision's flags
    are per bin; with ``per_bin``, ``mask`` holds a plane per bin)."""
    found: list[tuple[int, int, int, int, int, float]] = []
    rows = np.flatnonzero(cand.any(axis=(1, 2)))
    if not rows.size:
        return found
    at = np.searchsorted(bins, edges)
    for r in rows.tolist():
        # (bins, columns): one row at a time
        flags = np.greater(mask[:, r] if per_bin else mask[bins[:-1], r], 0)
        if flags.all(axis=0).any():
            continue   # (a flag over the whole scan: its M0 changes with the angle)
        anyf = np.asarray(flags.any(axis=0))
        for i, j, b0, b1, exp in rm.row_boxes(cand[r], q[r]):
            if exp == 0:
                continue
            part = anyf.copy()
            part[max(0, i - rm.EXPLAINED_REACH):j + rm.EXPLAINED_REACH] = False
            if part.any() and flags[at[b0]:at[b1]][:, part].any():
                continue   # (another stripe's flag at its angles: its shift explained)
            found.append((r, i, j, b0, b1, exp))
    return found


def _stacks(found: list[tuple[int, int, int, int, int, float]]
            ) -> list[list[tuple[int, int, int, int, int, float]]]:
    """The boxes linked across adjacent rows (overlapping columns and blocks, one sign),
    grouped: those spanning 2 to :data:`STACK_ROWS` rows."""
    parent = list(range(len(found)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    by_row: dict[int, list[int]] = {}
    for n, d in enumerate(found):
        by_row.setdefault(d[0], []).append(n)
    for n, (r, i, j, b0, b1, exp) in enumerate(found):
        for m in by_row.get(r + 1, []):
            _, i2, j2, c0, c1, e2 = found[m]
            if i2 < j and i < j2 and c0 < b1 and b0 < c1 and np.sign(e2) == np.sign(exp):
                parent[root(m)] = root(n)
    groups: dict[int, list[tuple[int, int, int, int, int, float]]] = {}
    for n, d in enumerate(found):
        groups.setdefault(root(n), []).append(d)
    out = []
    for g in groups.values():
        rows = [d[0] for d in g]
        if 2 <= max(rows) - min(rows) + 1 <= STACK_ROWS:
            out.append(g)
    return out


def stack_flags(mask: np.ndarray, m_start: int, scores: list[np.ndarray],
                trace: np.ndarray | None, rows: tuple[int, int], edges: np.ndarray,
                bins: np.ndarray, per_bin: bool = False
                ) -> list[tuple[int, int, int, int, int]]:
    """The flags of the confirmed stacks (module docstring) in volume rows ``rows``: a list
    of ``(first angle, stop angle, row relative to rows[0], first column, stop column)``
    (with ``per_bin``: first and stop bin, ``mask`` holding a plane per bin).

    Parameters
    ----------
    mask : ndarray
        The decided mask ``(angles, rows, columns)`` (``(bins, rows, columns)`` with
        ``per_bin``) of volume rows ``m_start ...``
        (holding :data:`REACH` rows each side of ``rows``, clipped to the volume), before
        any widening.
    m_start : int
        The volume row of ``mask``'s first row.
    scores : list of ndarray
        What :func:`~nsgen.prep.stripe_robust.decide_offsets` gave of the same rows: its
        fourth and fifth arrays are the candidates (:func:`~nsgen.prep.robust_mass.candidate_blocks`, ``(rows,
        blocks, columns)``) and the offsets per block ``(rows, blocks, columns + 1)``
        (fewer: no stacks).
    trace : ndarray or None
        :func:`~nsgen.prep.robust_mass.mass_trace` of every row of the volume (None: no
        stacks).
    rows : tuple of int
        The volume rows whose flags are returned.
    edges, bins : ndarray
        The angle blocks' and bins' edges.
    per_bin : bool
        ``mask`` holds a plane per bin, and the flags' angles are bins.

    Examples
    --------
    A 4-column 6 % gain step over angles 0-119 (of 360, 6 blocks) in rows 3-5 of 12, its
    offsets standing out in block 0, where each row's ``M0`` shift is 2.6-3.4 times its
    noise (under the bar 4 alone; 5.1 pooled):

    >>> edges, bins = np.arange(0, 361, 60), np.arange(0, 361, 5)
    >>> rng = np.random.default_rng(1)
    >>> m0 = rng.normal(0, 0.2, (12, 72))
    >>> m0[3:6, :24] += 4 * np.log(1.06)
    >>> trace = rm.mass_trace(m0)
    >>> mask = np.zeros((360, 12, 32), np.uint8)
    >>> cand = np.zeros((12, 6, 32), np.int8); cand[3:6, 0, 20:24] = 1
    >>> q = np.zeros((12, 6, 33)); q[3:6, 0, 20:24] = np.log(1.06)
    >>> f = stack_flags(mask, 0, [q, q, q, cand, q], trace, (0, 12), edges, bins)
    >>> sorted({(r, i, j) for _, _, r, i, j in f}), min(k0 for k0, *_ in f) < 10
    ([(3, 20, 24), (4, 20, 24), (5, 20, 24)], True)
    >>> stack_flags(mask, 0, [q, q, q, cand, q], trace, (0, 4), edges, bins)[0][2:]
    (3, 20, 24)
    """
    n_b = edges.size - 1
    if trace is None or len(scores) < 5 or n_b < 2:
        return []
    n_rows, n_bins = trace.shape[0], trace.shape[1] - 1
    if n_rows < rm.MIN_ROWS or n_bins != bins.size - 1:
        return []
    cand, q = scores[3], scores[4]
    w = np.diff(bins).astype(np.float64)
    total = float(w.sum())
    r0, noise = trace[:, :n_bins], trace[:, n_bins]
    centred = r0 - (r0 @ w / total)[:, None]
    unit = noise * np.sqrt(w.mean())
    at = np.searchsorted(bins, edges)
    flags = []
    m_bins = np.arange(bins.size) if per_bin else bins   # (the mask's planes)
    for ds in _stacks(_boxes(mask, cand, q, edges, bins, per_bin)):
        rel = sorted({d[0] for d in ds})
        if not any(rows[0] <= m_start + r < rows[1] for r in rel):
            continue
        b0, b1 = max(d[3] for d in ds), min(d[4] for d in ds)
        a, e = int(at[b0]), int(at[b1])
        length = float(w[a:e].sum())
        if b0 >= b1 or total - length < rm.MIN_OUTSIDE:
            continue
        sign = float(np.sign(ds[0][5]))
        vr = m_start + np.array(rel)
        sd = unit * np.sqrt(length * (total - length) / total)
        s_rows = centred[:, a:e] @ w[a:e]   # every row's box sum
        h = len(rel)
        cs = np.concatenate([[0.0], np.cumsum(s_rows)])
        cv = np.concatenate([[0.0], np.cumsum(sd ** 2)])
        win = (cs[h:] - cs[:-h]) / np.sqrt(cv[h:] - cv[:-h])   # every window of h rows
        others = np.concatenate([win[:max(int(vr[0]) - h + 1, 0)], win[int(vr[-1]) + 1:]])
        spread = (rm._MAD * float(np.median(np.abs(others - np.median(others))))
                  if others.size else 0.0)
        zm = float(win[vr[0]]) / max(1.0, spread)
        inside = s_rows[vr]
        step = float(np.sum(inside / length - (centred[vr] @ w - inside) / (total - length)))
        ratio = step / sum(d[5] for d in ds)
        if not (np.sign(zm) == sign and abs(zm) >= STACK_BAR
                and bool(np.all(np.sign(inside) == sign))
                and STACK_RATIO <= ratio <= 1.0 / STACK_RATIO):
            continue
        k0, k1 = rm._interval(centred[vr].sum(axis=0), w, int(at[max(b0 - rm.ANGLE_REACH, 0)]),
                              int(at[min(b1 + rm.ANGLE_REACH, n_b)]), (a, e), sign)
        flags += [(int(m_bins[k0]), int(m_bins[k1]), m_start + d[0] - rows[0], d[1], d[2])
                  for d in ds if rows[0] <= m_start + d[0] < rows[1]]
    return flags


def apply(out: np.ndarray, flags: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Write :func:`stack_flags`' ``flags`` into the mask ``out`` ``(angles, rows,
    columns)`` of their rows (in place; returned).

    Examples
    --------
    >>> apply(np.zeros((4, 2, 3), np.uint8), [(1, 3, 1, 0, 2)])[:, 1].tolist()
    [[0, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]]
    """
    for k0, k1, r, i, j in flags:
        out[k0:k1, r, i:j] = 1
    return out
