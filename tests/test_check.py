"""``nsgen check``: a sound dataset passes; every kind of damage is listed, exit 1."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile

from helpers import nsgen
from nsgen.check import check_dataset, main as check_main, tiff_header
from nsgen.cli import main as cli_main
from nsgen.io.manifest import write_manifest
from nsgen.io.tiff import write_tiff

CLEAN = "0000/clean/0000_clean_0003.tif"
SHIFT = "0001/shift01/0001_shift01_0005.tif"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref") / "data"
    nsgen("-m", "complex", "-N", "16", "-o", "3", "-s", "2", "-f", "2", "-r", str(root),
          "-S", "2")
    return root


@pytest.fixture
def data(reference, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(reference, root)
    return root


def _run(root, capsys):
    code = check_main([str(root), "--workers", "3"])
    return code, capsys.readouterr().out


def test_a_sound_dataset_passes(data, capsys):
    code, out = _run(data, capsys)
    assert code == 0, out
    assert "OK" in out
    # 16 rows x (clean + 2 shifts) + preview, per sample
    assert "  0000  complex       49      49     0        0" in out
    assert "  0001  complex       49      49     0        0" in out
    r = nsgen("check", str(data), check=False)
    assert r.returncode == 0 and "OK" in r.stdout


def _truncate(root):
    p = root / SHIFT
    p.write_bytes(p.read_bytes()[:300])


def _reshape(root):
    tifffile.imwrite(root / SHIFT, np.zeros((7, 9), np.uint16))


def _retype(root):
    tifffile.imwrite(root / SHIFT, np.zeros((25, 22), np.float32))


def _garbage(root):
    (root / SHIFT).write_bytes(b"not a tiff at all")


def _temporary(root):
    (root / "0001" / "shift01" / ".0001_shift01_0005.tif.nsgen-tmp4242").write_bytes(b"x")


def _unlisted(root):
    shutil.copy(root / SHIFT, root / "0001" / "shift01" / "copy.tif")


def _scratch(root):
    (root / "0001" / ".work").mkdir()


def _unfinished(root):
    (root / "0007" / "clean").mkdir(parents=True)


def _target_not_listed(root):
    m = json.loads((root / "0000" / "manifest.json").read_text())
    m["files"] = [f for f in m["files"] if f["path"] != CLEAN]
    (root / "0000" / "manifest.json").write_text(json.dumps(m))


def _listed_twice(root):
    m0 = json.loads((root / "0000" / "manifest.json").read_text())
    m1 = json.loads((root / "0001" / "manifest.json").read_text())
    m1["files"].append(next(f for f in m0["files"] if f["path"] == CLEAN))
    (root / "0001" / "manifest.json").write_text(json.dumps(m1))


def _preview_gone(root):
    (root / "0001" / "preview.png").unlink()


@pytest.mark.parametrize("damage, path, what", [
    (lambda r: (r / SHIFT).unlink(), SHIFT, "missing"),
    (lambda r: (r / CLEAN).unlink(), CLEAN, "missing (target of 2 inputs: pair incomplete)"),
    (_truncate, SHIFT, "truncated: 300 bytes"),
    (_reshape, SHIFT, "shape [7, 9], manifest says [25, 22]"),
    (_retype, SHIFT, "dtype float32, expected uint16"),
    (_garbage, SHIFT, "unreadable TIFF"),
    (_temporary, "0001/shift01/.0001_shift01_0005.tif.nsgen-tmp4242", "leftover temporary"),
    (_unlisted, "0001/shift01/copy.tif", "not in any manifest"),
    (_scratch, "0001/.work/", "leftover scratch directory"),
    (_unfinished, "0007/", "sample directory without manifest"),
    (_target_not_listed, "0000/manifest.json",
     f"manifest: 0000/shift00/0000_shift00_0003.tif: target {CLEAN} is not a file of this "
     f"manifest"),
    (_listed_twice, CLEAN, "listed by the manifests of samples 0000 and 0001"),
    (_preview_gone, "0001/preview.png", "missing"),
], ids=["deleted", "missing-target", "truncated", "wrong-shape", "wrong-dtype", "garbage",
        "temporary", "unlisted", "scratch-dir", "unfinished", "target-not-listed",
        "listed-twice", "preview"])
def test_damage_is_listed_and_fails(data, capsys, damage, path, what):
    damage(data)
    code, out = _run(data, capsys)
    assert code == 1
    assert f"  {path}: {what}" in out, out


def test_every_problem_is_listed(data, capsys):
    _unlisted(data)
    (data / SHIFT).unlink()
    other = data / "0000" / "shift00" / "0000_shift00_0001.tif"
    other.write_bytes(other.read_bytes()[:100])
    report = check_dataset(data)
    assert [p for p, _ in report.problems] == ["0000/shift00/0000_shift00_0001.tif", SHIFT,
                                                "0001/shift01/copy.tif"]
    rows = {r.sample: r for r in report.samples}
    assert (rows[0].listed, rows[0].present, rows[0].bad, rows[0].problems) == (49, 49, 1, 1)
    assert (rows[1].listed, rows[1].present, rows[1].bad, rows[1].problems) == (49, 48, 0, 2)
    code, out = _run(data, capsys)
    assert code == 1 and "3 problems" in out


def test_bad_root_is_a_usage_error(tmp_path, capsys):
    assert cli_main(["check", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "0000").mkdir()
    assert cli_main(["check", str(tmp_path)]) == 2
    assert "no sample manifest" in capsys.readouterr().err


def test_dynamic_layout_files_under_the_root(tmp_path, capsys):
    """Manifest in root/NNNN, TIFFs directly under root (dynamic mode)."""
    files = []
    for k in range(3):
        p = f"0000_frame00_{k:04d}.tif"
        write_tiff(tmp_path / p, np.full((4, 5), k, np.uint16))
        files.append({"path": p, "role": "frame", "index": k, "frame": 0, "shape": [4, 5],
                      "bounds": [0.0, 1.0]})
    (tmp_path / "0000").mkdir()
    write_manifest(tmp_path / "0000" / "manifest.json",
                   {"nsgen_version": "x", "mode": "dynamic", "sample": 0, "seed": 0,
                    "config": {}, "files": files})
    code, out = _run(tmp_path, capsys)
    assert code == 0, out
    write_tiff(tmp_path / "0000_frame00_0099.tif", np.zeros((4, 5), np.uint16))
    (tmp_path / ".0000_frame00_0003.tif.nsgen-tmp1").write_bytes(b"")
    code, out = _run(tmp_path, capsys)
    assert code == 1
    assert "  0000_frame00_0099.tif: not in any manifest" in out
    assert "  .0000_frame00_0003.tif.nsgen-tmp1: leftover temporary" in out


@pytest.mark.parametrize("kw", [
    dict(data=np.zeros((50, 45), np.uint16)),
    dict(data=np.zeros((402, 362), np.uint16), rowsperstrip=16),
    dict(data=np.zeros((30, 20), np.uint16), byteorder=">"),
    dict(data=np.zeros((30, 20), np.uint16), bigtiff=True, byteorder=">", rowsperstrip=4),
    dict(data=np.zeros((30, 20), np.float32)),
    dict(data=np.zeros((30, 20), np.int16)),
    dict(data=np.arange(600, dtype=np.uint16).reshape(30, 20), compression="zlib"),
    dict(data=np.zeros((1, 1), np.uint16)),
], ids=["plain", "strips", "big-endian", "bigtiff", "float32", "int16", "zlib", "1x1"])
def test_fast_header_reader_agrees_with_tifffile(tmp_path, kw):
    p = tmp_path / "a.tif"
    tifffile.imwrite(p, kw.pop("data"), **kw)
    with tifffile.TiffFile(p) as tf:
        page = tf.pages[0]
        ref = (tuple(page.shape), str(page.dtype),
               max(o + n for o, n in zip(page.dataoffsets, page.databytecounts)))
    assert tiff_header(p) == ref


def test_fast_header_reader_defers_unusual_files_to_tifffile(tmp_path):
    tifffile.imwrite(tmp_path / "tiled.tif", np.zeros((64, 64), np.uint16), tile=(16, 16))
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    (tmp_path / "short.tif").write_bytes(b"II*\x00\x08\x00\x00\x00\x05")
    for name in ("tiled.tif", "rgb.tif", "short.tif"):
        assert tiff_header(tmp_path / name) is None


def _zero_pixels_in_place(path):
    """Overwrite a TIFF's pixel data with zeros: size, header and tags stay as they were."""
    with tifffile.TiffFile(path) as tf:
        spans = list(zip(tf.pages[0].dataoffsets, tf.pages[0].databytecounts))
    with open(path, "r+b") as f:
        for offset, count in spans:
            f.seek(offset)
            f.write(bytes(count))


