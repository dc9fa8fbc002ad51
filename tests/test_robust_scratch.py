"""nsgen.stages.robust_scratch: the robust passes' scratch (the features spilled per angle
set, the angle-bin means of the rows the decision asks for, from the scan)."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.io.spill import Spill
from nsgen.prep.robust_features import row_feature_parts
from nsgen.scan import ScanLayout
from nsgen.stages.robust_scratch import FeatureSpills, RowBins
from nsgen.stages.scan_source import ScanSource

from helpers import normalised


def test_row_bins_are_the_feature_pass_means(robust_scan):
    """Rows of RowBins equal the bin means the features kernel takes on the way (the same
    bytes), however they are indexed."""
    x = normalised(robust_scan)
    means = row_feature_parts(x)[1]
    xb = RowBins(ScanSource(str(robust_scan), ScanLayout()), x.shape, "<u2", (4, 11))
    assert xb.shape == (7, means.shape[1], 96) and xb.rows == []
    assert xb[2].tobytes() == means[6].tobytes()
    assert np.array_equal(xb[3, :, 5:9], means[7, :, 5:9])
    assert np.array_equal(xb[-1][:, [0, 3]], means[10][:, [0, 3]])
    assert xb.rows == [2, 3, 6]
    assert np.asarray(xb).tobytes() == means[4:11].tobytes()


@pytest.mark.parametrize("memory_rows", [0, 3, 10])
def test_feature_spills_give_back_each_set_as_written(tmp_path, memory_rows):
    """FeatureSpills keeps each angle set's fields and the strong flags in their own volume
    and reads rows back, mapped or (rows in memory and on disk) read, as the C-contiguous
    arrays of those fields."""
    sizes, n_rows, n_cols = [3, 2, 4], 10, 5
    feat = np.random.default_rng(0).random((n_rows, sum(sizes) + len(sizes), n_cols),
                                           dtype=np.float32)
    spills = FeatureSpills.create(tmp_path / "f.f32", tmp_path / "m", n_rows, sizes, n_cols,
                                  memory_rows)
    assert spills.shape == feat.shape
    assert all(isinstance(s, Spill) for s in spills.spills)
    cut = np.cumsum([0, *sizes, len(sizes)])
    for lo, hi in ((0, 6), (6, 10)):
        spills.write_rows(lo, [feat[lo:hi, a:b] for a, b in zip(cut[:-1], cut[1:])])
    for lo, hi in ((0, 10), (2, 5), (3, 4)):
        got = spills.read(lo, hi)
        assert len(got) == len(sizes) + 1
        for a, b, arr in zip(cut[:-1], cut[1:], got):
            assert arr.flags.c_contiguous and np.array_equal(arr, feat[lo:hi, a:b])
    spills.unlink()
    assert not list(tmp_path.iterdir())
