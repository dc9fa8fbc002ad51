"""Manifests: the file list is the files on disk, bounds decode the TIFFs, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from helpers import all_files, nsgen, read
from nsgen.errors import NsgenError
from nsgen.io.manifest import (MANIFEST_VERSION, REQUIRED_FILE_KEYS, REQUIRED_KEYS,
                               load_manifests, manifest_problems, source_record,
                               write_json_atomic, write_manifest)
from nsgen.sim.projection import Geometry, project
from nsgen.sim.phantom import OBJECT_FIELDS


@pytest.fixture(scope="module")
def simple_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("simple") / "data"
    nsgen("-m", "simple", "-N", "16", "-o", "4", "-r", str(root), "-S", "2", "--no-preview")
    return root


@pytest.fixture(scope="module")
def complex_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("complex") / "data"
    nsgen("-m", "complex", "-N", "16", "-o", "4", "-s", "2", "-f", "2", "-r", str(root))
    return root


@pytest.mark.parametrize("which", ["simple_root", "complex_root"])
def test_manifest_lists_exactly_the_files_on_disk(which, request):
    root = request.getfixturevalue(which)
    manifests = load_manifests(root)
    listed = []
    for m in manifests:
        assert manifest_problems(m) == []
        assert m["manifest_version"] == MANIFEST_VERSION
        assert set(REQUIRED_KEYS) <= set(m)
        listed += [f["path"] for f in m["files"]] + [f"{m['sample']:04d}/manifest.json"]
        if which == "complex_root":
            listed.append(m["preview"])
        else:                                   # --no-preview
            assert "preview" not in m
    assert sorted(listed) == all_files(root)


@pytest.mark.parametrize("which", ["simple_root", "complex_root"])
def test_every_file_entry_matches_its_tiff(which, request):
    root = request.getfixturevalue(which)
    for m in load_manifests(root):
        paths = {f["path"] for f in m["files"]}
        lows, highs = [], []
        for f in m["files"]:
            assert set(REQUIRED_FILE_KEYS) <= set(f)
            u = read(root / f["path"])
            assert list(u.shape) == f["shape"]
            lo, hi = f["bounds"]
            assert lo < hi
            lows.append(u.min())
            highs.append(u.max())
            if f["role"] == "stripe":
                assert f["target"] in paths
                t = next(g for g in m["files"] if g["path"] == f["target"])
                assert t["role"] == "clean" and t["index"] == f["index"]
        # the bounds are the sample's exact range: some file reaches each end
        assert min(lows) == 0 and max(highs) == 65535


def _decode(u, bounds):
    lo, hi = bounds
    return lo + u * (hi - lo) / 65535


def test_simple_clean_decodes_to_an_independent_projection(simple_root):
    """The manifest's objects and bounds reproduce the clean files within one step."""
    for m in load_manifests(simple_root):
        objects = np.array([[o[k] for k in OBJECT_FIELDS] for o in m["objects"]])
        geometry = Geometry.for_size(m["config"]["size"])
        p3 = project(objects, geometry, (0, geometry.n_rows))
        for f in m["files"]:
            if f["role"] == "clean":
                step = (f["bounds"][1] - f["bounds"][0]) / 65535
                got = _decode(read(simple_root / f["path"]), f["bounds"])
                assert np.abs(got - p3[f["index"]]).max() <= step


def test_complex_clean_is_the_normalised_projection_plus_noise(complex_root):
    m = load_manifests(complex_root)[0]
    objects = np.array([[o[k] for k in OBJECT_FIELDS] for o in m["objects"]])
    geometry = Geometry.for_size(m["config"]["size"])
    pn = project(objects, geometry, (0, geometry.n_rows)) / m["projection_max"]
    clean = np.stack([_decode(read(complex_root / f["path"]), f["bounds"])
                      for f in m["files"] if f["role"] == "clean"])
    resid = clean - pn
    assert abs(np.median(resid)) < 0.01          # -log(tau) is Pn up to photon noise
    assert resid.std() < 0.05
    assert np.corrcoef(clean.ravel(), pn.ravel())[0, 1] > 0.95


def test_complex_records_shift_and_offset(complex_root):
    m = load_manifests(complex_root)[0]
    stripes = [f for f in m["files"] if f["role"] == "stripe"]
    assert {(f["shift"], f["offset"]) for f in stripes} == {(0, -2), (1, 0)}
    assert all(f["path"].startswith(f"0000/shift{f['shift']:02d}/") for f in stripes)


def test_write_manifest_is_atomic_and_validated(tmp_path):
    good = {"nsgen_version": "x", "mode": "simple", "sample": 0, "seed": 0, "config": {},
            "files": [{"path": "0000/a.tif", "role": "clean", "index": 0, "shape": [2, 3],
                       "bounds": [0.0, 1.0]}]}
    (tmp_path / "0000").mkdir()
    write_manifest(tmp_path / "0000" / "manifest.json", good)
    assert os.listdir(tmp_path / "0000") == ["manifest.json"]
    assert load_manifests(tmp_path)[0]["manifest_version"] == MANIFEST_VERSION
    bad = dict(good, files=[dict(good["files"][0], bounds=[1.0, 0.0], target="nowhere.tif")])
    with pytest.raises(ValueError, match="bounds.*target nowhere.tif"):
        write_manifest(tmp_path / "0000" / "manifest.json", bad)
    # a failed write leaves the old file and no temporary
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "0000" / "manifest.json", {"x": object()})
    assert os.listdir(tmp_path / "0000") == ["manifest.json"]
    assert load_manifests(tmp_path)[0]["files"] == good["files"]


def test_manifest_problems_names_each_defect():
    m = {"manifest_version": 1, "nsgen_version": "x", "mode": "simple", "sample": "0",
         "seed": 0, "config": {},
         "files": [{"path": "../a.tif", "role": "clean", "index": 0, "shape": [2, 3],
                    "bounds": [0, 1]},
                   {"path": "b.tif", "role": "weird", "index": 0, "shape": [0, 3],
                    "bounds": [0, float("nan")]},
                   {"path": "b.tif", "role": "clean"}]}
    text = " | ".join(manifest_problems(m))
    for what in ("sample is not a int", "path must be relative", "unknown role 'weird'",
                 "shape must be", "bounds must be", "lacks index, shape, bounds"):
        assert what in text


def test_load_manifests_sorts_and_rejects_broken_files(tmp_path):
    for s in (3, 1):
        (tmp_path / f"{s:04d}").mkdir()
        write_manifest(tmp_path / f"{s:04d}" / "manifest.json",
                       {"nsgen_version": "x", "mode": "simple", "sample": s, "seed": 0,
                        "config": {}, "files": []})
    assert [m["sample"] for m in load_manifests(tmp_path)] == [1, 3]
    (tmp_path / "0003" / "manifest.json").write_text("{not json")
    with pytest.raises(NsgenError, match="cannot read manifest .*0003"):
        load_manifests(tmp_path)
    with pytest.raises(NsgenError, match="not a directory"):
        load_manifests(tmp_path / "missing")


def test_source_record_size_mtime_and_cheap_checksum(tmp_path):
    p = tmp_path / "scan.nxs"
    p.write_bytes(b"abc" * 1000)
    os.utime(p, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    rec = source_record(p)
    assert rec["path"] == str(p.resolve()) and rec["size"] == 3000
    assert rec["mtime_ns"] == 1_700_000_000_123_456_789
    assert rec["mtime"] == "2023-11-14T22:13:20.123456Z"
    assert rec["sha256"] == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert "sha256" not in source_record(p, checksum_limit=2999)
    json.dumps(rec)
