"""Tests for nsgen.prep.robust_angles: stripes over part of the scan."""

from __future__ import annotations

import numpy as np

from nsgen.prep.robust_angles import best_interval, is_step, run_scores, stands_out
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
    point comes with the rest of its sinusoid)."""
    x = np.random.default_rng(1).normal(0, 0.01, (360, 8, 64)).astype(np.float32)
    x[120:240, 3, 20:23] += 0.03
    m = robust_stripe_mask(x)
    assert m[120:240, 3, 20:23].all() and m.sum() == 120 * 3
    x[300:330, 3, 20:23] -= 0.04
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
    without the pooling it is lost (the labelled benchmark's partial stripes at i0 = 4000)."""
    import nsgen.prep.stripe_robust as sr
    x = np.random.default_rng(3).normal(0, 0.01, (360, 8, 64)).astype(np.float32)
    x[120:240, 3, 20:24] += 0.013
    m = robust_stripe_mask(x)
    assert np.flatnonzero(m.any(axis=(0, 2))).tolist() == [3]
    assert np.flatnonzero(m.any(axis=(0, 1))).tolist() == [20, 21, 22, 23]
    on = np.flatnonzero(m[:, 3, 20])
    assert abs(on[0] - 120) <= 10 and abs(on[-1] + 1 - 240) <= 10
    monkeypatch.setattr(sr, "RUN_POOL_FLOOR", np.inf)
    assert not robust_stripe_mask(x).any()
