"""Tests of nsgen.io._scan_normals: NumPy's float32 normals of a PCG64 stream, compiled.

NumPy's own generator is the reference. Its next 32-bit word can be chosen (``has_uint32``
and ``uinteger`` of ``PCG64.state``), and so can the 64-bit output after it (the state
before an output is the inverse LCG step of the state that gives it), so every table
entry, every rejection threshold and the tail are checked against NumPy directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io._scan_normals import KI, WI, pcg_state, set_pcg_state, standard_normals

MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
MOD = 1 << 128
INC = np.random.PCG64(1).state["state"]["inc"]
MARK = 5 | (3 << 9)  # a word the quick test accepts (layer 5, magnitude 3, positive)


def bits_with(word: int, then: int | None = None) -> np.random.PCG64:
    """A PCG64 whose next 32-bit word is ``word`` and, if given, next 64-bit output ``then``."""
    bits = np.random.PCG64(1)
    s = bits.state
    s["has_uint32"], s["uinteger"] = 1, word
    if then is not None:  # a state whose output is `then`: high half 0 (rotation 0), low half `then`
        s["state"]["state"] = ((then - INC) * pow(MULTIPLIER, -1, MOD)) % MOD
    bits.state = s
    return bits


def numpy_normal(bits: np.random.PCG64) -> np.float32:
    return np.random.Generator(bits).standard_normal(dtype=np.float32)


def ours(bits: np.random.PCG64, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    st = pcg_state(bits)
    z = np.empty(n, np.float32)
    standard_normals(st, z)
    return z, st


def test_quick_accept_bound_and_width_of_every_layer_are_numpys() -> None:
    """Magnitude ``KI[layer] - 1`` is accepted at once by NumPy (its stream does not move)
    and ``KI[layer]`` is not; the value of magnitude 1 is ``WI[layer]``."""
    for layer in range(256):
        for magnitude, accepted in ((int(KI[layer]) - 1, True), (int(KI[layer]), False)):
            if magnitude < 0 or magnitude >= 2**23:
                continue
            bits = bits_with(layer | (magnitude << 9))
            before = bits.state["state"]["state"]
            numpy_normal(bits)
            assert (bits.state["state"]["state"] == before and not bits.state["has_uint32"]) == accepted, layer
        if KI[layer] > 1:
            assert numpy_normal(bits_with(layer | (1 << 9))) == WI[layer]


def _threshold(layer: int, magnitude: int) -> int:
    """Smallest 24-bit uniform that NumPy's wedge test rejects (it accepts every smaller one)."""
    lo, hi = 0, 2**24
    x = np.float32(magnitude) * WI[layer]
    while lo < hi:
        mid = (lo + hi) // 2
        if numpy_normal(bits_with(layer | (magnitude << 9), (MARK << 32) | (mid << 8))) == x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@pytest.mark.parametrize("layers", [range(1, 86), range(86, 171), range(171, 256)])
def test_wedge_rejections_match_numpy_on_both_sides_of_its_threshold(layers: range) -> None:
    """In every layer, a word the quick test rejects followed by uniforms just below and at
    NumPy's acceptance threshold: the same values and the same stream position (the density
    table ``FI`` and the float32/float64 arithmetic of the test are NumPy's)."""
    rng = np.random.default_rng(0)
    for layer in layers:
        for magnitude in (int(KI[layer]), int(rng.integers(KI[layer], 2**23))):
            if magnitude >= 2**23:
                continue
            t = _threshold(layer, magnitude)
            for u in {max(t - 1, 0), min(t, 2**24 - 1)}:
                a = bits_with(layer | (magnitude << 9), (MARK << 32) | (u << 8))
                b = bits_with(layer | (magnitude << 9), (MARK << 32) | (u << 8))
                z, st = ours(a, 2)
                want = np.random.Generator(b).standard_normal(2, dtype=np.float32)
                assert z.tobytes() == want.tobytes(), (layer, magnitude, u)
                set_pcg_state(a, st)
                assert a.state == b.state


def test_tail_draws_match_numpy() -> None:
    """Base-layer words beyond the quick bound go to the tail (log1p of uniforms, sign from
    bit 8 of the magnitude): 3000 of them, each with a different stream after it."""
    rng = np.random.default_rng(1)
    for _ in range(3000):
        magnitude = int(rng.integers(KI[0], 2**23))
        word = (magnitude << 9) | (int(rng.integers(2)) << 8)
        then = int(rng.integers(2**63)) * 2 + int(rng.integers(2))
        z, _ = ours(bits_with(word, then))
        assert z[0] == numpy_normal(bits_with(word, then))


@pytest.mark.parametrize("seed, skip", [(0, 0), (1, 1), (12345, 3)])
def test_long_streams_are_numpys_bit_for_bit_and_end_in_its_state(seed: int, skip: int) -> None:
    """Two million values (thousands of rejections, hundreds of tail draws), starting with or
    without a buffered half word; the generator then continues exactly as NumPy's does."""
    bits, ref = np.random.PCG64(seed), np.random.Generator(np.random.PCG64(seed))
    if skip:
        np.random.Generator(bits).random(skip, dtype=np.float32)
        ref.random(skip, dtype=np.float32)
    z, st = ours(bits, 2_000_000)
    want = ref.standard_normal(2_000_000, dtype=np.float32)
    assert z.tobytes() == want.tobytes()
    set_pcg_state(bits, st)
    assert bits.state == ref.bit_generator.state
    assert np.random.Generator(bits).integers(2**62) == ref.integers(2**62)


def test_state_array_round_trip() -> None:
    bits = np.random.PCG64(99)
    np.random.Generator(bits).random(dtype=np.float32)  # a buffered half word
    st = pcg_state(bits)
    assert st.dtype == np.uint64 and st[4] == 1
    other = np.random.PCG64(0)
    set_pcg_state(other, st)
    assert other.state == bits.state