def test_deep_check_names_files_whose_pixels_were_corrupted_in_place(data, capsys):
    """Every manifest entry carries the CRC-32 of its pixels, computed while writing."""
    manifest = json.loads((data / "0000" / "manifest.json").read_text())
    tifs = [f for f in manifest["files"] if f["path"].endswith(".tif")]
    assert tifs and all(len(f["crc32"]) == 8 for f in tifs)
    assert check_main([str(data), "--deep"]) == 0
    assert "OK" in capsys.readouterr().out
    size = (data / CLEAN).stat().st_size
    for rel in (CLEAN, SHIFT):
        _zero_pixels_in_place(data / rel)
    assert (data / CLEAN).stat().st_size == size
    code, out = _run(data, capsys)                      # headers and sizes are intact
    assert code == 0, out
    r = nsgen("check", str(data), "--deep", check=False)
    assert r.returncode == 1
    bad = [line.strip() for line in r.stdout.splitlines() if "pixel data corrupted" in line]
    assert [line.split(":")[0] for line in bad] == sorted([CLEAN, SHIFT])
    assert "2 problems" in r.stdout


def test_deep_check_of_a_file_without_checksum_says_so(data, capsys):
    path = data / "0001" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["files"][4]["crc32"]
    write_manifest(path, manifest)
    assert check_main([str(data), "--deep"]) == 1
    out = capsys.readouterr().out
    assert f"{manifest['files'][4]['path']}: no pixel checksum (crc32) in the manifest" in out


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    root = tmp_path_factory.mktemp("h5") / "data"
    nsgen("-m", "simple", "-N", "16", "-o", "2", "-S", "2", "--no-preview", "--format", "hdf5",
          "-r", str(root))
    return root


def test_output_container_without_its_manifest_is_reported(containers, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(containers, root)
    assert _run(root, capsys)[0] == 0
    shutil.rmtree(root / "0001")        # the manifest of 0001.h5 is gone
    code, out = _run(root, capsys)
    assert code == 1
    assert "0001.h5: output container without its manifest (0001/manifest.json missing" in out
    shutil.copy(root / "0000.h5", root / "0007.h5")    # a container no manifest lists
    code, out = _run(root, capsys)
    assert code == 1 and "0007.h5: output container without its manifest" in out


def test_no_manifest_at_all_or_a_container_as_root_is_a_usage_error(containers, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(containers, root)
    assert cli_main(["check", str(root / "0000.h5")]) == 2
    err = capsys.readouterr().err
    assert "is the output container of sample 0000, not a dataset root" in err
    assert f"nsgen check {root}" in err
    shutil.rmtree(root / "0000")
    shutil.rmtree(root / "0001")
    assert cli_main(["check", str(root)]) == 2
    err = capsys.readouterr().err
    assert "holds output containers (0000.h5, 0001.h5) but no sample manifest" in err
    assert err.count("\n") == 1
