"""Tests for nsgen.io.scan_defects and labelled scans (nsgen make-scan --labelled)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from helpers import normalised, nsgen

from nsgen.errors import NsgenError
from nsgen.io.scan_defects import (
    KINDS,
    apply_defects,
    draw_defects,
    read_truth,
    truth_block,
    truth_path,
)
from nsgen.io.scan_writer import write_scan


def test_every_kind_once_at_least_and_within_bounds():
    for shape in ((181, 8, 64), (361, 32, 256), (1801, 256, 2560)):
        d = draw_defects(*shape, seed=3)
        assert {x.kind for x in d} == set(KINDS)
        n_angles, n_rows, n_cols = shape
        cols = sorted((x.column, x.column + x.width) for x in d)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(cols))  # disjoint, apart
        for x in d:
            assert 1 <= x.width <= 5 and 0 <= x.column and x.column + x.width <= n_cols
            assert 0 <= x.row_start < x.row_stop <= n_rows
            assert 0 <= x.angle_start < x.angle_stop <= n_angles
            if x.kind == "partial":
                assert x.angle_stop - x.angle_start < n_angles
            if x.kind == "low_contrast":
                assert 0.002 <= abs(x.gain - 1) <= 0.006
    assert draw_defects(181, 8, 64, 3) == draw_defects(181, 8, 64, 3)


def test_truth_block_is_a_crop_of_the_whole():
    d = draw_defects(181, 16, 128, seed=1)
    whole = truth_block(d, 181, 0, 16, 128)
    assert np.array_equal(truth_block(d, 181, 5, 11, 128), whole[:, 5:11])
    for x in d:
        sub = whole[x.angle_start:x.angle_stop, x.row_start:x.row_stop,
                    x.column:x.column + x.width]
        assert (sub == x.code).all()
    assert (whole > 0).sum() == sum((x.angle_stop - x.angle_start) * (x.row_stop - x.row_start)
                                    * x.width for x in d)


def test_labelled_scan_has_its_stripes_where_the_truth_says(tmp_path: Path):
    truth = write_scan(tmp_path / "s.nxs", n_angles=121, n_rows=8, n_columns=64, seed=2,
                       labelled=True)
    assert truth.defects == ()
    mask = read_truth(tmp_path / "s.nxs")
    assert mask.shape == (121, 8, 64)
    assert np.array_equal(read_truth(tmp_path / "s.nxs", (2, 5)), mask[:, 2:5])
    x = normalised(tmp_path / "s.nxs", (0, 8))
    for d in draw_defects(121, 8, 64, 2):
        k = slice(d.angle_start, d.angle_stop)
        col = x[k, d.row_start, d.column]
        left = x[k, d.row_start, d.column - 1]
        around = 0.5 * (left + x[k, d.row_start, d.column + d.width])
        if d.kind == "dead":
            assert (col > 8).all()  # no photons: only read noise above the dark, near -ln(1e-6)
        elif d.kind == "saturated":
            assert (col < left - 0.3).all()
        elif d.kind in ("full", "partial"):  # -ln(gain) on top of the neighbourhood
            assert np.sign(np.median(col - around)) == -np.sign(np.log(d.gain))


def test_apply_defects_closed_forms():
    d = draw_defects(120, 8, 96, seed=4)
    for k in (0, 37, 119):
        photons = np.full((8, 96), 1000.0, np.float32)
        cap = np.zeros_like(photons)
        apply_defects(photons, cap, k, 120, d)
        expected = np.full((8, 96), 1000.0, np.float32)
        expected_cap = np.zeros_like(expected)
        for x in d:
            if not x.angle_start <= k < x.angle_stop:
                continue
            blk = (slice(x.row_start, x.row_stop), slice(x.column, x.column + x.width))
            if x.kind == "dead":
                expected[blk] = 0
            elif x.kind == "saturated":
                expected_cap[blk] = 65535
            elif x.kind == "fluctuating":
                wave = 1 + 0.5 * np.sin(2 * np.pi * 3 * k / 120 + x.phase)
                expected[blk] *= np.float32(1 + (x.gain - 1) * wave)
            else:
                expected[blk] *= np.float32(x.gain)
        assert np.array_equal(photons, expected) and np.array_equal(cap, expected_cap)


def test_no_labels_one_line_exit_2(tmp_path: Path):
    write_scan(tmp_path / "plain.nxs", n_angles=31, n_rows=4, n_columns=32)
    with pytest.raises(NsgenError, match="at least 64 columns"):
        write_scan(tmp_path / "narrow.nxs", n_angles=31, n_rows=4, n_columns=40, labelled=True)
    assert not truth_path(tmp_path / "plain.nxs").exists()
    with pytest.raises(NsgenError, match="has no ground truth.*--labelled"):
        read_truth(tmp_path / "plain.nxs")
    with pytest.raises(NsgenError, match="leave out --defect"):
        write_scan(tmp_path / "x.nxs", labelled=True, defect_rows={3: (0, 2)})


def test_make_scan_labelled_cli(tmp_path: Path):
    r = nsgen("make-scan", str(tmp_path / "c.nxs"), "--labelled", "--angles", "61", "--rows", "4",
              "--columns", "64")
    assert "ground truth" in r.stdout
    assert read_truth(tmp_path / "c.nxs").shape == (61, 4, 64)


def test_detectability_script_refuses_unlabelled_scans_in_one_line(tmp_path: Path, capsys):
    """scripts/bench_detect_small.py on scans without labels: one line naming each and
    the fix, exit 2, before any work (it raised a traceback from the first such scan)."""
    import sys
    sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
    from bench_detect_small import main

    write_scan(tmp_path / "plain.nxs", n_angles=31, n_rows=4, n_columns=32)
    assert main([str(tmp_path / "plain.nxs"), str(tmp_path / "gone.nxs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plain.nxs, " in err[0] and "gone.nxs" in err[0]
    assert "nsgen make-scan --labelled" in err[0]
