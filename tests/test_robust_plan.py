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


def test_a_generated_comparator_is_the_comparisons_it_stands_for_bit_for_bit():
    # every pair of float32 values that can tie or order differently, signed zeros included:
    # the generated comparator compiled as the kernels are (fastmath: no NaN only) returns
    # exactly what ``u if u <= v else v``, ``v if u <= v else u`` mean (compiled without
    # fastmath); the ternaries it replaced, compiled under fastmath, gave the same numbers
    # but put +0 first on a tie of -0 and +0
    import numba as nb
    src = ("def cx(v0, v1):\n" + plan._cx(0, 1, "    ") + "\n    return v0, v1\n")
    scope: dict = {}
    exec(src, {}, scope)  # noqa: S102 - the generator's own line
    generated = nb.njit(fastmath={"nnan"})(scope["cx"])

    def ternaries(u, v):
        return (u if u <= v else v), (v if u <= v else u)

    written = nb.njit(ternaries)
    fast = nb.njit(fastmath={"nnan"})(ternaries)
    values = np.array([-np.inf, -2.5, -1e-38, -0.0, 0.0, 1e-45, 3.0, np.inf], np.float32)
    for u in values:
        for v in values:
            got = np.array(generated(u, v), np.float32)
            assert got.tobytes() == np.array(written(u, v), np.float32).tobytes(), (u, v)
            assert (got == np.array(fast(u, v), np.float32)).all(), (u, v)
