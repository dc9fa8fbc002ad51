"""Real-data modes end to end: made scans and the real k11 scan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from helpers import SHARED, nsgen, read, tree_digest
from nsgen.io.scan_writer import write_scan
from nsgen.modes.dynamic import frame_ranges
from nsgen.modes.real import EDGE_ROWS, OUT_SHAPE
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.patches import crop_to_multiple, split_patches
from nsgen.prep.resize import downsample
from nsgen.scan import open_scan

K11 = SHARED / "data" / "k11-18014" / "k11-18014.nxs"


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    d = tmp_path_factory.mktemp("scans")
    write_scan(d / "1000.nxs", n_angles=91, n_rows=48, n_columns=96, seed=1)
    write_scan(d / "1001.nxs", n_angles=91, n_rows=48, n_columns=96, seed=2, flats_after=True)
    write_scan(d / "1100.nxs", n_angles=91, n_rows=1, n_columns=96, seed=3)  # one row
    return d


def whole_scan(path: Path) -> np.ndarray:
    """Normalised sinograms of a whole (small) scan, computed directly."""
    with open_scan(str(path)) as s:
        rows = slice(0, s.shape[1])
        return flat_field_log(s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows))


def decode(path: Path, bounds: list[float]) -> np.ndarray:
    lo, hi = bounds
    return lo + read(path) * (hi - lo) / 65535


@pytest.fixture(scope="module")
def raw_run(scans, tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    nsgen("-m", "raw", "--hdf-root", str(scans / "1000.nxs"), "-s", "2", "-r", str(root),
          "--start", "3")
    return root


def test_raw_layout_and_names(raw_run):
    assert sorted(os.listdir(raw_run)) == ["0003"]
    assert sorted(os.listdir(raw_run / "0003")) == ["manifest.json", "preview.png", "shift00",
                                                    "shift01"]
    assert sorted(os.listdir(raw_run / "0003" / "shift01")) == \
        [f"0003_shift01_{v:04d}.tif" for v in range(48)]
    assert read(raw_run / "0003" / "shift00" / "0003_shift00_0007.tif").shape == OUT_SHAPE


@pytest.mark.parametrize("shift", [0, 1])
def test_raw_matches_direct_whole_array_computation(raw_run, scans, shift):
    m = json.loads((raw_run / "0003" / "manifest.json").read_text())
    files = [f for f in m["files"] if f["shift"] == shift]
    direct = downsample(whole_scan(scans / f"100{shift}.nxs"), OUT_SHAPE)
    lo, hi = files[0]["bounds"]
    inner = direct[EDGE_ROWS:48 - EDGE_ROWS]
    # bounds are the global min/max over the interior rows only (docs/science.md A.7)
    assert lo == pytest.approx(float(inner.min()), abs=1e-6)
    assert hi == pytest.approx(float(inner.max()), abs=1e-6)
    step = (hi - lo) / 65535
    for f in files:
        got = decode(raw_run / f["path"], f["bounds"])
        want = np.clip(direct[f["index"]], lo, hi)
        assert np.max(np.abs(got - want)) <= 0.5 * step + 1e-6


def test_flats_after_projections_are_not_projections(scans):
    with open_scan(str(scans / "1001.nxs")) as s:
        assert s.shape[0] == 91
        assert s.n_flats > 10  # flats before and after


@pytest.mark.parametrize("extra", [["-C", "1", "--workers", "1"], ["-C", "7", "--workers", "3"]])
def test_raw_bytes_independent_of_chunks_and_workers(raw_run, scans, tmp_path, extra):
    nsgen("-m", "raw", "--hdf-root", str(scans / "1000.nxs"), "-s", "2", "-r", str(tmp_path),
          "--start", "3", *extra)
    assert tree_digest(tmp_path) == tree_digest(raw_run)


def test_explicit_file_list_equals_numbering_rule(raw_run, scans, tmp_path):
    nsgen("-m", "raw", "--hdf-root", str(scans / "1000.nxs"), str(scans / "1001.nxs"),
          "-r", str(tmp_path), "--start", "3")
    assert tree_digest(tmp_path) == tree_digest(raw_run)


@pytest.mark.shared_data("data/k11-18014/k11-18014.nxs")
def test_raw_on_real_k11_scan(tmp_path):
    nsgen("-m", "raw", "--hdf-root", str(K11), "-s", "1", "-r", str(tmp_path))
    m = json.loads((tmp_path / "0000" / "manifest.json").read_text())
    assert len(m["files"]) == 22
    # the master file and the file its external link points to, with size and checksum
    names = [Path(src["path"]).name for src in m["sources"]]
    assert names == ["k11-18014.nxs", "k11-18014-imaging.h5"]
    assert m["sources"][1]["size"] == (K11.parent / "k11-18014" / "k11-18014-imaging.h5").stat().st_size
    assert len(m["sources"][1]["sha256"]) == 64
    direct = downsample(whole_scan(K11), OUT_SHAPE)
    lo, hi = m["files"][0]["bounds"]
    # 22 rows: too few to leave 20 out at each edge, so every row counts
    assert (lo, hi) == pytest.approx((float(direct.min()), float(direct.max())), abs=1e-6)
    got = decode(tmp_path / m["files"][11]["path"], m["files"][11]["bounds"])
    assert np.max(np.abs(got - direct[11])) <= 0.5 * (hi - lo) / 65535 + 1e-6


@pytest.mark.shared_data("data/k11-18014/k11-18014.nxs")
def test_dynamic_frames_on_k11(tmp_path):
    nsgen("-m", "dynamic", "--hdf-root", str(K11), "--frame-angles", "1000", "-r", str(tmp_path))
    tifs = sorted(p.name for p in tmp_path.glob("*.tif"))
    assert tifs == [f"0000_frame{f:02d}_{v:04d}.tif" for f in range(3) for v in range(22)]
    direct = whole_scan(K11)
    m = json.loads((tmp_path / "0000" / "manifest.json").read_text())
    f = next(x for x in m["files"] if x["frame"] == 2 and x["index"] == 5)
    want = downsample(direct[5, 2000:3000], OUT_SHAPE)
    lo, hi = f["bounds"]
    assert np.max(np.abs(decode(tmp_path / f["path"], f["bounds"]) - np.clip(want, lo, hi))) \
        <= 0.5 * (hi - lo) / 65535 + 1e-6


@pytest.mark.shared_data("data/k11-18014/k11-18014.nxs")
def test_dynamic_stride_two_is_the_reference(tmp_path):
    assert frame_ranges(3001, 1000, 2) == [(0, 1000)]
    assert len(frame_ranges(7200, 900, 2)) == 7200 // (2 * 900)
    nsgen("-m", "dynamic", "--hdf-root", str(K11), "--frame-angles", "1000", "--frame-stride",
          "2", "-r", str(tmp_path))
    assert len(list(tmp_path.glob("*.tif"))) == 22


@pytest.fixture(scope="module")
def detect_scan(tmp_path_factory):
    d = tmp_path_factory.mktemp("detect")
    write_scan(d / "7.nxs", n_angles=601, n_rows=32, n_columns=64, seed=3)
    return d / "7.nxs"


@pytest.fixture(scope="module")
def paired_run(detect_scan, tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    nsgen("-m", "paired", "--hdf-root", str(detect_scan), "-s", "1", "-r", str(root))
    return root


def test_paired_split_is_a_partition(paired_run):
    s = paired_run / "0000"
    fake = set(os.listdir(s / "fake_artifacts" / "clean"))
    assert fake == set(os.listdir(s / "fake_artifacts" / "stripe"))
    real = set(os.listdir(s / "real_artifacts" / "stripe"))
    assert os.listdir(s / "real_artifacts" / "clean") == []
    assert fake.isdisjoint(real)
    assert fake | real == {f"0000_shift00_{v:04d}.tif" for v in range(32)}


def test_paired_fake_pairs_differ_by_stripes_only(paired_run):
    s = paired_run / "0000"
    for name in sorted(os.listdir(s / "fake_artifacts" / "clean"))[:5]:
        clean = read(s / "fake_artifacts" / "clean" / name)
        stripe = read(s / "fake_artifacts" / "stripe" / name)
        changed = np.flatnonzero(np.abs(stripe - clean).max(axis=0) > 1)
        # PAIRED preset on 362 columns: int(3.62) = 3 stripes of width <= 5
        assert len(changed) <= 15


def test_paired_bytes_independent_of_chunks(paired_run, detect_scan, tmp_path):
    nsgen("-m", "paired", "--hdf-root", str(detect_scan), "-s", "1", "-r", str(tmp_path),
          "-C", "5", "--workers", "1")
    assert tree_digest(tmp_path) == tree_digest(paired_run)


def test_patch_names_counts_and_crop(detect_scan, tmp_path):
    nsgen("-m", "patch", "--hdf-root", str(detect_scan), "-s", "1", "-r", str(tmp_path),
          "--patch-size", "300", "20")
    s = tmp_path / "0000"
    # 601 x 64 -> crop to 600 x 60 -> nh = 2, nw = 3 -> 6 patches per sinogram
    fake = set(os.listdir(s / "fake_artifacts" / "clean"))
    real = set(os.listdir(s / "real_artifacts" / "stripe"))
    assert fake.isdisjoint(real)
    assert fake | real == {f"0000_shift00_{v:04d}_w{p:02d}.tif" for v in range(32)
                           for p in range(6)}
    m = json.loads((s / "manifest.json").read_text())
    # the unpaired input of row 25, patch 4: its clean if fake, its stripe input if real
    f = next(x for x in m["files"] if x["index"] == 25 and x["patch"] == 4
             and (x["role"] == "clean" or x["artefact"] == "real"))
    want = split_patches(crop_to_multiple(whole_scan(detect_scan)[25], (300, 20)), (300, 20))[4]
    lo, hi = f["bounds"]
    got = decode(tmp_path / f["path"], f["bounds"])
    assert got.shape == (300, 20)
    assert np.max(np.abs(got - np.clip(want, lo, hi))) <= 0.5 * (hi - lo) / 65535 + 1e-6


def test_frame_angles_not_given_are_the_scans_projections_per_half_turn(scans, tmp_path):
    """Without --frame-angles, a dynamic scan's frames are its projections per 180 degrees
    (91 angles 0..180 inclusive: 90), noted once, the bytes of giving --frame-angles 90."""
    scan = str(scans / "1100.nxs")
    r = nsgen("-m", "dynamic", "--hdf-root", scan, "-r", str(tmp_path / "auto"), "--no-preview")
    assert r.stderr.count("--frame-angles not given") == 1
    assert f"{scan} turns 180 degrees in 90 projections, so its frames are 90 angles" in r.stderr
    nsgen("-m", "dynamic", "--hdf-root", scan, "-r", str(tmp_path / "given"), "--no-preview",
          "--frame-angles", "90")
    digests = [tree_digest(tmp_path / run) for run in ("auto", "given")]
    assert digests[0] == digests[1] and list(digests[0]) == ["0000_frame00_0000.tif"]


def test_patch_size_not_given_is_cut_down_to_small_sinograms(scans, tmp_path):
    """Without --patch-size, a scan of fewer angles and columns than the default 1801 x 256
    is cut into patches of its own size (noted once), the bytes of giving that size."""
    scan = str(scans / "1100.nxs")   # 91 angles x 1 row x 96 columns
    r = nsgen("-m", "patch", "--hdf-root", scan, "-s", "1", "-r", str(tmp_path / "auto"),
              "--no-preview")
    assert r.stderr.count("--patch-size not given") == 1
    assert f"{scan} has 91 angles x 96 columns, so its patches are 91 x 96" in r.stderr
    m = json.loads((tmp_path / "auto" / "0000" / "manifest.json").read_text())
    assert {tuple(f["shape"]) for f in m["files"]} == {(91, 96)}
    nsgen("-m", "patch", "--hdf-root", scan, "-s", "1", "-r", str(tmp_path / "given"),
          "--no-preview", "--patch-size", "91", "96")
    digests = [tree_digest(tmp_path / run / "0000") for run in ("auto", "given")]
    assert digests[0] == digests[1] and len(digests[0]) == 2


@pytest.mark.parametrize("args,message", [
    (["-m", "raw", "--hdf-root", "/nonexistent/1000.nxs", "-s", "1"], "1000.nxs"),
    (["-m", "raw", "--hdf-root", "{scans}/1000.nxs", "-s", "3"], "1002.nxs"),
    (["-m", "raw", "--hdf-root", "{scans}/1000.nxs", "-s", "1", "--data-path", "/entry/nope"],
     "/entry/nope"),
    (["-m", "raw", "--hdf-root", "{scans}/1000.nxs", "-s", "1", "-S", "2"], "one sample"),
    (["-m", "patch", "--hdf-root", "{scans}/1000.nxs", "-s", "1", "--patch-size", "100", "20"],
     "--patch-size 100 20 is larger than"),
    (["-m", "paired", "--hdf-root", "{scans}/1100.nxs", "-s", "1", "--detector", "larix"],
     "too small for Larix stripe detection"),
    (["-m", "dynamic", "--hdf-root", "{scans}/1000.nxs", "--frame-angles", "92"],
     "--frame-angles 92"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(scans, tmp_path, args, message):
    root = tmp_path / "out"
    r = nsgen(*[a.format(scans=scans) for a in args], "-r", str(root), check=False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nsgen: error: ") and message in lines[0]
    assert not root.exists()


I12 = K11.parents[1] / "i12-separate-flats-darks"


@pytest.mark.shared_data("data/i12-separate-flats-darks")
def test_raw_with_separate_i12_flat_and_dark_files(tmp_path):
    """A scan without flats, normalised with the real i12 flat/dark files (in place)."""
    import h5py

    from nsgen.prep.normalise import flat_field_log

    rng = np.random.default_rng(4)
    proj = rng.integers(1000, 60000, (181, 10, 192), dtype=np.uint16)
    scan = tmp_path / "5000.nxs"
    with h5py.File(scan, "w") as f:
        f.create_dataset("entry1/tomo_entry/data/data", data=proj)
    flats, darks = I12 / "flat_field.h5", I12 / "dark_field_different_path.h5"
    root = tmp_path / "out"
    nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "--flats", str(flats),
          "--darks", f"{darks}:/tomo/data", "-r", str(root))
    with h5py.File(flats) as f, h5py.File(darks) as d:
        flat = f["1-NoProcessPlugin-tomo/data"][...].mean(axis=0, dtype=np.float64)
        dark = d["tomo/data"][...].mean(axis=0, dtype=np.float64)
    direct = downsample(flat_field_log(proj, flat.astype(np.float32), dark.astype(np.float32)),
                        OUT_SHAPE)
    m = json.loads((root / "0000" / "manifest.json").read_text())
    lo, hi = m["files"][0]["bounds"]
    assert (lo, hi) == pytest.approx((float(direct.min()), float(direct.max())), abs=1e-6)
    for f in m["files"]:
        got = decode(root / f["path"], f["bounds"])
        assert np.max(np.abs(got - direct[f["index"]])) <= 0.5 * (hi - lo) / 65535 + 1e-6
    names = {Path(s["path"]).name for s in m["sources"]}
    assert names == {"5000.nxs", "flat_field.h5", "dark_field_different_path.h5"}
    # without the separate files the scan has no flats: one clear line, nothing written
    r = nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(tmp_path / "x"),
              check=False)
    assert r.returncode == 2 and "flat" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("prefetch_rows,halo", [(1, 0), (7, 0), (12, 0), (10, 2), (1000, 0)])
def test_reader_asks_for_every_row_once_before_reading_it(monkeypatch, prefetch_rows, halo):
    """The prefetch hints ask for rows a batch of about PREFETCH_BYTES at a time: before a
    chunk is read, its batch and PREFETCH_AHEAD more, nothing further; each row once (halo
    rows aside); the main process's early hint is the first batch."""
    from nsgen.scan import ScanLayout
    from nsgen.stages import scan_source, scan_stages

    shape = (5, 40, 8)                       # one row of projections: 5 x 8 x 2 bytes
    monkeypatch.setattr(scan_stages, "PREFETCH_BYTES", prefetch_rows * 5 * 8 * 2)
    stage = scan_stages.ScanStage(scan_source.ScanSource("unused.nxs", ScanLayout()), shape,
                                  "uint16", chunk_rows=3, halo=halo)
    advised: list[int] = []
    requests: list[slice] = []

    class Hints:
        def advise_projections(self, rows: slice) -> None:
            advised.extend(range(rows.start, rows.stop))
            requests.append(rows)

    chunks = stage.chunks()
    batch = max(1, prefetch_rows // 3)
    for chunk in chunks:
        stage._prefetch(Hints(), chunk)
        i = chunk.index
        end = min(len(chunks), (i // batch + 1 + scan_stages.PREFETCH_AHEAD) * batch)  # ahead
        assert set(range(stage.read_rows(chunk)[0], stage.read_rows(chunks[end - 1])[1])) \
            <= set(advised)
        assert max(advised) < stage.read_rows(chunks[end - 1])[1]   # nothing further yet
    assert set(advised) == set(range(shape[1]))
    if halo == 0:
        assert sorted(advised) == list(range(shape[1]))   # each row asked for once
    # one request per batch of chunks
    assert requests == [stage._rows_of(chunks[k], chunks[min(len(chunks), k + batch) - 1])
                        for k in range(0, len(chunks), batch)]

    # the main process asks for the first batch early, from a scan it opens itself
    first = chunks[min(batch, len(chunks)) - 1]
    early: list[slice] = []

    class Opened(Hints):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def advise_projections(self, rows: slice) -> None:
            early.append(rows)

    monkeypatch.setattr(scan_source.ScanSource, "open_new", lambda self: Opened())
    stage.prefetch()
    assert early == [slice(0, stage.read_rows(first)[1])]


def test_compressed_scan_is_decompressed_once_and_gives_the_same_bytes(tmp_path):
    """A gzip scan compressed a frame per chunk, read in row chunks of 4, is first copied
    uncompressed (each frame decompressed once, no re-reading warning) and gives the TIFFs
    of the same scan stored uncompressed; the copy is removed afterwards."""
    kw = dict(n_angles=31, n_rows=16, n_columns=40, n_flats=3, n_darks=2, seed=4,
              flats_after=True)
    plain, packed = tmp_path / "plain.nxs", tmp_path / "packed.nxs"
    write_scan(plain, chunks=(1, 16, 40), **kw)
    write_scan(packed, chunks=(1, 16, 40), compression="gzip", **kw)
    runs = {}
    for name, scan in [("plain", plain), ("packed", packed)]:
        root = tmp_path / name
        r = nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(root), "-C", "4",
                  "--workers", "2", "--no-preview", "-v")
        runs[name] = (root, r.stderr)
    assert "decompress" not in runs["plain"][1]
    assert "decompressing 41 frames once" in runs["packed"][1]
    assert "warning" not in runs["packed"][1]
    digest = tree_digest(runs["plain"][0] / "0000")
    assert len(digest) == 16 and digest == tree_digest(runs["packed"][0] / "0000")
    assert not list((tmp_path / "packed").rglob("frames.h5*"))


def test_reread_warning_and_copy_space_check(tmp_path, monkeypatch):
    """The warning names the factor and the fix; a copy that does not fit is a clear error
    before anything is written."""
    import shutil
    from collections import namedtuple

    from nsgen.errors import NsgenError
    from nsgen.scan import ScanLayout
    from nsgen.stages.decompress import decompressed
    from nsgen.stages.scan_source import ScanSource
    from nsgen.stages.scan_stages import reread_warning

    text = reread_warning("s.nxs", 2160, 243)
    assert "9 times" in text and "h5repack -f NONE" in text and "--chunk-size" in text
    assert reread_warning("s.nxs", None, 7) is None
    scan = tmp_path / "packed.nxs"
    write_scan(scan, n_angles=31, n_rows=16, n_columns=40, n_flats=3, n_darks=2,
               chunks=(1, 16, 40), compression="gzip")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))

    from nsgen.runner import Log, StageRunner

    run = StageRunner(None, Log(False, False), workers=1, chunk_size=4, memory_limit=None,
                      tag="test")
    work = tmp_path / "work"
    with pytest.raises(NsgenError) as err:
        decompressed(run, ScanSource(str(scan), ScanLayout()), (31, 16, 40), "<u2", work)
    message = str(err.value)
    assert "GiB free" in message and "h5repack -f NONE" in message and "\n" not in message
    assert not (work / "frames.h5").exists() and not (work / "frames.h5.partial").exists()


