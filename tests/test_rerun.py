"""Reruns never mix runs: same command keeps/resumes, other options or inputs refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import nsgen, tree_digest
from nsgen.io.scan_writer import write_scan
from nsgen.rerun import differences

SIMPLE = ("-m", "simple", "-N", "16", "-o", "3", "--no-preview", "--workers", "1")


def test_other_options_refused_naming_them_overwrite_replaces(tmp_path: Path) -> None:
    root = str(tmp_path / "o")
    nsgen(*SIMPLE, "-r", root)
    first = tree_digest(tmp_path / "o")
    nsgen(*SIMPLE, "-r", root, "--workers", "2")          # neutral option: kept, no error
    r = nsgen(*SIMPLE, "-r", root, "--seed", "4", check=False)
    assert r.returncode == 2 and "--seed 0 -> 4" in r.stderr and "--overwrite" in r.stderr
    assert r.stderr.count("\n") == 1 and tree_digest(tmp_path / "o") == first
    nsgen(*SIMPLE, "-r", root, "--seed", "4", "--overwrite")
    assert json.loads((tmp_path / "o" / "0000" / "manifest.json").read_text())["seed"] == 4
    assert tree_digest(tmp_path / "o") != first


def test_unfinished_sample_resumes_only_with_its_own_options(tmp_path: Path) -> None:
    """A sample started with one seed (its run record left by an interruption) resumes
    with that seed to the bytes of an uninterrupted run, and is refused with another."""
    root = tmp_path / "o"
    nsgen(*SIMPLE, "-r", str(tmp_path / "ref"))
    nsgen(*SIMPLE, "-r", str(root))
    # make it look interrupted: the manifest gone, the start record kept
    record = json.loads((root / "0000" / "manifest.json").read_text())
    (root / "0000" / "manifest.json").unlink()
    (root / "0000" / ".nsgen").mkdir()
    (root / "0000" / ".nsgen" / "run.json").write_text(json.dumps(
        {"config": record["config"], "output_revision": record["output_revision"], "inputs": []}))
    r = nsgen(*SIMPLE, "-r", str(root), "--objects", "5", check=False)
    assert r.returncode == 2 and "was started" in r.stderr and "--objects 3 -> 5" in r.stderr
    nsgen(*SIMPLE, "-r", str(root))
    assert tree_digest(root) == tree_digest(tmp_path / "ref")


def test_changed_darks_refused_and_reported_by_check(tmp_path: Path) -> None:
    scan = tmp_path / "1000.nxs"
    write_scan(scan, n_angles=31, n_rows=8, n_columns=32, seed=1)
    darks = tmp_path / "darks.nxs"
    write_scan(darks, n_angles=31, n_rows=8, n_columns=32, seed=2)
    args = ("-m", "raw", "--hdf-root", str(scan), "-r", str(tmp_path / "o"), "--workers", "1",
            "--no-preview")
    nsgen(*args)
    r = nsgen(*args, "--darks", str(darks), check=False)
    assert r.returncode == 2 and "--darks None ->" in r.stderr
    assert nsgen("check", str(tmp_path / "o")).returncode == 0
    os.utime(scan, ns=(0, 0))                                    # touched only: unchanged
    assert nsgen("check", str(tmp_path / "o")).returncode == 0
    write_scan(scan, n_angles=31, n_rows=8, n_columns=32, seed=3, overwrite=True)
    r = nsgen("check", str(tmp_path / "o"), check=False)
    assert r.returncode == 1 and "input changed since" in r.stdout + r.stderr
    r = nsgen(*args, check=False)
    assert r.returncode == 2 and "1000.nxs (size/time changed)" in r.stderr


def test_differences_ignore_options_newer_than_the_record() -> None:
    assert differences({"seed": 1}, {"seed": 1, "format": "tiff"}) == []
    assert differences({"workers": 1, "seed": 1}, {"workers": 4, "seed": 1}) == []


def test_overwrite_that_does_not_fit_keeps_the_old_sample(tmp_path: Path, monkeypatch) -> None:
    """The free-space check comes before --overwrite removes anything."""
    import pytest

    from nsgen import diskspace
    from nsgen.config import parse_config
    from nsgen.errors import NsgenError
    from nsgen.runner import generate

    root = str(tmp_path / "o")
    nsgen(*SIMPLE, "-r", root)
    before = tree_digest(tmp_path / "o")
    monkeypatch.setattr(diskspace, "free_bytes", lambda root: 1000)
    with pytest.raises(NsgenError, match="1.0 kB free"):
        generate(parse_config([*SIMPLE, "-r", root, "--seed", "9", "--overwrite"], env={}))
    assert tree_digest(tmp_path / "o") == before


def test_overwrite_of_an_unfinished_dynamic_sample_leaves_none_of_its_files(tmp_path: Path) -> None:
    """Dynamic mode writes its frames directly under the root; an interrupted sample has no
    manifest listing them, and --overwrite must still remove them (and its temporary files)."""
    scan = tmp_path / "1000.nxs"
    write_scan(scan, n_angles=40, n_rows=4, n_columns=32, seed=1)
    args = ("-m", "dynamic", "--hdf-root", str(scan), "--workers", "1", "--no-preview")
    root, ref = tmp_path / "o", tmp_path / "ref"
    nsgen(*args, "-r", str(root), "--frame-angles", "10")
    nsgen(*args, "-r", str(ref), "--frame-angles", "20")
    assert {p.name for p in root.glob("0000_frame03_*.tif")}        # 4 frames, then 2
    record = json.loads((root / "0000" / "manifest.json").read_text())
    (root / "0000" / "manifest.json").unlink()                      # as if interrupted
    (root / "0000" / ".nsgen").mkdir()
    (root / "0000" / ".nsgen" / "run.json").write_text(json.dumps(
        {"config": record["config"], "output_revision": record["output_revision"], "inputs": []}))
    (root / ".0000_frame03_0001.tif.nsgen-tmp123").write_bytes(b"partial")
    r = nsgen(*args, "-r", str(root), "--frame-angles", "20", check=False)
    assert r.returncode == 2 and "--frame-angles 10 -> 20" in r.stderr
    nsgen(*args, "-r", str(root), "--frame-angles", "20", "--overwrite")
    assert tree_digest(root) == tree_digest(ref)
    assert not list(root.glob(".0000_*"))


def test_same_relative_input_name_from_another_directory_is_another_input(tmp_path: Path) -> None:
    """Inputs are recorded absolute: ``--hdf-root scan.nxs`` run from two directories names
    two scans, and the second run into the same root is refused, not taken as finished."""
    for d, seed in (("a", 1), ("b", 2)):
        (tmp_path / d).mkdir()
        write_scan(tmp_path / d / "scan.nxs", n_angles=31, n_rows=4, n_columns=32, seed=seed)
    args = ("-m", "raw", "--hdf-root", "scan.nxs", "-r", str(tmp_path / "o"), "--workers", "1",
            "--no-preview")
    nsgen(*args, cwd=tmp_path / "a")
    manifest = json.loads((tmp_path / "o" / "0000" / "manifest.json").read_text())
    assert manifest["config"]["hdf-root"] == [str(tmp_path / "a" / "scan.nxs")]
    r = nsgen(*args, cwd=tmp_path / "b", check=False)
    assert r.returncode == 2 and "--hdf-root" in r.stderr and "b/scan.nxs" in r.stderr, r.stderr


def test_a_sample_of_another_output_revision_is_neither_kept_nor_resumed(tmp_path: Path) -> None:
    """A sample written by an nsgen whose bytes differ (an older release: its records have
    no revision, which is revision 1) is refused as other options are, finished or not;
    --overwrite remakes it to the bytes of a fresh run."""
    from nsgen.rerun import OUTPUT_REVISION

    root = tmp_path / "o"
    nsgen(*SIMPLE, "-r", str(tmp_path / "ref"))
    nsgen(*SIMPLE, "-r", str(root))
    manifest = root / "0000" / "manifest.json"
    record = json.loads(manifest.read_text())
    assert record["output_revision"] == OUTPUT_REVISION
    del record["output_revision"]
    manifest.write_text(json.dumps(record))
    before = tree_digest(root)
    r = nsgen(*SIMPLE, "-r", str(root), check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "was made" in r.stderr
    assert f"nsgen output revision 1, this nsgen writes {OUTPUT_REVISION}" in r.stderr
    assert tree_digest(root) == before
    manifest.unlink()                       # unfinished, started by the older release
    (root / "0000" / ".nsgen").mkdir()
    (root / "0000" / ".nsgen" / "run.json").write_text(json.dumps({"config": record["config"],
                                                                  "inputs": []}))
    r = nsgen(*SIMPLE, "-r", str(root), check=False)
    assert r.returncode == 2 and "was started" in r.stderr and "output revision 1" in r.stderr
    nsgen(*SIMPLE, "-r", str(root), "--overwrite")
    assert tree_digest(root) == tree_digest(tmp_path / "ref")
