"""Tests of nsgen.prep.detect: the detectors by name, the default and how it is chosen."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.errors import NsgenError
from nsgen.prep.detect import (DEFAULT_DETECTOR, DETECTORS, LARIX_OPTIONS, choose_detector,
                               detect_volume, halo)
from nsgen.prep.detect_params import DetectParams


def test_the_default_is_robust_and_listed_first():
    assert DEFAULT_DETECTOR == "robust" == DETECTORS[0] and "larix" in DETECTORS


@pytest.mark.parametrize("option", LARIX_OPTIONS)
def test_any_larix_option_selects_larix_when_no_detector_is_named(option):
    assert choose_detector(None, [option]) == "larix"
    assert choose_detector("larix", [option]) == "larix"
    with pytest.raises(NsgenError, match=rf"^{option}: option\(s\) of --detector larix; "
                                         r"--detector robust has none"):
        choose_detector("robust", [option])


def test_named_detectors_are_checked():
    assert choose_detector(None) == "robust" and choose_detector("larix") == "larix"
    with pytest.raises(NsgenError, match="unknown --detector 'vo'; choose one of: robust, larix"):
        choose_detector("vo")


def test_halo_follows_the_detector():
    p = DetectParams.for_scan((181, 40, 64))
    assert halo("larix", p, 40) == p.halo
    # two decisions, and a row's stacks read the decided candidates of the 4 rows each side
    # (its widening those of the rows beside it)
    assert halo("robust", p, 40) == 5 * (min(p.min_stripe_depth, 39) // 2) + 4


def test_detect_volume_by_name_finds_a_stripe():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, (181, 8, 64)).astype(np.float32)
    x[:, 3, 30:32] += 0.05
    m = detect_volume(x, "robust", DetectParams.for_scan(x.shape))
    assert np.flatnonzero(m.any(axis=(0, 2))).tolist() == [3]
    assert np.flatnonzero(m[:, 3].any(axis=0)).tolist() == [30, 31]