def test_paired_with_the_robust_detector_splits_by_its_flags(detect_scan, tmp_path):
    from nsgen.prep.detect import detect_volume
    from nsgen.prep.detect_params import DetectParams

    nsgen("-m", "paired", "--hdf-root", str(detect_scan), "-s", "1", "-r", str(tmp_path),
          "--detector", "robust", "-C", "7")
    with open_scan(str(detect_scan)) as s:
        rows = slice(0, s.shape[1])
        vol = flat_field_log(s.read_projections(rows), s.flat_mean(rows), s.dark_mean(rows),
                             sinograms_first=False)
    flagged = detect_volume(vol, "robust", DetectParams.for_scan(vol.shape)).any(axis=(0, 2))
    real = set(os.listdir(tmp_path / "0000" / "real_artifacts" / "stripe"))
    assert real == {f"0000_shift00_{v:04d}.tif" for v in np.flatnonzero(flagged)}
    assert 0 < len(real) < 32


def test_manifest_records_the_range_each_file_uses(raw_run):
    m = json.loads((raw_run / "0003" / "manifest.json").read_text())
    for f in m["files"]:
        u = read(raw_run / f["path"])
        assert f["range_used"] == round((u.max() - u.min()) / 65535, 6)
    assert max(f["range_used"] for f in m["files"]) > 0.5
    assert m["bounds_method"] == "min/max of the interior rows"


