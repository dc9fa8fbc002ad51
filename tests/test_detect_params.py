"""Tests for nsgen.prep.detect_params: defaults, derivation from the scan's size, checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nsgen.prep.detect_params import DetectParams


def test_defaults_are_the_seed_values_and_frozen():
    p = DetectParams()
    assert dataclasses.astuple(p) == (250, 3, 0.63, 600, 30, 22, 85.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.size = 3  # type: ignore[misc]
    assert DetectParams.for_scan((1801, 2160, 2560)) == p


def test_derivation_scales_with_the_scan():
    p = DetectParams.for_scan((181, 8, 256))
    assert (p.size, p.min_stripe_length) == (round(250 * 181 / 1801), round(600 * 181 / 1801))
    assert (p.radius, p.min_stripe_depth, p.min_stripe_width) == (3, 7, 2)
    assert (p.threshold, p.sensitivity_perc) == (0.63, 85.0)
    p = DetectParams.for_scan((3001, 22, 26))  # the k11 scan's shape
    assert (p.size, p.min_stripe_length, p.min_stripe_depth, p.min_stripe_width) == (
        417, 1000, 21, 1)
    assert DetectParams.for_scan((6, 2, 4)).radius == 1


def test_derived_values_always_fit():
    """A parameter the user never gave is never the reason for a refusal."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = tuple(int(v) for v in rng.integers((2, 2, 4), (4000, 300, 4000)))
        p = DetectParams.for_scan(shape)  # type: ignore[arg-type]
        assert p.problems(shape) == []  # type: ignore[arg-type]


def test_given_values_are_kept_and_all_problems_reported_together():
    p = DetectParams.for_scan((181, 8, 256), {"threshold": 0.5, "size": 40})
    assert (p.threshold, p.size) == (0.5, 40)
    with pytest.raises(ValueError) as err:
        DetectParams.for_scan((181, 8, 256), {"size": 100, "min_stripe_depth": 8,
                                              "sensitivity_perc": 0.0},
                              name=lambda f: "--" + f.replace("_", "-"))
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("--size must be in 1..90", "--min-stripe-depth must be in 0..7",
                 "--sensitivity-perc must be in (0, 100]"):
        assert part in msg
    assert "width" not in msg and "length" not in msg  # derived ones are fine


def test_scans_too_small_for_any_parameters():
    for shape in ((1801, 1, 2560), (1, 32, 2560), (1801, 32, 3)):
        with pytest.raises(ValueError, match="too small for (Larix )?stripe detection"):
            DetectParams.for_scan(shape)


def test_robust_checks_only_its_row_window():
    """The robust detector reads only min_stripe_depth: a 1-row or 3-column scan fits, a
    1-angle scan does not, and a given depth is still checked against the rows."""
    assert DetectParams.for_scan((1801, 1, 2560), detector="robust").min_stripe_depth == 0
    assert DetectParams.for_scan((181, 8, 3), detector="robust").min_stripe_depth == 7
    with pytest.raises(ValueError, match="needs at least 2 angles"):
        DetectParams.for_scan((1, 32, 2560), detector="robust")
    with pytest.raises(ValueError, match="min_stripe_depth must be in 0..7"):
        DetectParams.for_scan((181, 8, 256), {"min_stripe_depth": 8}, detector="robust")


def test_types_and_unknown_names():
    with pytest.raises(TypeError, match="size must be an integer"):
        DetectParams(size=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="radius must be an integer"):
        DetectParams(radius=True)
    assert DetectParams(size=np.int64(7)).size == 7
    with pytest.raises(ValueError, match="unknown detection parameter"):
        DetectParams.for_scan((181, 8, 256), {"sise": 4})


def test_merge_counts_in_float32():
    assert DetectParams().merge_counts() == (300, 509, 15, 25)
