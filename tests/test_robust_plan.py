"""Tests for nsgen.prep._robust_plan: the register passes sort, the pruned selections select,
and the generated kernels module is the generator's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nsgen.prep import _robust_plan as plan


def apply(comps, v):
    v = v.copy()
    for a, b in comps:
        v[[a, b]] = np.sort(v[[a, b]], axis=0)
    return v


def test_generated_module_is_the_generators_output():
    path = Path(plan.__file__).with_name("_robust_net.py")
    assert path.read_text() == plan.source(), "run python -m nsgen.prep._robust_plan"


@pytest.mark.parametrize("n", [1, 3, 16, 20, 64, 100])
def test_passes_sort(n):
    size, passes = plan.sort_plan(n)
    rng = np.random.default_rng(n)
    v = np.full((size, 50), np.inf)
    v[:n] = rng.integers(0, 9, (n, 50))   # ties
    want = np.sort(v, axis=0)
    for name, groups in passes:
        comps = plan.template(name)
        for g in groups:
            v[g] = apply(comps, v[g])
    assert np.array_equal(v, want)


@pytest.mark.parametrize("n,keep", [(17, (8,)), (30, (14, 15)), (5, (0, 4))])
def test_selection_selects(n, keep):
    v = np.random.default_rng(n).normal(size=(n, 200))
    got = apply(plan.selection(n, keep), v)
    assert np.array_equal(got[list(keep)], np.sort(v, axis=0)[list(keep)])


@pytest.mark.parametrize("n,runs", [(192, 32), (64, 16), (40, 8)])
def test_passes_merge_sorted_runs(n, runs):
    size, passes = plan.sort_plan(n, runs)
    rng = np.random.default_rng(n)
    v = np.full((size, 30), np.inf)
    v[:n] = rng.normal(size=(n, 30))
    for r0 in range(0, n, runs):
        v[r0:r0 + runs] = np.sort(v[r0:r0 + runs], axis=0)
    want = np.sort(v, axis=0)
    for name, groups in passes:
        for g in groups:
            v[g] = apply(plan.template(name), v[g])
    assert np.array_equal(v, want)
