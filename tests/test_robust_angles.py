"""Tests for nsgen.prep.robust_angles: stripes over part of the scan."""

from __future__ import annotations

import numpy as np

from nsgen.prep.robust_angles import (RUN, angle_bins, best_interval, is_step, refine, run_scores,
                                      stands_out, widen)
from nsgen.prep.stripe_robust import robust_stripe_mask


def test_best_interval_is_the_maximum_sum_range():
    rng = np.random.default_rng(2)
    for _ in range(20):
        v = rng.normal(size=40)
        keep = best_interval(v, np.ones(40, bool))
        on = np.flatnonzero(keep)
        assert on.size and (np.diff(on) == 1).all()  # one range
        best = max(v[a:b].sum() for a in range(40) for b in range(a + 1, 41))
        assert np.isclose(v[keep].sum(), best)


def test_run_scores_sum_over_sqrt_length():
    """Blocks 1-3 (of 6) at 4 with one sign: the run's score 12 / sqrt(3) in each of them;
    a single block or one of another sign is no run."""
    zb = np.zeros((6, 1, 3))
    zb[1:4, 0, 0] = 4.0
    zb[2, 0, 1] = 9.0
    zb[1, 0, 2], zb[2, 0, 2] = 4.0, -4.0
    r = run_scores(zb, 3.0)
    assert np.allclose(r[1:4, 0, 0], 12 / np.sqrt(3)) and not r[[0, 4, 5], 0, 0].any()
    assert not r[:, 0, 1:].any()


def test_a_range_stands_out_only_of_a_flat_trace():
    t = np.zeros(600)
    t[200:400] = 1.0
    keep = np.zeros(600, bool)
    keep[200:400] = True
    assert stands_out(t, keep, 1.0)
    t[20:80] = 1.2  # the column moves as much at other angles: a sample feature
    assert not stands_out(t, keep, 1.0)
    assert stands_out(np.ones(600), np.ones(600, bool), 1.0)  # nothing outside: passes


def test_a_partial_offset_with_another_excursion_is_not_a_stripe():
    """The same column offset over a third of the angles is a stripe alone, and not when the
    column also moves as much against its neighbours at other angles (an edge's turning
    point comes with the rest of its sinusoid; a sample feature conserves the row's mass,
    here spread evenly over the row's columns: robust_mass)."""
    x = np.random.default_rng(1).normal(0, 0.01, (360, 8, 64)).astype(np.float32)
    x[120:240, 3, 20:23] += 0.03
    m = robust_stripe_mask(x)
    assert m[120:240, 3, 20:23].all() and m.sum() == 120 * 3
    x[300:330, 3, 20:23] -= 0.04
    x[120:240, 3] -= 3 * 0.03 / 64
    x[300:330, 3] += 3 * 0.04 / 64
    assert not robust_stripe_mask(x)[:, 3, 20:23].any()


def test_a_step_is_significant_in_its_own_trace_and_flat_where_asked():
    """is_step: amp sqrt(bins) / noise above STEP_Z, and with a plateau asked, that share of
    the range above half the amplitude (a peaked trace fails it)."""
    rng = np.random.default_rng(0)
    keep = np.zeros(360, bool)
    keep[100:220] = True
    t = rng.normal(0, 0.1, 360)
    t[keep] += 0.5  # z = 0.5 sqrt(120) / 0.1 = 55
    assert is_step(t, keep, 0.5) and is_step(t, keep, 0.5, 0.8)
    assert not is_step(rng.normal(0, 0.1, 360), keep, 0.1)  # z about 11: noise
    peak = np.where(keep, 1.0 - np.abs(np.arange(360) - 160) / 60.0, 0.0)
    t = peak + rng.normal(0, 0.01, 360)
    assert is_step(t, keep, 0.5) and not is_step(t, keep, 0.5, 0.8)


