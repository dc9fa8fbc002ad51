"""Faults survived, with real processes: a full disk, a killed reader, a corrupted scan.

Each fault stops the run with one line on stderr and leaves nothing half-written: every
TIFF under its final name is complete (byte-identical to an undisturbed run); a rerun of
the same command, the fault removed, completes the dataset byte-identically.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import psutil
import pytest

from helpers import HANG, all_files, nsgen, tree_digest, unavailable, wait_for
from nsgen.io.scan_writer import write_scan

SMALL = ["-m", "complex", "-N", "32", "-o", "12", "-s", "3", "-f", "4", "-S", "2",
         "--workers", "2"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ref") / "data"
    nsgen(*SMALL, "-r", str(root))
    return root


def assert_nothing_half_written(root: Path, reference: Path) -> None:
    """Every TIFF under its final name equals the undisturbed run's; only finished samples
    have a manifest."""
    ref = tree_digest(reference)
    got = tree_digest(root)
    assert got and all(ref[name] == digest for name, digest in got.items())
    for manifest in root.glob("*/manifest.json"):
        sample = manifest.parent.name
        assert {k for k in got if k.startswith(sample)} == \
            {k for k in ref if k.startswith(sample)}


def assert_resumes(root: Path, reference: Path) -> None:
    nsgen(*SMALL, "-r", str(root))
    assert tree_digest(root) == tree_digest(reference)
    assert all_files(root) == all_files(reference)
    assert "OK" in nsgen("check", str(root), "--deep").stdout


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (the dataset needs ~0.7 MiB, nsgen's start-up check ~1.2), unmounted
    afterwards."""
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs to fill needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(path: Path) -> None:
    """Write ``path`` until its file system is full (another program filling the disk)."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(bytes(2**16))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_full_disk_stops_with_one_line_and_a_rerun_completes(small_disk, reference):
    """The disk fills up while the run writes: one line naming the disk, exit 2; after
    freeing space the same command completes the dataset."""
    root = small_disk / "data"
    proc = subprocess.Popen([sys.executable, "-m", "nsgen", *SMALL, "-r", str(root),
                             "--no-progress", "-q"], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(root.rglob("*.tif")), "a TIFF written", proc)
    filler = small_disk / "filler"
    fill(filler)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nsgen: error: no space left on "
                                                   f"{small_disk} ("), err
    assert "rerun the same command" in lines[0]
    assert_nothing_half_written(root, reference)
    filler.unlink()
    assert_resumes(root, reference)


def test_kill_9_of_the_reader_stops_the_run_and_a_rerun_completes(tmp_path, reference):
    root = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "nsgen", *SMALL, "-r", str(root),
                             "--no-progress"], stderr=subprocess.PIPE, text=True)

    def reader() -> psutil.Process | None:
        """The first child the forkserver started (the engine starts the reader first)."""
        kids = [p for p in psutil.Process(proc.pid).children(recursive=True)
                if p.ppid() != proc.pid]
        return min(kids, key=lambda p: p.create_time()) if len(kids) >= 3 else None

    wait_for(lambda: reader() is not None and any(root.rglob("*.tif")),
             "reader and workers at work", proc)
    reader().send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == ["nsgen: error: nsgen-reader was killed by signal 9; "
                                        "the run was stopped (rerun to resume)"]
    assert_nothing_half_written(root, reference)
    assert_resumes(root, reference)


def test_corrupted_chunk_mid_scan_is_one_line_naming_scan_and_rows(tmp_path):
    """A gzip chunk of projections (frames 50-59, rows 24-27) overwritten with garbage."""
    scan = tmp_path / "1000.nxs"
    write_scan(scan, n_angles=91, n_rows=48, n_columns=64, seed=1, chunks=(10, 4, 64),
               compression="gzip")
    with h5py.File(scan, "r") as f:
        data = f["entry1/tomo_entry/data/data"]
        infos = [data.id.get_chunk_info(i) for i in range(data.id.get_num_chunks())]
    info = next(i for i in infos if i.chunk_offset == (50, 24, 0))
    with open(scan, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(b"\xff" * 64)
    root = tmp_path / "out"
    r = nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "-C", "4", "-r", str(root),
              check=False, timeout=HANG)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nsgen: error: "), r.stderr
    assert "cannot read" in lines[0] and scan.name in lines[0]
    # where: the detector rows being read, or the frames (projection angles) when the scan
    # is read frame by frame (compressed scans are decompressed whole frames at a time)
    assert "rows 24-27" in lines[0] or re.search(r"frames (5\d)-(5\d) of ", lines[0]), lines[0]
    assert not list(root.rglob("*.tif")) and not list(root.rglob("manifest.json"))
