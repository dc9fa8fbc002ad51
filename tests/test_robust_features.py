"""nsgen.prep.robust_features: what the robust detector keeps of each row, from that row
alone, and from the raw projections the same values."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.prep.normalise import flat_field_log
from nsgen.prep.robust_features import (bin_means, feature_layout, raw_bin_means,
                                        raw_feature_parts, row_feature_parts, row_features)


def test_row_features_need_no_other_rows():
    """A row's features come from that row alone (pass one of nsgen.stages.robust reads no
    halo): features of a block are those of its rows one by one, and their layout is
    feature_layout's."""
    x = np.random.default_rng(4).normal(0, 0.01, (200, 5, 40)).astype(np.float32)
    x[:, 2, 7] = 3.0  # a strong defect
    feat = row_features(x)
    sizes, bins = feature_layout(200)
    assert feat.shape == (5, sum(sizes) + len(sizes) + bins, 40)
    for j in range(5):
        assert np.array_equal(row_features(x[:, j:j + 1])[0], feat[j])
    strong = feat[:, sum(sizes):sum(sizes) + len(sizes)]
    assert strong[2, :, 7].all() and strong.sum() == len(sizes)


def test_features_from_raw_projections_equal_those_of_the_normalised_volume():
    """raw_feature_parts (pass one's path: no normalised volume) gives row_feature_parts'
    ranks and strong defects of flat_field_log's volume, strong defects included."""
    rng = np.random.default_rng(8)
    raw = rng.normal(2e4, 300, (200, 4, 48)).astype(np.uint16)
    raw[:, 1, 9] = 60000   # a saturated column: a strong defect
    flat = np.full((4, 48), 4e4, np.float32)
    dark = np.full((4, 48), 100, np.float32)
    x = flat_field_log(raw, flat, dark, sinograms_first=False)
    want = row_feature_parts(x, means=False)[0]
    got = raw_feature_parts(raw, flat, dark)
    assert np.array_equal(got, want)
    sizes = feature_layout(200)[0]
    assert got[1, sum(sizes):, 9].all()


@pytest.mark.parametrize("n_k, dtype", [(1801, "<u2"), (200, "<f4"), (97, "<u2")])
def test_bin_means_from_raw_projections_equal_those_of_the_normalised_volume(n_k, dtype):
    """raw_bin_means (pass three's RowBins: no normalised rows stored) gives bin_means'
    values of flat_field_log's volume, row by row (none with one angle block)."""
    rng = np.random.default_rng(n_k)
    raw = rng.normal(2e4, 300, (n_k, 3, 37)).astype(dtype)
    raw[:, 1, :4] = 0      # below the dark: the lowest ratio
    flat = rng.uniform(3e4, 5e4, (3, 37)).astype(np.float32)
    flat[2, 5] = np.nan    # a pixel without signal
    dark = np.full((3, 37), 100, np.float32)
    want = bin_means(flat_field_log(raw, flat, dark, sinograms_first=False))
    assert np.array_equal(raw_bin_means(raw, flat, dark), want)
    assert np.array_equal(raw_bin_means(raw, flat, dark, (1, 2)), want[1:2])
    assert want.shape[1] == feature_layout(n_k)[1]
