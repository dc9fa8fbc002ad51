"""``nsgen inspect``: what it reports for a scan, and its one-line refusals."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from helpers import nsgen
from nsgen.inspect import fitting_params, pixel_report
from nsgen.io.scan_writer import write_scan


def test_inspect_reports_layout_counts_and_estimates(tmp_path: Path) -> None:
    write_scan(tmp_path / "7.nxs", n_angles=61, n_rows=24, n_columns=48, n_flats=6, n_darks=4,
               compression="gzip", chunks=(1, 24, 48), seed=1)
    r = nsgen("inspect", str(tmp_path / "7.nxs"))
    out = dict(line.split(":", 1) for line in r.stdout.splitlines())
    out = {k.strip(): v.strip() for k, v in out.items()}
    assert out["layout"].startswith("Diamond i12/i13")
    assert out["frames"] == "71 (61 projections, 6 flats, 4 darks)"
    assert out["projections"] == "61 angles x 24 rows x 48 columns, uint16"
    assert "deflate" in out["storage"] and "chunks (1, 24, 48)" in out["storage"]
    assert out["angle range"].startswith("0.000 .. 180.000")
    assert out["pixels"].endswith("of 1,152 pixels")
    assert out["output"].startswith("raw mode: 24 TIFFs per shift")
    assert out["detection"].startswith("--detector robust, the default (row window "
                                       "--min-stripe-depth 23); --detector larix: ")
    assert "--median-size 8" in out["detection"] and "--min-stripe-depth 23" in out["detection"]
    assert r.stderr == ""


def test_inspect_takes_config_and_environment(tmp_path: Path) -> None:
    write_scan(tmp_path / "8.nxs", n_angles=31, n_rows=8, n_columns=32, seed=2)
    ini = tmp_path / "run.ini"
    ini.write_text(f"mode = raw\nhdf-root = {tmp_path / '8.nxs'}\nsamples = 1\n")
    r = nsgen("inspect", "--config", str(ini))
    assert "31 angles x 8 rows x 32 columns" in r.stdout
    r = nsgen("inspect", env={"NSGEN_HDF_ROOT": str(tmp_path / "8.nxs")})
    assert "31 angles x 8 rows x 32 columns" in r.stdout


def test_inspect_refuses_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a scan")
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = np.zeros((3, 4, 5), np.uint16), np.zeros((2, 4, 5), np.uint16)
    for target, want in ((tmp_path / "notes.txt", "not an HDF5/NeXus file or a TIFF"),
                         (tmp_path / "two.h5", "ambiguous"),
                         (tmp_path / "missing.nxs", "does not exist")):
        r = nsgen("inspect", str(target), check=False)
        assert r.returncode == 2 and want in r.stderr and r.stderr.count("\n") == 1
        assert r.stdout == ""


def test_pixel_report_and_fitting_params() -> None:
    flat = np.array([[100.0, 50.0], [65535.0, 10.0]])
    dark = np.array([[10.0, 60.0], [10.0, 10.0]])
    assert pixel_report(flat, dark, np.dtype(np.uint16)) == \
        "2 dead, 1 saturated of 4 pixels (flagged as stripes, left out of the scaling bounds)"
    # what a run finds: dead in the projections alone (the labelled scans' dead columns,
    # reported as 0 dead before), flats that are wrong as a whole, flats that cannot work
    probes = np.full((16, 2, 2), 20000.0)
    probes[:, 0, 0] = 9.0
    assert pixel_report(flat, dark, np.dtype(np.uint16), probes).startswith(
        "3 dead, 1 saturated of 4 pixels")
    assert pixel_report(np.full((2, 2), 65535.0), dark, np.dtype(np.uint16)) == (
        "0 dead, 0 saturated of 4 pixels; every flat pixel is saturated (65535): normalised "
        "values are biased low; use flats taken below saturation")
    assert pixel_report(dark - 1, dark, np.dtype(np.float32)) == (
        "normalisation impossible: no detector pixel has a flat above its dark (flat 9..59, "
        "dark 10..60), so the projections cannot be normalised; give the right flats and "
        "darks (--flats, --darks)")
    params, why = fitting_params((1801, 2160, 2560))
    assert params["size"] == 250 and why == "the seed's values (they fit)"