def test_a_paired_run_without_fake_pairs_says_why(tmp_path):
    """A dead detector column flags every sinogram: no fake pairs, one warning, a manifest
    record, and PairDataset names the cause."""
    import h5py

    from nsgen.dataset import PairDataset
    from nsgen.errors import NsgenError

    scan = tmp_path / "7.nxs"
    write_scan(scan, n_angles=601, n_rows=32, n_columns=64, seed=3)
    with h5py.File(scan, "r+") as f:
        f["entry1/tomo_entry/data/data"][:, :, 5] = 0
    root = tmp_path / "out"
    r = nsgen("-m", "paired", "--hdf-root", str(scan), "-s", "1", "-r", str(root),
              "--no-preview")
    reason = ("the stripe mask flagged 100 % of sinograms (32 of 32) as holding real stripes; "
              "see --detector, or give a mask that flags fewer with --mask")
    assert f"nsgen: warning: sample 0000 made no fake pairs: {reason}" in r.stderr.splitlines()
    m = json.loads((root / "0000" / "manifest.json").read_text())
    assert m["pairs"] == {"fake": 0, "real": 32, "unit": "sinograms", "missing": "fake pairs",
                          "reason": reason}
    with pytest.raises(NsgenError, match=r"0 fake pairs, 32 real-artefact inputs: the stripe "
                                         r"mask flagged 100 % of sinograms"):
        PairDataset(root)


