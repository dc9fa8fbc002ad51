"""Shift files of a scan: the seed's numbering, and one scan without --shifts."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import nsgen
from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan
from nsgen.scan import shift_files
from nsgen.scan.shifts import DEFAULT_SHIFTS


def test_without_shifts_the_numbered_files_that_exist_are_used(tmp_path: Path) -> None:
    for name in ("1000.nxs", "1001.nxs", "1003.nxs", "scan.nxs"):
        (tmp_path / name).touch()
    # 1002 is missing: the run of files stops there
    assert shift_files(tmp_path / "1000.nxs", None) == [str(tmp_path / "1000.nxs"),
                                                        str(tmp_path / "1001.nxs")]
    assert shift_files(tmp_path / "1001.nxs", None) == [str(tmp_path / "1001.nxs")]
    assert shift_files(tmp_path / "scan.nxs", None) == [str(tmp_path / "scan.nxs")]
    for s in range(DEFAULT_SHIFTS + 2):
        (tmp_path / f"{2000 + s}.nxs").touch()
    assert len(shift_files(tmp_path / "2000.nxs", None)) == DEFAULT_SHIFTS


def test_explicit_shifts_name_every_missing_file(tmp_path: Path) -> None:
    (tmp_path / "1000.nxs").touch()
    with pytest.raises(NsgenError) as e:
        shift_files(tmp_path / "1000.nxs", 4)
    msg = str(e.value)
    assert "\n" not in msg
    assert all(f"100{i}.nxs" in msg for i in (1, 2, 3)) and "--shifts 1" in msg
    assert "leave out --shifts" in msg


def test_one_scan_runs_without_shifts_and_says_so(tmp_path: Path) -> None:
    write_scan(tmp_path / "1000.nxs", n_angles=31, n_rows=12, n_columns=40, seed=3)
    r = nsgen("-m", "raw", "--hdf-root", str(tmp_path / "1000.nxs"), "-r", str(tmp_path / "out"),
              "--workers", "1", "--no-preview")
    assert "--shifts not given: using 1 shift (1000.nxs;" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "0000").iterdir()) == ["manifest.json",
                                                                           "shift00"]
    r = nsgen("-m", "raw", "--hdf-root", str(tmp_path / "1000.nxs"), "-r", str(tmp_path / "o2"),
              "-s", "2", check=False)
    assert r.returncode == 2 and "1001.nxs" in r.stderr and "--shifts 1" in r.stderr
    assert not (tmp_path / "o2").exists()


def test_a_refused_run_prints_its_error_line_alone(tmp_path: Path, capsys,
                                                   monkeypatch) -> None:
    """The shift-file note waits for every check: a run refused after the scan was found
    (here: its --mask archive is missing) prints one line, the error. (No engine is
    started: the checks run while it would start.)"""
    import nsgen.runner
    from nsgen.cli import main

    class NoEngine:
        def __init__(self, workers, preload=()):
            self.workers = workers

        def start(self):
            pass

        def close(self, abort=False):
            pass

    monkeypatch.setattr(nsgen.runner, "Engine", NoEngine)

    write_scan(tmp_path / "1000.nxs", n_angles=31, n_rows=4, n_columns=16, seed=3)
    capsys.readouterr()
    assert main(["-m", "paired", "--hdf-root", str(tmp_path / "1000.nxs"), "-r",
                 str(tmp_path / "out"), "--mask", str(tmp_path / "none.npz"),
                 "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nsgen: error: mask archive ")
    assert not (tmp_path / "out").exists()
