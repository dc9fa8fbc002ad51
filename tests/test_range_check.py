"""A sample whose min/max bounds a single extreme reading sets is warned about, with the
option that leaves such readings out; scans without one are not."""

from __future__ import annotations

import json

import h5py
import numpy as np
from helpers import nsgen

from nsgen.io.scan_writer import write_scan
from nsgen.modes.range_check import LOW_RANGE

WARNING = "nsgen: warning: sample 0000: half of its files use at most "


def _raw(scan, root, *args):
    r = nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(root),
              "--no-preview", "--workers", "1", *args)
    used = [f["range_used"] for f in
            json.loads((root / "0000" / "manifest.json").read_text())["files"]]
    return r.stderr, float(np.median(used))


def test_one_zero_reading_is_warned_about_and_percentile_bounds_leave_it_out(tmp_path):
    scan = tmp_path / "s.nxs"
    write_scan(scan, n_angles=91, n_rows=8, n_columns=64, seed=1, defect_rows={})
    err, median = _raw(scan, tmp_path / "clean")
    assert "16-bit range" not in err and median > 2 * LOW_RANGE
    with h5py.File(scan, "r+") as f:   # one pixel reads 0 in one projection
        key = f["entry1/tomo_entry/instrument/detector/image_key"][...]
        f["entry1/tomo_entry/data/data"][np.flatnonzero(key == 0)[40], 4, 30] = 0
    err, median = _raw(scan, tmp_path / "spiked")
    lines = [x for x in err.splitlines() if "16-bit range" in x]
    assert len(lines) == 1 and lines[0].startswith(WARNING), err
    assert lines[0].endswith("--bounds-percentile 0.01 leaves them out")
    assert median < LOW_RANGE
    assert f"{WARNING}{int(np.ceil(100 * median))} %" in lines[0]
    err, median = _raw(scan, tmp_path / "percentile", "--bounds-percentile", "0.01")
    assert "16-bit range" not in err and median > 2 * LOW_RANGE
