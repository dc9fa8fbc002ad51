"""Run a detection script with the robust decisions patched: the mass-conservation (M0)
confirmation pooled over the adjacent rows of one pixel block's stripe (a prototype of the
nineteenth detector round, docs/detection.md "Nineteenth round"; not wired into the
detector: it needs the decided candidates of the rows within ``STACK_ROWS`` of a chunk).

A gain change of a pixel block spanning several detector rows shifts the ``M0`` trace
(the sum over every column per angle bin, :mod:`nsgen.prep.robust_mass`) of each of its
rows at the same angles by the same step (its width times ``log g``), whatever the sample
does: a sample feature conserves mass row by row. So the candidates
:func:`~nsgen.prep.robust_mass.confirm` leaves (each row alone short of its bar) are
linked across adjacent rows (overlapping columns, overlapping angle blocks, one sign: the
defect stays in its columns and angles), and each such stack of 2 to ``STACK_ROWS`` rows
is tested on the sum of its rows' traces over the blocks they share:

* z of the pooled box (the rows' box sums over the root of their summed variances) over
  ``max(1, the robust spread of every other window of as many rows on the same box)``
  (the spread guard of :func:`~nsgen.prep.robust_mass.confirm`) at least ``STACK_BAR``
  with the offsets' sign, and each row's own box z of that sign;
* the pooled step over the sum of the rows' expected steps (their candidates' offsets)
  within ``STACK_RATIO`` and its inverse (the same relative step in every row; pooled over
  rows, the step is measured well enough for a tighter window than one row's 0.5-2);
* a row whose box holds another stripe's flag in its angles is left out (its shift is
  explained already), before the stack is formed; a stack spanning more than
  ``STACK_ROWS`` rows is not tested (tall stripes are the row-alone path's).

Confirmed stacks are flagged in each row's candidate columns at the angles where the
pooled trace steps most (:func:`~nsgen.prep.robust_mass._interval`). The patch applies to
whole-volume decisions only (``detect_volume``, ``robust_stripe_mask``, the replay of
``bench_detect.py --offsets``).

Usage: ``python scripts/bench_stack.py SCRIPT [ARGS...]`` (e.g. ``scripts/bench_detect.py
--detectors robust --cache DIR --seeds 5,6,7,8 --offsets DIR``); ``STACK_LOG=FILE``
appends every stack tested, ``STACK_BAR``, ``STACK_RATIO``, ``STACK_ROWS`` override the
rule's values.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

import numpy as np

from nsgen.prep import robust_mass as rm
from nsgen.prep import stripe_robust as sr
from nsgen.prep.robust_angles import angle_bins
from nsgen.prep.robust_scores import depth_rule, offset_scores
from nsgen.prep.robust_tall import split_tall

STACK_BAR = float(os.environ.get("STACK_BAR", "4.0"))
STACK_RATIO = float(os.environ.get("STACK_RATIO", "0.7"))
STACK_ROWS = int(os.environ.get("STACK_ROWS", "4"))
LOG = os.environ.get("STACK_LOG")
TAG = {"scan": ""}
COUNT = {"stacks": 0, "flagged": 0}


def boxes(out: np.ndarray, q: np.ndarray, z: list[np.ndarray], edges: np.ndarray
          ) -> list[dict[str, Any]]:
    """The candidate boxes :func:`~nsgen.prep.robust_mass.confirm` forms of each row (its
    candidates per block joined over columns and consecutive blocks), each with its
    columns, blocks and expected step (row-local: the row's decision, offsets, scores)."""
    n_b = edges.size - 1
    cand = np.zeros((n_b,) + out.shape[1:], np.int8)
    for b in range(n_b):
        zb = np.asarray(z[b])
        flagged = out[edges[b]:edges[b + 1]].any(axis=0)
        cand[b] = rm.candidates(zb, flagged)
    found = []
    for r in np.flatnonzero(cand.any(axis=(0, 2))):
        for c0, c1 in rm._runs(np.flatnonzero(cand[:, r].any(axis=0))):
            for b0, b1 in rm._runs(np.flatnonzero(cand[:, r, c0:c1].any(axis=1))):
                own = c0 + np.flatnonzero(cand[b0:b1, r, c0:c1].any(axis=0))
                i, j = int(own[0]), int(own[-1]) + 1
                exp = float(np.mean([q[r, b, i:j][cand[b, r, i:j] != 0].sum()
                                     for b in range(b0, b1)]))
                if exp != 0 and not rm._explained(out, int(r), i, j, int(edges[b0]),
                                                  int(edges[b1])):
                    found.append({"r": int(r), "i": i, "j": j, "b0": int(b0), "b1": int(b1),
                                  "exp": exp})
    return found


def stacks(found: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Connected boxes of adjacent rows (overlapping columns and blocks, one sign) spanning
    2 to :data:`STACK_ROWS` rows."""
    parent = list(range(len(found)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    for n, d in enumerate(found):
        for m, e in enumerate(found):
            if (e["r"] == d["r"] + 1 and e["i"] < d["j"] and d["i"] < e["j"]
                    and e["b0"] < d["b1"] and d["b0"] < e["b1"]
                    and np.sign(e["exp"]) == np.sign(d["exp"])):
                parent[root(m)] = root(n)
    groups: dict[int, list[dict[str, Any]]] = {}
    for n, d in enumerate(found):
        groups.setdefault(root(n), []).append(d)
    out = []
    for g in groups.values():
        rows = {d["r"] for d in g}
        if 2 <= max(rows) - min(rows) + 1 <= STACK_ROWS:
            out.append(g)
    return out


def confirm_stacks(out: np.ndarray, q: np.ndarray, z: list[np.ndarray], trace: np.ndarray,
                   edges: np.ndarray, bins: np.ndarray) -> int:
    """Flag the stacks of a whole-volume decision's mask ``out`` that the rows' pooled
    ``M0`` confirms (module docstring); the number of boxes flagged."""
    n_rows, n_bins = trace.shape[0], trace.shape[1] - 1
    n_b = edges.size - 1
    if n_rows < rm.MIN_ROWS or n_b < 2 or n_bins != bins.size - 1:
        return 0
    w = np.diff(bins).astype(np.float64)
    total = float(w.sum())
    r0, noise = trace[:, :n_bins], trace[:, n_bins]
    centred = r0 - (r0 @ w / total)[:, None]
    unit = noise * np.sqrt(w.mean())
    at = np.searchsorted(bins, edges)
    flags = []
    for ds in stacks(boxes(out, q, z, edges)):
        rws = sorted({d["r"] for d in ds})
        b0, b1 = max(d["b0"] for d in ds), min(d["b1"] for d in ds)
        if b0 >= b1:
            continue
        a, e = int(at[b0]), int(at[b1])
        length = float(w[a:e].sum())
        if total - length < rm.MIN_OUTSIDE:
            continue
        sign = float(np.sign(ds[0]["exp"]))
        vr = np.array(rws)
        sd = unit * np.sqrt(length * (total - length) / total)
        s_rows = centred[:, a:e] @ w[a:e]
        h = len(rws)
        cs = np.concatenate([[0.0], np.cumsum(s_rows)])
        cv = np.concatenate([[0.0], np.cumsum(sd ** 2)])
        win = (cs[h:] - cs[:-h]) / np.sqrt(cv[h:] - cv[:-h])   # windows of h rows
        zp = float(win[vr[0]])
        others = np.concatenate([win[:max(vr[0] - h + 1, 0)], win[vr[-1] + 1:]])
        spread = rm._MAD * float(np.median(np.abs(others - np.median(others)))) \
            if others.size else 0.0
        zm = zp / max(1.0, spread)
        zr = s_rows[vr] / sd[vr]
        exp = sum(d["exp"] for d in ds)
        step = float(np.sum(s_rows[vr] / length - (centred[vr] @ w - s_rows[vr]) / (total - length)))
        ratio = step / exp
        ok = (np.sign(zm) == sign and abs(zm) >= STACK_BAR and bool(np.all(np.sign(zr) == sign))
              and STACK_RATIO <= ratio <= 1.0 / STACK_RATIO)
        if LOG:
            with open(LOG, "a") as fh:
                fh.write(f"{TAG['scan']} rows {rws[0]}-{rws[-1]} cols "
                         f"{[(d['r'], d['i'], d['j']) for d in ds]} blocks {b0}-{b1} zp {zp:.2f} "
                         f"spread {spread:.2f} zm {zm:.2f} zr {np.round(zr, 1).tolist()} "
                         f"ratio {ratio:.2f} ok {ok}\n")
        if ok:
            k0, k1 = rm._interval(centred[vr].sum(axis=0), w,
                                  int(at[max(b0 - rm.ANGLE_REACH, 0)]),
                                  int(at[min(b1 + rm.ANGLE_REACH, n_b)]), (a, e), sign)
            flags += [(int(bins[k0]), int(bins[k1]), d["r"], d["i"], d["j"]) for d in ds]
            COUNT["stacks"] += 1
    for k0, k1, r, i, j in flags:   # (every stack judged on the decision's own flags)
        out[k0:k1, r, i:j] = 1
    COUNT["flagged"] += len(flags)
    return len(flags)


_orig = sr.decide_offsets


def patched(qs: np.ndarray, q_start: int, xb: np.ndarray, rows: tuple[int, int],
            n_rows_total: int, n_k: int, threshold: float = sr.THRESHOLD, depth: int = 30,
            out: np.ndarray | None = None, mass: np.ndarray | None = None,
            scores: list[np.ndarray] | None = None) -> np.ndarray:
    """:func:`~nsgen.prep.stripe_robust.decide_offsets`, then (whole-volume calls with the
    volume's ``mass``) :func:`confirm_stacks`."""
    m = _orig(qs, q_start, xb, rows, n_rows_total, n_k, threshold, depth, out, mass, scores)
    n = n_rows_total
    edges = sr._blocks(n_k)
    if mass is None or edges.size <= 2 or not (q_start == 0 and rows == (0, n)
                                               and qs.shape[0] == n):
        return m
    hd = depth_rule(n, depth)
    n_sets = qs.shape[1] // sr.STORED_SETS
    q, _ = split_tall(qs[:, :-n_sets], 0, (0, n))
    z = [offset_scores(q[:, b], 0, (0, n), hd, n) for b in range(edges.size - 1)]
    confirm_stacks(m, q[:, :edges.size - 1], z, mass, edges, angle_bins(edges, n_k))
    return m


def main() -> None:
    sr.decide_offsets = patched   # type: ignore[assignment]
    sys.path.insert(0, "scripts")
    import bench_detect   # (its replay names the scan: the log's tag)
    replay = bench_detect.replay_robust

    def tagged(x: np.ndarray, store: Any, params: Any) -> np.ndarray:
        TAG["scan"] = store.stem
        return replay(x, store, params)
    bench_detect.replay_robust = tagged
    sys.argv = sys.argv[1:]
    try:
        if sys.argv[0].endswith("bench_detect.py"):
            bench_detect.main(sys.argv[1:])
        else:
            runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        print(f"STACKS confirmed {COUNT['stacks']}, boxes flagged {COUNT['flagged']}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
