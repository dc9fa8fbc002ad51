"""Whole runs through the CLI: layout, determinism, resume after kill -9, seeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from helpers import HANG, all_files, nsgen, read, tree_digest, wait_for

SMALL = ["-N", "32", "-o", "12", "-s", "3", "-f", "4"]


@pytest.fixture(scope="module")
def complex_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref") / "data"
    nsgen("-m", "complex", *SMALL, "-r", str(root), "-S", "2", "--workers", "2")
    return root


def test_complex_layout_and_names_follow_the_seed(complex_reference):
    root = complex_reference
    assert sorted(os.listdir(root)) == ["0000", "0001"]
    assert sorted(os.listdir(root / "0000")) == ["clean", "manifest.json", "preview.png",
                                                 "shift00", "shift01", "shift02"]
    assert sorted(os.listdir(root / "0000" / "clean")) == \
        [f"0000_clean_{v:04d}.tif" for v in range(32)]
    assert sorted(os.listdir(root / "0001" / "shift02")) == \
        [f"0001_shift02_{v:04d}.tif" for v in range(32)]
    img = read(root / "0000" / "shift01" / "0000_shift01_0005.tif")
    assert img.shape == (int(0.5 * np.pi * 32), int(np.sqrt(2) * 32)) == (50, 45)


def test_no_scratch_or_temporary_files_remain(complex_reference):
    files = all_files(complex_reference)
    assert all(f.endswith((".tif", "manifest.json", "preview.png")) for f in files), files
    assert len(files) == 2 * (32 * 4 + 2)


def test_start_and_samples_number_directories(tmp_path):
    nsgen("-m", "simple", "-N", "16", "-o", "3", "-r", str(tmp_path), "-S", "2",
          "--start", "5")
    assert sorted(os.listdir(tmp_path)) == ["0005", "0006"]
    assert sorted(os.listdir(tmp_path / "0005")) == ["clean", "manifest.json", "preview.png",
                                                     "stripe"]
    assert sorted(os.listdir(tmp_path / "0006" / "stripe"))[-1] == "0006_stripe_0015.tif"


@pytest.mark.parametrize("extra", [["--workers", "1", "-C", "1"], ["--workers", "3", "-C", "7"],
                                   ["--workers", "2", "-C", "32"]])
def test_bytes_do_not_depend_on_workers_or_chunks(complex_reference, tmp_path, extra):
    nsgen("-m", "complex", *SMALL, "-r", str(tmp_path), "-S", "2", *extra)
    assert tree_digest(tmp_path) == tree_digest(complex_reference)


def test_a_sample_regenerates_alone(complex_reference, tmp_path):
    nsgen("-m", "complex", *SMALL, "-r", str(tmp_path), "--start", "1")
    ref = {k: v for k, v in tree_digest(complex_reference).items() if k.startswith("0001")}
    assert tree_digest(tmp_path) == ref


def test_other_seed_other_data(complex_reference, tmp_path):
    nsgen("-m", "complex", *SMALL, "-r", str(tmp_path), "--seed", "1")
    a = tree_digest(tmp_path)
    b = tree_digest(complex_reference)
    assert set(a) <= set(b)
    assert all(a[k] != b[k] for k in a if "clean" in k)


def test_clean_and_shift_differ_only_on_defects(complex_reference):
    """docs/science.md A.5: shared photon noise; the difference is on the defect supports only."""
    s = complex_reference / "0000"
    manifest = json.loads((s / "manifest.json").read_text())
    offsets = manifest["detector"]["offsets"]
    support = np.zeros((3, 32, 45), bool)
    for v in range(32):
        clean = read(s / "clean" / f"0000_clean_{v:04d}.tif")
        for i in range(3):
            diff = read(s / f"shift{i:02d}" / f"0000_shift{i:02d}_{v:04d}.tif") - clean
            cols = np.abs(diff).max(axis=0) > 0
            support[i, v] = cols
            # where a column differs, it differs at (nearly) every angle: a stripe
            if cols.any():
                assert (np.abs(diff[:, cols]) > 0).mean() > 0.5
    assert support.any(), "no stripes at all"
    # the defects are fixed on the detector: shifting by o rows moves the stripes by o rows
    for i in range(1, 3):
        d = offsets[i] - offsets[0]
        assert np.array_equal(np.roll(support[0], d, axis=0), support[i])


def test_manifest_records_config_seed_and_objects(complex_reference):
    m = json.loads((complex_reference / "0001" / "manifest.json").read_text())
    assert m["mode"] == "complex" and m["sample"] == 1 and m["seed"] == 0
    assert m["config"]["size"] == 32 and m["config"]["shifts"] == 3
    assert 1 <= len(m["objects"]) <= 12 and set(m["objects"][0]) == {
        "C0", "x0", "y0", "z0", "a", "b", "c", "phi"}
    assert len(m["files"]) == 32 * 4
    f = m["files"][1]
    assert f["role"] == "stripe" and f["shift"] == 0 and f["shape"] == [50, 45]
    lo, hi = f["bounds"]
    assert lo < hi


def test_finished_samples_are_skipped(complex_reference, tmp_path):
    nsgen("-m", "simple", "-N", "16", "-o", "3", "-r", str(tmp_path))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.tif")}
    r = nsgen("-m", "simple", "-N", "16", "-o", "3", "-r", str(tmp_path), "-v")
    assert "finished earlier" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.tif")} == before


def _count_tifs(root: Path) -> int:
    # os.walk skips directories that vanish while it walks (the run removes its scratch
    # directory when a sample finishes; rglob would raise)
    return sum(f.endswith(".tif") for _, _, files in os.walk(root) for f in files)


@pytest.mark.parametrize("victim", ["main", "worker", "sigterm"])
@pytest.mark.parametrize("after_files", [1, 150])
def test_kill_9_then_rerun_gives_identical_bytes(complex_reference, tmp_path, victim,
                                                 after_files):
    root = tmp_path / "data"
    args = [sys.executable, "-m", "nsgen", "-m", "complex", *SMALL, "-r", str(root), "-S", "2",
            "--workers", "2", "-C", "2", "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: _count_tifs(root) >= after_files or proc.poll() is not None,
             f"{after_files} TIFFs written")
    if victim == "main":
        proc.send_signal(signal.SIGKILL)
    elif victim == "sigterm":                    # a scheduler's stop or preemption
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=HANG) in (143, 0)  # 0 if it finished first
        if proc.returncode == 143:
            assert "stopped by SIGTERM; rerun the same command to resume" in \
                proc.stderr.read().decode()
    else:
        # the reader and workers are the forkserver's children: kill the newest one
        kids = [p for p in psutil.Process(proc.pid).children(recursive=True)
                if p.ppid() != proc.pid]
        if kids:
            kids[-1].kill()
    proc.wait(timeout=HANG)
    if proc.returncode == 0:                     # it finished first: nothing to resume
        assert all_files(root) == all_files(complex_reference)
    nsgen("-m", "complex", *SMALL, "-r", str(root), "-S", "2", "--workers", "2")
    assert tree_digest(root) == tree_digest(complex_reference)
    assert all_files(root) == all_files(complex_reference)
    # the pixel checksums of files written before the kill were kept for the manifest
    assert "OK" in nsgen("check", str(root), "--deep").stdout


def test_simple_mode_pairs(tmp_path):
    # N=64: 90 detector columns -> int(90 * 1.2 %) = 1 stripe per sinogram
    nsgen("-m", "simple", "-N", "64", "-o", "10", "-r", str(tmp_path))
    s = tmp_path / "0000"
    m = json.loads((s / "manifest.json").read_text())
    lo, hi = m["files"][0]["bounds"]
    changed = 0
    for v in range(64):
        clean = read(s / "clean" / f"0000_clean_{v:04d}.tif")
        stripe = read(s / "stripe" / f"0000_stripe_{v:04d}.tif")
        diff = stripe - clean
        cols = np.abs(diff).max(axis=0) > 1
        changed += cols.sum()
        # simple stripes never exceed the 1.2 % of columns x width 7 budget per sinogram
        assert cols.sum() <= 7
    assert changed > 0
    assert lo <= hi


def test_samples_finish_in_order_and_a_failed_finish_is_redone(tmp_path, monkeypatch):
    """Previews and manifests are written on a thread while the next sample computes: a
    failure there still fails the run, the sample stays unfinished, and a rerun makes the
    same dataset as a run that never failed."""
    from nsgen import runner
    from nsgen.config import parse_config

    args = ["-m", "simple", "-N", "16", "-o", "3", "-S", "3", "--workers", "1"]
    ref = tmp_path / "ref"
    assert runner.generate(parse_config([*args, "-r", str(ref)])) == [0, 1, 2]
    real = runner.write_manifest

    def failing(path, manifest):
        if manifest["sample"] == 1:
            raise OSError("disk full")
        real(path, manifest)

    monkeypatch.setattr(runner, "write_manifest", failing)
    root = tmp_path / "data"
    config = parse_config([*args, "-r", str(root)])
    with pytest.raises(OSError, match="disk full"):
        runner.generate(config)
    assert [(root / f"{s:04d}" / "manifest.json").exists() for s in range(3)] == \
        [True, False, False]
    monkeypatch.setattr(runner, "write_manifest", real)
    assert runner.generate(config) == [1, 2]
    assert tree_digest(root) == tree_digest(ref)