def test_check_scans_opens_the_scans_once_per_config(scans, monkeypatch):
    """A mode's check and its run_sample ask for the same config's scans: opened once;
    a new config, or a changed scan file, is checked again."""
    from nsgen.config import parse_config
    from nsgen.modes import real

    opened: list[Path] = []
    scan_info = real.scan_info
    monkeypatch.setattr(real, "scan_info", lambda c, p: (opened.append(p), scan_info(c, p))[1])
    monkeypatch.setattr(real, "_CHECKED", [])
    args = ["-m", "raw", "--hdf-root", str(scans / "1000.nxs"), "-s", "2", "-r", "unused"]
    config = parse_config(args)
    first = real.check_scans(config)
    assert real.check_scans(config) is first and len(opened) == 2
    assert real.check_scans(parse_config(args)) == first and len(opened) == 4
    config = parse_config(args)
    real.check_scans(config)
    st = os.stat(scans / "1001.nxs")
    os.utime(scans / "1001.nxs", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert real.check_scans(config) == first and len(opened) == 8
        assert real.check_scans(config) == first and len(opened) == 8
    finally:   # the module's other tests compare manifests that record it
        os.utime(scans / "1001.nxs", ns=(st.st_atime_ns, st.st_mtime_ns))


def test_bad_pixels_are_found_again_when_the_scan_file_changes(tmp_path):
    """bad_pixels_of caches per scan, but a scan rewritten at the same path (the Python API
    in one process) gets its own bad pixels, not the old file's."""
    import h5py

    from nsgen.modes.real import bad_pixels_of
    from nsgen.scan import ScanLayout
    from nsgen.stages.scan_source import ScanSource

    scan = tmp_path / "scan.nxs"
    write_scan(scan, n_angles=61, n_rows=4, n_columns=32, seed=1)
    source = ScanSource(str(scan), ScanLayout())
    before = bad_pixels_of(source)
    assert bad_pixels_of(source) is before                 # cached while the file stays
    with h5py.File(scan, "r+") as f:
        f["entry1/tomo_entry/data/data"][:, :, 7] = 0      # a dead column, in every frame
    after = bad_pixels_of(source)
    assert after.mask[:, 7].all() and not before.mask[:, 7].any()
