"""Tests of nsgen.sim._poisson_jit: NumPy's Poisson draws of a PCG64 stream, compiled.

NumPy's own generator is the reference: the counts and the generator's state after the
draw must be NumPy's exactly, on means across both methods (multiplication below 10,
transformed rejection from 10), at the boundary, at 0 and far beyond the detector's range.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io._scan_normals import pcg_state, set_pcg_state
from nsgen.sim._poisson_jit import LAM_MAX, log_gamma_table, poisson_counts, poisson_rows

MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
MOD = 1 << 128


def same_as_numpy(lam: np.ndarray, seed: int, repeats: int = 1) -> None:
    ours_rng, numpy_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    ours = poisson_counts(lam, ours_rng, repeats, dtype=np.float64)
    want = numpy_rng.poisson(lam, size=(repeats,) + lam.shape)
    assert ours.shape == want.shape
    bad = np.flatnonzero(ours.ravel() != want.ravel())
    assert bad.size == 0, (seed, np.broadcast_to(lam, want.shape).ravel()[bad[:5]])
    assert ours_rng.bit_generator.state == numpy_rng.bit_generator.state


@pytest.mark.parametrize("seed", range(4))
def test_small_means_and_the_boundary_at_10(seed: int) -> None:
    """Means in (0, 10) (multiplication method), 0 (no draw), exactly 10 and the double
    just below it, 10 to 30 (rejection method, where ``k < 0`` and the exact test occur)."""
    rng = np.random.default_rng(100 + seed)
    lam = np.concatenate([rng.uniform(0, 10, 20_000), np.zeros(50), [10.0, np.nextafter(10.0, 0)] * 50,
                          rng.uniform(10, 30, 20_000), [5e-324, 1e-300, 1e-8]])
    rng.shuffle(lam)
    same_as_numpy(lam, seed)


@pytest.mark.parametrize("seed", range(3))
def test_detector_range_means(seed: int) -> None:
    """The complex mode's photon means (up to I0 = 4e4 times the beam profile, attenuated),
    as rows of a detector image."""
    rng = np.random.default_rng(200 + seed)
    lam = 4e4 * rng.uniform(0.3, 1.0, (8, 402, 362)) * np.exp(-rng.uniform(0, 1.2, (8, 402, 362)))
    same_as_numpy(lam, seed)


def test_huge_means_and_repeats() -> None:
    """Means up to NumPy's limit (counts beyond the log-factorial table, float64 counts
    rounded to float32 the same way) and draws repeated per mean in NumPy's order."""
    lam = np.array([1e5, 3.3e6, 1e9, 1e12, 1e15, 1e18, LAM_MAX, 17.0, 0.0, 2.0])
    same_as_numpy(lam, 5, repeats=200)
    a = poisson_counts(lam, np.random.default_rng(6), 3)
    b = np.random.default_rng(6).poisson(lam, size=(3, lam.size)).astype(np.float32)
    assert a.dtype == np.float32 and (a == b).all()


def test_table_length_does_not_change_values() -> None:
    """``log(k!)`` from the table or computed: the same counts and states."""
    lam = np.random.default_rng(7).uniform(10, 3000, 50_000)
    outs, states = [], []
    for n in (0, 40, 3500):
        st = pcg_state(np.random.PCG64(8))
        out = np.empty((1, lam.size))
        poisson_rows(st, lam, out, log_gamma_table(n))
        outs.append(out)
        states.append(st)
    assert (outs[0] == outs[1]).all() and (outs[0] == outs[2]).all()
    assert (states[0] == states[1]).all() and (states[0] == states[2]).all()


def test_log_gamma_table_values() -> None:
    """``log Gamma(k + 1) = log k!``: exactly 0 for k = 0, 1, close to math.lgamma beyond."""
    import math
    t = log_gamma_table(200)
    assert t[0] == 0.0 and t[1] == 0.0
    np.testing.assert_allclose(t, [math.lgamma(k + 1) for k in range(200)], rtol=1e-13, atol=1e-13)


def _bits_whose_next_output_is(value: int) -> np.random.PCG64:
    """A PCG64 whose next 64-bit output is ``value`` (the new state's high half 0, so no
    rotation, and its low half ``value``)."""
    bits = np.random.PCG64(1)
    s = bits.state
    inc = s["state"]["inc"]
    s["state"]["state"] = ((value - inc) * pow(MULTIPLIER, -1, MOD)) % MOD
    bits.state = s
    return bits


def test_uniform_exactly_zero_in_the_rejection_method() -> None:
    """A first uniform of exactly 0 (``u = -0.5``, ``us = 0``): NumPy rejects the attempt
    and draws again; so do we, and the states agree."""
    for lam in (10.0, 100.0, 5e4):
        a, b = _bits_whose_next_output_is(0), _bits_whose_next_output_is(0)
        ours = poisson_counts(np.array([lam]), np.random.Generator(a), 3)
        want = np.random.Generator(b).poisson(lam, size=(3, 1))
        assert (ours == want).all() and a.state == b.state


def test_buffered_32_bit_word_is_kept() -> None:
    """NumPy's Poisson uses whole 64-bit outputs and leaves a buffered 32-bit half alone."""
    ours_rng, numpy_rng = np.random.default_rng(9), np.random.default_rng(9)
    for g in (ours_rng, numpy_rng):
        g.integers(0, 2**32, dtype=np.uint32)   # buffers the upper half
    lam = np.array([3.0, 50.0, 0.0, 900.0])
    assert (poisson_counts(lam, ours_rng, 4) == numpy_rng.poisson(lam, size=(4, 4))).all()
    assert ours_rng.bit_generator.state == numpy_rng.bit_generator.state
    assert ours_rng.bit_generator.state["has_uint32"] == 1


def test_state_round_trip_continues_the_stream() -> None:
    bits = np.random.PCG64(10)
    st = pcg_state(bits)
    out = np.empty((1, 5))
    poisson_rows(st, np.full(5, 20.0), out, log_gamma_table(10))
    set_pcg_state(bits, st)
    g = np.random.default_rng(10)
    g.poisson(np.full(5, 20.0))
    assert np.random.Generator(bits).random() == g.random()


def test_shapes_and_empty() -> None:
    g = np.random.default_rng(0)
    assert poisson_counts(np.zeros((0, 3)), g, 2).shape == (2, 0, 3)
    assert poisson_counts(np.full((2, 3), 4.0), g).shape == (1, 2, 3)
    assert poisson_counts(np.float64(12.0), g, 5).shape == (5,)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, 2 * LAM_MAX])
def test_invalid_means_raise(bad: float) -> None:
    with pytest.raises(ValueError, match="Poisson means"):
        poisson_counts(np.array([1.0, bad]), np.random.default_rng(0))


def test_other_bit_generators_are_refused() -> None:
    with pytest.raises(TypeError, match="PCG64"):
        poisson_counts(np.ones(2), np.random.Generator(np.random.MT19937(0)))
