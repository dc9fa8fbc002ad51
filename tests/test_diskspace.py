"""Free disk space is checked against the estimated output before anything is written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import nsgen
from nsgen.diskspace import check_free_space, sample_bytes, tiff_bytes
from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan


def test_estimates_match_what_a_run_writes(tmp_path: Path) -> None:
    """The estimate of a simple sample equals the bytes its TIFFs take (within headers)."""
    nsgen("-m", "simple", "-N", "16", "-o", "2", "-r", str(tmp_path / "o"), "--no-preview",
          "--workers", "1")
    written = sum(p.stat().st_size for p in (tmp_path / "o").rglob("*.tif"))
    est = sample_bytes(SimpleNamespace(mode="simple", size=16))
    assert 32 == len(list((tmp_path / "o").rglob("*.tif")))
    assert abs(est - written) <= 32 * 300


def test_real_mode_estimate_from_the_scan_shape(tmp_path: Path) -> None:
    write_scan(tmp_path / "1000.nxs", n_angles=31, n_rows=12, n_columns=40, seed=1)
    c = SimpleNamespace(mode="raw", hdf_root=(tmp_path / "1000.nxs",), shifts=5, shifts_given=False,
                        data_path=None, image_key_path=None, angles_path=None, flats=None,
                        darks=None)
    assert sample_bytes(c) == 12 * tiff_bytes((402, 362))


def test_refused_in_one_line_with_a_mocked_free_space_probe(tmp_path: Path) -> None:
    c = SimpleNamespace(mode="complex", size=256, shifts=5, root=tmp_path / "o")
    check_free_space(c, [0], free=448 * 10**6)
    with pytest.raises(NsgenError) as e:
        check_free_space(c, [0, 1], free=448 * 10**6)
    assert "448.0 MB free" in str(e.value) and "895.0 MB" in str(e.value)
    assert "--samples" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_tmpfs_root_is_refused_before_writing(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        r = nsgen("-m", "simple", "-r", str(mnt / "data"), check=False)
        assert r.returncode == 2 and "free but 1 simple sample need about" in r.stderr
        assert r.stderr.count("\n") == 1 and list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