def test_a_faint_wide_partial_stripe_is_found_with_its_columns_pooled(monkeypatch):
    """A 4-column stripe over a third of the angles, each column's run of blocks below the
    bar (2.2 x 5), is found with the columns' runs pooled (RUN_POOL_FLOOR), in its angles;
    without the pooling it is lost (the labelled benchmark's partial stripes at i0 = 4000)
    but for the row's mass, which the stripe changes over its blocks' angles
    (robust_mass: in its angles, without it nothing)."""
    from nsgen.prep import robust_mass, robust_pool
    x = np.random.default_rng(3).normal(0, 0.01, (360, 8, 64)).astype(np.float32)
    x[120:240, 3, 20:24] += 0.013
    m = robust_stripe_mask(x)
    assert np.flatnonzero(m.any(axis=(0, 2))).tolist() == [3]
    assert np.flatnonzero(m.any(axis=(0, 1))).tolist() == [20, 21, 22, 23]
    on = np.flatnonzero(m[:, 3, 20])
    assert abs(on[0] - 120) <= 10 and abs(on[-1] + 1 - 240) <= 10
    monkeypatch.setattr(robust_pool, "RUN_POOL_FLOOR", np.inf)
    m = robust_stripe_mask(x)
    on = np.flatnonzero(m.any(axis=(1, 2)))
    assert on.size and abs(on[0] - 120) <= 10 and abs(on[-1] + 1 - 240) <= 10, on
    monkeypatch.setattr(robust_mass, "MASS_BAR", np.inf)
    assert not robust_stripe_mask(x).any()


def test_widen_needs_the_step_in_the_trace_and_the_blocks_agreement():
    """A stripe's unflagged column is taken where its trace holds the step over the range
    and its block scores agree; not without the blocks (a sample quiet over the range and
    busy elsewhere looks like a step in a trace), nor a column of half the step's sign."""
    rng = np.random.default_rng(3)
    xr = rng.normal(0, 0.01, (256, 48))
    xr[64:192, 20:25] += 0.1                    # a stripe over 5 columns
    xr[64:192, 25] -= 0.1                       # an opposite column beside it
    flagged = np.zeros(48, bool)
    flagged[21:24] = True                       # 3 of them flagged
    keep = np.zeros(256, bool)
    keep[64:192] = True
    agree = np.full(48, 3.0)
    assert widen(xr, 21, 24, flagged, keep, 0.1, agree) == (20, 25)
    disagree = agree.copy()
    disagree[20] = 0.5
    assert widen(xr, 21, 24, flagged, keep, 0.1, disagree) == (21, 25)


def test_the_columns_of_one_stripe_get_one_range():
    """Columns of one stripe over part of the scan flagged in different blocks are refined
    together: one range for all, at the stripe's angles (each alone took the trace's noise
    or the sample's offset for part of the stripe)."""
    rng = np.random.default_rng(4)
    n_k, n_i = 1800, 40
    edges = np.array([n_k * b // 6 for b in range(7)])
    bins = angle_bins(edges, n_k)
    x = rng.normal(0, 0.01, (n_k, n_i))
    x[400:1300, 15:19] += 0.05
    xb = np.stack([x[a:b].mean(axis=0) for a, b in zip(bins[:-1], bins[1:])])[None]
    out = np.zeros((n_k, 1, n_i), np.uint8)
    for b, cols in ((1, [15, 16]), (2, [15, 16, 17, 18]), (3, [16, 17, 18]), (4, [17, 18])):
        out[edges[b]:edges[b + 1], 0, cols] = 1
    refine(out, xb, bins, edges, np.full((1, n_i), RUN, np.int8))
    on = out[:, 0].astype(bool)
    assert on[:, 15:19].any(axis=0).all() and not on[:, :15].any() and not on[:, 19:].any()
    ranges = {(int(np.flatnonzero(on[:, i])[0]), int(np.flatnonzero(on[:, i])[-1])) for i in range(15, 19)}
    assert len(ranges) == 1
    a, b = ranges.pop()
    assert abs(a - 400) <= 7 and abs(b - 1299) <= 7
