"""The decision's mask held per angle bin (``decide_bins``, twentieth round) equals the mask
held per angle, step by step: refine, the confirmation, the candidates, the widening along
the rows and the stacks give, on a plane per bin, their per-angle results at every angle
of the bin (the per-angle paths, kept, are the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.io.spill import Spill
from nsgen.prep import robust_features, robust_mass, robust_rows, robust_stack, stripe_robust
from nsgen.prep.robust_angles import angle_bins, expand_planes, plane_edges
from nsgen.prep.robust_mass import volume_mass

from helpers import normalised

N_K = 721   # (bins of 2 angles: below 512 angles every bin is one angle)


@pytest.fixture(scope="module", params=[(8, 20000.0, 32), (5, 4000.0, 40)])
def decided(request, tmp_path_factory):
    """A labelled scan (seed 8: the confirmation fires in rows 1-4; seed 5: rows are
    widened) and what the decision of every row reads: features, offsets, traces."""
    seed, i0, n_j = request.param
    path = tmp_path_factory.mktemp("bins") / f"s{seed}.nxs"
    write_scan(path, n_angles=N_K, n_rows=n_j, n_columns=256 if seed == 8 else 96,
               seed=seed, i0=i0, labelled=True)
    x = normalised(path)
    feat = robust_features.row_features(x)
    depth = 8
    qs = stripe_robust.row_offsets(feat, 0, (0, n_j), n_j, N_K, depth)
    xb = robust_features.split_features(feat, N_K)[2]
    return qs, xb, volume_mass(xb), n_j, depth


def test_each_step_per_bin_equals_the_step_per_angle(decided, monkeypatch):
    """refine and confirm, run on the per-bin mask inside ``decide_bins``, leave at every
    angle what they leave run per angle on its expansion; the candidates read alike."""
    qs, xb, mass, n_j, depth = decided
    calls = {"refine": 0, "confirm": 0, "candidates": 0}
    refine, confirm, cands = stripe_robust.refine, robust_mass.confirm, \
        robust_mass.candidate_blocks
    edges = robust_features.block_edges(N_K)
    bins = angle_bins(edges, N_K)

    def both_refine(out, xb_, bins_, edges_, evidence, zb, per_bin=False):
        ref = expand_planes(out, bins_)
        refine(ref, xb_, bins_, edges_, evidence, zb)
        refine(out, xb_, bins_, edges_, evidence, zb, per_bin=per_bin)
        assert per_bin and np.array_equal(expand_planes(out, bins_), ref)
        calls["refine"] += 1

    def both_confirm(out, q, z, trace, rows, edges_, bins_, per_bin=False):
        ref = expand_planes(out, bins_)
        n_ref = confirm(ref, q, z, trace, rows, edges_, bins_)
        n = confirm(out, q, z, trace, rows, edges_, bins_, per_bin=per_bin)
        assert per_bin and n == n_ref and np.array_equal(expand_planes(out, bins_), ref)
        calls["confirm"] += n
        return n

    def both_candidates(out, z, edges_):
        got = cands(out, z, edges_)
        if out.shape[0] == bins.size - 1:   # (a per-bin mask: its blocks' planes)
            assert np.array_equal(got, cands(expand_planes(out, bins), z, edges))
            calls["candidates"] += 1
        return got

    monkeypatch.setattr(stripe_robust, "refine", both_refine)
    monkeypatch.setattr(stripe_robust._mass, "confirm", both_confirm)
    monkeypatch.setattr(stripe_robust._mass, "candidate_blocks", both_candidates)
    planes = stripe_robust.decide_bins(qs, 0, xb, (0, n_j), n_j, N_K, depth=depth, mass=mass,
                                       scores=[])
    assert planes.shape == (bins.size - 1, n_j, qs.shape[2] - 1) and planes.any()
    assert calls["refine"] == 1 and calls["candidates"] == 2   # (confirm's and its own)
    assert calls["confirm"] > 0 or n_j == 40   # (seed 8: fired)


def test_the_stage_steps_per_bin_equal_them_per_angle(decided):
    """The stage's steps after the decision (stacks, widening along the rows, their
    flags written) on the per-bin mask equal them on the per-angle mask, at every angle."""
    qs, xb, mass, n_j, depth = decided
    edges = robust_features.block_edges(N_K)
    bins = plane_edges(edges, N_K)
    scores: list[np.ndarray] = []
    planes = stripe_robust.decide_bins(qs, 0, xb, (0, n_j), n_j, N_K, depth=depth, mass=mass,
                                       scores=scores)
    angles = expand_planes(planes, bins)
    for rows in ((0, n_j), (3, n_j - 5)):
        f_bins = robust_stack.stack_flags(planes, 0, scores, mass, rows, edges, bins,
                                          per_bin=True)
        f_angles = robust_stack.stack_flags(angles, 0, scores, mass, rows, edges, bins)
        assert [(int(bins[k0]), int(bins[k1]), *rest) for k0, k1, *rest in f_bins] == f_angles
        got = robust_stack.apply(robust_rows.grow_rows(planes.copy(), 0, xb, scores, rows,
                                                       edges, bins), f_bins)
        want = robust_stack.apply(robust_rows.grow_rows(angles.copy(), 0, xb, scores, rows,
                                                        edges), f_angles)
        assert np.array_equal(expand_planes(got, bins), want)


def test_a_row_widened_per_bin_as_per_angle():
    """A step over angles 200-499 (of 720: bins of 2) in columns 20-21 of every row,
    flagged in row 1: rows 0 and 2 are widened into, per bin as per angle."""
    rng = np.random.default_rng(1)
    n_k, n_j, n_i = 720, 3, 40
    edges = np.arange(7) * 120
    bins = angle_bins(edges, n_k)
    assert np.diff(bins).max() == 2
    x = rng.normal(0, 0.002, (n_k, n_j, n_i))
    x[200:500, :, 20:22] += 0.01
    xb = x.reshape(n_k // 2, 2, n_j, n_i).mean(axis=1).transpose(1, 0, 2).copy()
    m = np.zeros((n_k, n_j, n_i), np.uint8)
    m[200:500, 1, 20:22] = 1
    zb = np.zeros((6, n_j, n_i))
    zb[:, :, 20:22] = 2.0
    sc = [zb, zb, m.any(axis=0)]
    want = robust_rows.grow_rows(m.copy(), 0, xb, sc, (0, 3), edges)
    got = robust_rows.grow_rows(m[bins[:-1]].copy(), 0, xb, sc, (0, 3), edges, bins)
    assert np.array_equal(expand_planes(got, bins), want)
    assert [np.flatnonzero(want[:, j].any(axis=0)).tolist() for j in range(3)] == [[20, 21]] * 3


def test_stacks_per_bin_as_per_angle():
    """``robust_stack.stack_flags``' example (bins of 5 angles), with and without another
    stripe's flag in a stacked row's box (its shift explained): per bin as per angle."""
    from nsgen.prep.robust_mass import mass_trace
    edges, bins = np.arange(0, 361, 60), np.arange(0, 361, 5)
    rng = np.random.default_rng(1)
    m0 = rng.normal(0, 0.2, (12, 72))
    m0[3:6, :24] += 4 * np.log(1.06)
    trace = mass_trace(m0)
    cand = np.zeros((12, 6, 32), np.int8)
    cand[3:6, 0, 20:24] = 1
    q = np.zeros((12, 6, 33))
    q[3:6, 0, 20:24] = np.log(1.06)
    mask = np.zeros((360, 12, 32), np.uint8)
    for other in (False, True):
        if other:
            mask[40:70, 4, 2] = 1     # (bins 8-13 of row 4, far from the stack's columns)
        planes = mask[bins[:-1]].copy()
        f_angles = robust_stack.stack_flags(mask, 0, [q, q, q, cand, q], trace, (0, 12),
                                            edges, bins)
        f_bins = robust_stack.stack_flags(planes, 0, [q, q, q, cand, q], trace, (0, 12),
                                          edges, bins, per_bin=True)
        assert [(int(bins[k0]), int(bins[k1]), *r) for k0, k1, *r in f_bins] == f_angles
        assert np.array_equal(expand_planes(robust_stack.apply(planes, f_bins), bins),
                              robust_stack.apply(mask.copy(), f_angles))
        # (row 4 explained, rows 3 and 5 are no stack)
        assert sorted({r for _, _, r, _, _ in f_angles}) == ([] if other else [3, 4, 5])


def test_a_band_of_bin_planes_is_written_at_every_angle(tmp_path):
    """``Spill.write_band`` with ``planes``: each bin's packed plane at each of its angles,
    the bytes of the expanded band written as it was."""
    rng = np.random.default_rng(3)
    bins = angle_bins(robust_features.block_edges(N_K), N_K)
    band = rng.integers(0, 256, (bins.size - 1, 3, 5), np.uint8)
    a = Spill.create(tmp_path / "a.u1", (N_K, 7, 5), "uint8")
    b = Spill.create(tmp_path / "b.u1", (N_K, 7, 5), "uint8")
    a.write_band(2, band, planes_first=True,
                 planes=np.repeat(np.arange(bins.size - 1), np.diff(bins)))
    b.write_band(2, expand_planes(band, bins), planes_first=True)
    assert np.array_equal(a.read_rows(0, N_K), b.read_rows(0, N_K))
    with pytest.raises(ValueError):
        a.write_band(0, band, planes_first=True, planes=np.zeros(N_K - 1, np.intp))
