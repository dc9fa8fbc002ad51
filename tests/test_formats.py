"""--format hdf5|zarr: every mode's values equal the TIFF output; check, preview,
PairDataset, load_sample, SLURM tasks and resume after kill -9 work for every format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import all_files, nsgen

from nsgen import NsgenError, PairDataset, load_sample
from nsgen.io.scan_writer import write_scan

FORMATS = [("hdf5", "none"), ("zarr", "gzip")]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    d = tmp_path_factory.mktemp("scans")
    write_scan(d / "1000.nxs", n_angles=91, n_rows=24, n_columns=64, seed=1)
    write_scan(d / "1001.nxs", n_angles=91, n_rows=24, n_columns=64, seed=2)
    write_scan(d / "7.nxs", n_angles=601, n_rows=32, n_columns=64, seed=3)
    return d


def mode_args(mode: str, scans: Path) -> list[str]:
    return {
        "simple": ["-N", "16", "-o", "5", "-S", "2"],
        "complex": ["-N", "16", "-o", "5", "-s", "2", "-f", "2"],
        "raw": ["--hdf-root", str(scans / "1000.nxs"), "-s", "2"],
        "dynamic": ["--hdf-root", str(scans / "1000.nxs"), "--frame-angles", "30"],
        "paired": ["--hdf-root", str(scans / "7.nxs"), "-s", "1"],
        "patch": ["--hdf-root", str(scans / "7.nxs"), "-s", "1", "--patch-size", "300", "20"],
    }[mode] + ["-m", mode, "--workers", "2", "--no-preview"]


def relocated(manifest: dict) -> list[dict]:
    """File entries without the keys that name where an image is stored."""
    return [{k: v for k, v in f.items() if k not in ("path", "target", "mask")}
            for f in manifest["files"]]


@pytest.mark.parametrize("mode", ["simple", "complex", "raw", "dynamic", "paired", "patch"])
def test_every_mode_and_format_holds_the_tiff_values(mode, scans, tmp_path):
    nsgen(*mode_args(mode, scans), "-r", str(tmp_path / "tiff"))
    want = load_sample(tmp_path / "tiff", 0)
    assert want.volumes, "nothing loaded"
    for fmt, compression in FORMATS:
        root = tmp_path / fmt
        nsgen(*mode_args(mode, scans), "-r", str(root), "--format", fmt,
              "--compression", compression)
        got = load_sample(root, 0)
        assert sorted(got.volumes) == sorted(want.volumes)
        for name, volume in want.volumes.items():
            assert got.volumes[name].dtype == np.uint16
            np.testing.assert_array_equal(got.volumes[name], volume, err_msg=f"{fmt} {name}")
        assert got.keys == want.keys
        assert got.manifest["format"] == fmt and relocated(got.manifest) == relocated(want.manifest)
        assert not list(root.rglob("*.tif")) and not list(root.rglob(".*nsgen-tmp*"))
        r = nsgen("check", str(root))
        assert r.stdout.strip().endswith(f"{root}: OK"), r.stdout
        if any("target" in f for f in want.manifest["files"]):
            with warnings.catch_warnings():   # a split without groups: irrelevant here
                warnings.simplefilter("ignore", UserWarning)
                a, b = PairDataset(tmp_path / "tiff"), PairDataset(root)
            assert len(a) == len(b) > 0
            for i in (0, len(a) - 1):
                for x, y in zip(a[i], b[i]):
                    np.testing.assert_array_equal(x, y)


def test_hdf5_layout_chunks_compression_and_manifest(tmp_path):
    root = tmp_path / "d"
    nsgen("-m", "complex", "-N", "16", "-o", "5", "-s", "2", "-f", "2", "-r", str(root),
          "--format", "hdf5", "--compression", "blosc", "--workers", "1")
    assert sorted(os.listdir(root)) == ["0000", "0000.h5"]
    assert sorted(os.listdir(root / "0000")) == ["manifest.json", "preview.png"]
    manifest = json.loads((root / "0000" / "manifest.json").read_text())
    with h5py.File(root / "0000.h5") as f:
        assert sorted(f) == ["clean", "shift00", "shift01"]
        d = f["shift01"]
        assert d.shape == (16, 25, 22) and d.dtype == np.uint16 and d.chunks == (1, 25, 22)
        assert "32001" in d._filters   # the Blosc filter id (hdf5plugin)
        stored = json.loads(f.attrs["manifest.json"])
        assert f.attrs["mode"] == "complex" and int(f.attrs["sample"]) == 0
    assert stored["files"] == manifest["files"]
    assert manifest["files"][1]["path"] == "0000.h5/shift00/0"
    assert manifest["files"][1]["target"] == "0000.h5/clean/0"
    assert nsgen("preview", str(root), "-o", str(tmp_path / "p.png")).returncode == 0


def test_slurm_task_writes_its_own_container(tmp_path):
    root = tmp_path / "d"
    r = nsgen("-m", "simple", "-N", "16", "-o", "5", "-S", "3", "--array-task", "1", "-r",
              str(root), "--format", "zarr", "--no-preview")
    assert "array task 1 -> sample 0001" in r.stderr
    assert sorted(os.listdir(root)) == ["0001", "0001.zarr"]
    whole = tmp_path / "w"
    nsgen("-m", "simple", "-N", "16", "-o", "5", "-S", "2", "-r", str(whole), "--no-preview")
    np.testing.assert_array_equal(load_sample(root, 1).volumes["stripe"],
                                  load_sample(whole, 1).volumes["stripe"])


def _run_until(args: list[str], ready) -> None:
    """Start ``python -m nsgen args``; kill -9 as soon as ``ready()`` holds."""
    env = {**os.environ, "NSGEN_NO_PROGRESS": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "nsgen", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not ready():
            assert proc.poll() is None, "finished before the event: " + proc.stderr.read().decode()
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("fmt", ["hdf5", "zarr"])
def test_kill_9_while_staging_then_rerun_gives_identical_content(fmt, tmp_path):
    args = ["-m", "complex", "-N", "48", "-o", "20", "-s", "3", "-f", "2", "-S", "2",
            "--format", fmt, "--workers", "2", "--no-preview", "--chunk-size", "4"]
    nsgen(*args, "-r", str(tmp_path / "ref"))
    root = tmp_path / "d"
    parts = root / "0001" / ".work" / "parts"
    _run_until([*args, "-r", str(root)],
               lambda: parts.is_dir() and any(parts.rglob("*.part.npy")))
    assert not (root / "0001" / "manifest.json").exists()
    # and a container half-written by a killed pack: a leftover temporary
    suffix = ".h5" if fmt == "hdf5" else ".zarr"
    (root / f".0001{suffix}.nsgen-tmp999").write_bytes(b"\x89HDF\r\n half")
    with pytest.raises(NsgenError, match="0001 under .* is unfinished"):
        load_sample(root, 1)
    nsgen(*args, "-r", str(root))
    assert all_files(root / "0001") == all_files(tmp_path / "ref" / "0001")
    assert sorted(os.listdir(root)) == sorted(os.listdir(tmp_path / "ref"))
    for s in (0, 1):
        a, b = load_sample(root, s), load_sample(tmp_path / "ref", s)
        for name in a.volumes:
            np.testing.assert_array_equal(a.volumes[name], b.volumes[name])
        assert a.manifest["files"] == b.manifest["files"]


def test_real_mode_resumes_by_completed_units(scans, tmp_path):
    args = [*mode_args("raw", scans), "--format", "hdf5"]
    nsgen(*args, "-r", str(tmp_path / "ref"))
    root = tmp_path / "d"
    _run_until([*args, "-r", str(root)],
               lambda: (root / "0000" / ".nsgen" / "shift00.json").exists())
    r = nsgen(*args, "-r", str(root), "-v")
    assert "shift00: finished earlier, kept" in r.stderr
    a, b = load_sample(root, 0), load_sample(tmp_path / "ref", 0)
    for name in b.volumes:
        np.testing.assert_array_equal(a.volumes[name], b.volumes[name])


def test_bad_format_options_are_one_line_exit_2_nothing_written(tmp_path):
    root = tmp_path / "d"
    base = ["-m", "simple", "-N", "16", "-o", "3", "--no-preview", "-r", str(root)]
    r = nsgen(*base, "--format", "tif", check=False)
    assert (r.returncode, r.stderr) == (2, ("nsgen: error: --format must be one of tiff, hdf5, "
                                            "zarr, got 'tif'\n"))
    r = nsgen(*base, "--compression", "gzip", check=False)
    assert r.returncode == 2 and "applies to --format hdf5 or zarr" in r.stderr
    assert not root.exists()
    nsgen(*base)
    before = all_files(root)
    for fmt in ("hdf5", "zarr"):
        r = nsgen(*base, "--format", fmt, "-S", "2", check=False)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
        assert f"already holds a --format tiff dataset; use --format tiff to add to it, or " \
               f"another --root for --format {fmt}" in r.stderr
    assert all_files(root) == before
    with pytest.raises(NsgenError, match=r"no sample 0005 under .* \(finished: 0000\)"):
        load_sample(root, 5)


def test_a_container_root_refuses_other_formats(tmp_path):
    root = tmp_path / "z"
    base = ["-m", "simple", "-N", "16", "-o", "3", "--no-preview", "-r", str(root)]
    nsgen(*base, "--format", "zarr")
    before = all_files(root)
    for fmt in ("hdf5", "tiff"):
        r = nsgen(*base, "--format", fmt, "--start", "1", check=False)
        assert (r.returncode, r.stderr.count("\n")) == (2, 1)
        assert "already holds a --format zarr dataset" in r.stderr
    assert all_files(root) == before
    nsgen(*base, "--format", "zarr", "--start", "1")      # the same format adds samples
    assert sorted(os.listdir(root)) == ["0000", "0000.zarr", "0001", "0001.zarr"]


def test_overwrite_remakes_a_container_sample(tmp_path):
    root = tmp_path / "d"
    base = ["-m", "simple", "-N", "16", "-o", "3", "--no-preview", "-r", str(root),
            "--format", "hdf5"]
    nsgen(*base)
    nsgen(*base, "--seed", "4", "--overwrite")
    fresh = tmp_path / "f"
    nsgen(*base[:-5], "-r", str(fresh), "--format", "hdf5", "--seed", "4")
    np.testing.assert_array_equal(load_sample(root, 0).volumes["stripe"],
                                  load_sample(fresh, 0).volumes["stripe"])
    assert sorted(os.listdir(root)) == ["0000", "0000.h5"]


def test_deep_check_names_a_corrupted_image_inside_a_container(tmp_path):
    """Container manifests carry each image's pixel CRC-32 (recorded before packing), and
    ``check --deep`` decodes the image from the container to verify it."""
    root = tmp_path / "d"
    nsgen("-m", "complex", "-N", "16", "-o", "5", "-s", "2", "-f", "2", "-r", str(root),
          "--format", "hdf5", "--workers", "1", "--no-preview")
    manifest = json.loads((root / "0000" / "manifest.json").read_text())
    assert all(len(f["crc32"]) == 8 for f in manifest["files"])
    assert nsgen("check", str(root), "--deep").returncode == 0
    with h5py.File(root / "0000.h5", "r+") as f:
        f["shift01"][3, 0, 0] ^= 1                        # one bit of one image, in place
    assert nsgen("check", str(root)).returncode == 0      # plain check reads no pixels
    r = nsgen("check", str(root), "--deep", check=False)
    assert r.returncode == 1
    bad = [line.strip().split(":")[0] for line in r.stdout.splitlines()
           if "pixel data corrupted" in line]
    assert bad == ["0000.h5/shift01/3"], r.stdout
