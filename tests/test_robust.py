"""nsgen.stages.robust: the robust detector's passes over a scan (scratch in memory and on
disk, the bin means computed for the rows the decision asks for)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.io.spill import Spill
from nsgen.modes.real import bad_pixels_of
from nsgen.prep.detect import detect_volume
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.robust_features import row_feature_parts
from nsgen.scan import ScanLayout, open_scan
from nsgen.stages import robust
from nsgen.stages.scan_source import ScanSource

from helpers import normalised


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A labelled scan of 6 angle blocks (stripes over part of the scan among them)."""
    path = tmp_path_factory.mktemp("robust") / "5000.nxs"
    write_scan(path, n_angles=360, n_rows=20, n_columns=96, seed=7, labelled=True)
    return path


def test_row_bins_are_the_feature_pass_means(scan):
    """Rows of RowBins equal the bin means the features kernel takes on the way (the same
    bytes), however they are indexed."""
    x = normalised(scan)
    means = row_feature_parts(x)[1]
    xb = robust.RowBins(ScanSource(str(scan), ScanLayout()), x.shape, "<u2", (4, 11))
    assert xb.shape == (7, means.shape[1], 96) and xb.rows == []
    assert xb[2].tobytes() == means[6].tobytes()
    assert np.array_equal(xb[3, :, 5:9], means[7, :, 5:9])
    assert np.array_equal(xb[-1][:, [0, 3]], means[10][:, [0, 3]])
    assert xb.rows == [2, 3, 6]
    assert np.asarray(xb).tobytes() == means[4:11].tobytes()


@pytest.mark.parametrize("kept", [0, 7, 20])
def test_mask_with_scratch_in_memory_and_on_disk_equals_the_library(scan, tmp_path,
                                                                     monkeypatch, capsys,
                                                                     kept):
    """The archive holds the whole-volume mask whether the scratch rows are in memory, on
    disk or split; the decision asked for some rows' bin means (stripes over part of the
    scan); no scratch file is left in /dev/shm."""
    from nsgen import mask as mask_command
    from nsgen.io import spill
    monkeypatch.setattr(spill, "memory_rows", lambda *a, **k: kept)
    archive = tmp_path / "m.npz"
    assert mask_command.main(["--h5", str(scan), "-a", str(archive), "-C", "3", "-v"]) == 0
    err = capsys.readouterr().err
    assert f"scratch: {kept} of 20 rows in memory" in err
    asked = int(err.split("bin-mean rows ")[1].split(",")[0])
    assert asked > 0
    x = normalised(scan)
    with np.load(archive) as z:
        got = z["m5000"]
    want = detect_volume(x, "robust", DetectParams.for_scan(x.shape))
    # dead and saturated pixels are flagged at every angle after detection
    want |= bad_pixels_of(ScanSource(str(scan), ScanLayout())).mask[None]
    assert np.array_equal(got, want)
    assert not [p for p in os.listdir("/dev/shm") if f"{os.getpid()}-robust" in p]


@pytest.mark.parametrize("memory_rows", [0, 3, 10])
def test_feature_spills_give_back_each_set_as_written(tmp_path, memory_rows):
    """FeatureSpills keeps each angle set's fields and the strong flags in their own volume
    and reads rows back, mapped or (rows in memory and on disk) read, as the C-contiguous
    arrays of those fields."""
    sizes, n_rows, n_cols = [3, 2, 4], 10, 5
    feat = np.random.default_rng(0).random((n_rows, sum(sizes) + len(sizes), n_cols),
                                           dtype=np.float32)
    spills = robust.FeatureSpills.create(tmp_path / "f.f32", tmp_path / "m", n_rows, sizes,
                                         n_cols, memory_rows)
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


def test_raw_feature_fields_are_the_feature_parts_apart(scan):
    """The first pass writes raw_feature_fields: raw_feature_parts' fields, not joined."""
    from nsgen.prep.robust_features import raw_feature_fields, raw_feature_parts
    with open_scan(str(scan)) as s:
        rows = slice(0, s.shape[1])
        raw, flat, dark = s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows)
    fields = raw_feature_fields(raw, flat, dark)
    assert all(f.flags.c_contiguous and f.dtype == np.float32 for f in fields)
    assert np.array_equal(np.concatenate(fields, axis=1), raw_feature_parts(raw, flat, dark))


@pytest.mark.parametrize("chunk", [1, 4, 40])
def test_the_second_pass_over_a_scan_equals_the_library(tmp_path, capsys, chunk):
    """A labelled scan whose first decision flags defects over a few rows (hd 4): the
    fourth pass decides the rows near them again, whatever the chunking, and the archive
    holds the library's two-pass mask (which differs from the first decision)."""
    from nsgen import mask as mask_command
    from nsgen.prep import robust_features, stripe_robust
    from nsgen.prep.robust_second import excluded
    path = tmp_path / "s3.nxs"
    write_scan(path, n_angles=360, n_rows=40, n_columns=96, seed=3, labelled=True)
    archive = tmp_path / "m.npz"
    assert mask_command.main(["--h5", str(path), "-a", str(archive), "--detector", "robust",
                              "--min-stripe-depth", "8", "-C", str(chunk), "-v"]) == 0
    err = capsys.readouterr().err
    again = err.split("decide stripes again (robust) worker seconds: ")[1].split("\n")[0]
    assert "decide" in again, again
    x = normalised(path)
    p = DetectParams.for_scan(x.shape, {"min_stripe_depth": 8})
    want = detect_volume(x, "robust", p)
    feat = robust_features.row_features(x)
    qs = stripe_robust.row_offsets(feat, 0, (0, 40), 40, 360, 8)
    first = stripe_robust.decide_offsets(qs, 0, robust_features.split_features(feat, 360)[2], (0, 40),
                                         40, 360, depth=8)
    assert excluded(first.any(axis=0), 0, (0, 40), 4, 40).any()
    assert not np.array_equal(first, want)
    want |= bad_pixels_of(ScanSource(str(path), ScanLayout())).mask[None]
    with np.load(archive) as z:
        assert np.array_equal(z["ms3"], want)
