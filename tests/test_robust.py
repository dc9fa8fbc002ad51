"""nsgen.stages.robust: the robust detector's passes over a scan (scratch in memory and on
disk, the bin means computed for the rows the decision asks for)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nsgen.io.scan_writer import write_scan
from nsgen.modes.real import bad_pixels_of
from nsgen.prep.detect import detect_volume
from nsgen.prep.detect_params import DetectParams
from nsgen.scan import ScanLayout, open_scan
from nsgen.stages.scan_source import ScanSource

from helpers import normalised


@pytest.mark.parametrize("kept", [0, 7, 20])
def test_mask_with_scratch_in_memory_and_on_disk_equals_the_library(robust_scan, tmp_path,
                                                                     monkeypatch, capsys,
                                                                     kept):
    """The archive holds the whole-volume mask whether the scratch rows are in memory, on
    disk or split; the decision asked for some rows' bin means (stripes over part of the
    scan); no scratch file is left in /dev/shm."""
    from nsgen import mask as mask_command
    from nsgen.io import spill
    monkeypatch.setattr(spill, "memory_rows", lambda *a, **k: kept)
    archive = tmp_path / "m.npz"
    assert mask_command.main(["--h5", str(robust_scan), "-a", str(archive), "-C", "3", "-v"]) == 0
    err = capsys.readouterr().err
    assert f"scratch: {kept} of 20 rows in memory" in err
    asked = int(err.split("bin-mean rows ")[1].split(",")[0])
    assert asked > 0
    x = normalised(robust_scan)
    with np.load(archive) as z:
        got = z["m5000"]
    want = detect_volume(x, "robust", DetectParams.for_scan(x.shape))
    # dead and saturated pixels are flagged at every angle after detection
    want |= bad_pixels_of(ScanSource(str(robust_scan), ScanLayout())).mask[None]
    assert np.array_equal(got, want)
    assert not [p for p in os.listdir("/dev/shm") if f"{os.getpid()}-robust" in p]


def test_raw_feature_fields_are_the_feature_parts_apart(robust_scan):
    """The first pass writes raw_feature_fields: raw_feature_parts' fields, not joined."""
    from nsgen.prep.robust_features import raw_feature_fields, raw_feature_parts
    with open_scan(str(robust_scan)) as s:
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
