"""Tests of nsgen.io.scan_writer: layout, image_key, determinism, real stripes at the truth."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from nsgen.errors import NsgenError
from nsgen.io.scan_writer import Defect, main, write_scan
from nsgen.prep.normalise import flat_field_log
from nsgen.scan import open_scan

DATA = "entry1/tomo_entry/data/data"
KEY = "entry1/tomo_entry/instrument/detector/image_key"
ANGLES = "entry1/tomo_entry/data/rotation_angle"


def sinograms(path: Path) -> np.ndarray:
    with open_scan(path) as scan:
        rows = slice(0, scan.shape[1])
        return flat_field_log(scan.read_projections(rows), scan.flat_mean(rows), scan.dark_mean(rows))


def test_i12_layout_and_image_key(tmp_path: Path) -> None:
    path = tmp_path / "scan.nxs"
    truth = write_scan(path, n_angles=11, n_rows=4, n_columns=20, n_flats=3, n_darks=2, flats_after=True)
    with h5py.File(path, "r") as f:
        data, key, angles = f[DATA], f[KEY][()], f[ANGLES][()]
        assert data.shape == truth.shape == (11 + 2 * 5, 4, 20)
        assert data.dtype == np.uint16 and data.chunks == (1, 4, 20)
        assert key.tolist() == [2, 2, 1, 1, 1] + [0] * 11 + [1, 1, 1, 2, 2]
        np.testing.assert_array_equal(key, truth.image_key)
        np.testing.assert_allclose(angles[key == 0], np.linspace(0, 180, 11))
        assert f["entry1/tomo_entry"].attrs["NX_class"] == "NXsubentry"
        assert f["entry1/tomo_entry/definition"][()] == b"NXtomo"
        assert f["entry1/tomo_entry/data"].attrs["signal"] == "data"
        darks = data[key == 2]
        assert 80 < darks.mean() < 120
        assert data[key == 1].mean() > 10000
    assert (truth.n_projections, truth.n_flats, truth.n_darks) == (11, 6, 4)
    assert not path.with_name(f".{path.name}.tmp").exists()


def test_deterministic_and_seeded(tmp_path: Path) -> None:
    kw = dict(n_angles=9, n_rows=4, n_columns=24, n_flats=2, n_darks=2)
    write_scan(tmp_path / "a.nxs", seed=4, **kw)
    write_scan(tmp_path / "b.nxs", seed=4, compression="gzip", chunks=(3, 2, 24), **kw)
    write_scan(tmp_path / "c.nxs", seed=5, **kw)
    read = {n: h5py.File(tmp_path / f"{n}.nxs", "r")[DATA][()] for n in "abc"}
    np.testing.assert_array_equal(read["a"], read["b"])
    assert not np.array_equal(read["a"], read["c"])


def test_compression_filters(tmp_path: Path) -> None:
    for name in ("gzip", "blosc", "bitshuffle"):
        write_scan(tmp_path / f"{name}.nxs", n_angles=3, n_rows=2, n_columns=8, compression=name)
        with h5py.File(tmp_path / f"{name}.nxs", "r") as f:
            plist = f[DATA].id.get_create_plist()
            assert plist.get_nfilters() >= 1


def test_truth_from_explicit_defects(tmp_path: Path) -> None:
    truth = write_scan(tmp_path / "s.nxs", n_angles=5, n_rows=10, n_columns=30,
                       defect_rows={7: (2, 5), 20: (4, 10, 1.08)})
    assert truth.defects == (Defect(7, 2, 5, 0.94), Defect(20, 4, 10, 1.08))
    assert truth.stripe_rows.tolist() == list(range(2, 10))
    assert truth.stripe_columns.tolist() == [7, 20]
    assert truth.stripe_columns_in_row(4).tolist() == [7, 20]
    assert truth.stripe_columns_in_row(0).tolist() == []


def test_defects_are_exact_full_stripes_after_normalisation(tmp_path: Path) -> None:
    """Same seed with and without defects: identical photons, so the normalised
    difference is -ln(gain) on the defect pixels at every angle and 0 elsewhere."""
    kw = dict(n_angles=61, n_rows=12, n_columns=64, n_flats=6, n_darks=4, seed=8)
    truth = write_scan(tmp_path / "stripes.nxs", **kw)
    write_scan(tmp_path / "clean.nxs", defect_rows={}, **kw)
    assert truth.defects, "default defects expected"
    diff = sinograms(tmp_path / "stripes.nxs") - sinograms(tmp_path / "clean.nxs")
    expected = np.zeros_like(diff)
    for d in truth.defects:
        expected[d.row_start:d.row_stop, :, d.column] = -np.log(d.gain)
    np.testing.assert_allclose(diff, expected, atol=2e-3)
    hit = np.any(np.abs(diff) > 0.02, axis=1)  # (rows, columns) that carry a stripe
    assert set(np.flatnonzero(hit.any(axis=1))) == set(truth.stripe_rows.tolist())
    for row in range(kw["n_rows"]):
        assert np.flatnonzero(hit[row]).tolist() == truth.stripe_columns_in_row(row).tolist()


@pytest.mark.parametrize("seed", [2, 11])
def test_stripes_visible_in_a_single_scan(tmp_path: Path, seed: int) -> None:
    """Without a clean twin: at every truth (row, column) the sinogram departs from
    its neighbouring columns by about -ln(gain) at (the median over) all angles,
    while the typical pixel does not depart at all. (The object's own sharp edges
    can look like that too, so no claim is made about every other pixel.)"""
    n_cols = 256
    truth = write_scan(tmp_path / "s.nxs", n_angles=91, n_rows=16, n_columns=n_cols, seed=seed)
    sino = sinograms(tmp_path / "s.nxs").astype(np.float64)
    neighbours = np.median(np.stack([np.roll(sino, k, axis=2) for k in (-4, -3, -2, 2, 3, 4)]), axis=0)
    residual = np.median(sino - neighbours, axis=1)  # (rows, columns)
    # Leave out the detector ends and the sharp, rotation-invariant container edges.
    axis, radius = (n_cols - 1) / 2, 0.42 * n_cols
    cols = np.arange(n_cols)
    checked = (np.abs(np.abs(cols - axis) - radius) > 4) & (cols >= 4) & (cols < n_cols - 4)
    stripe = np.zeros(residual.shape, dtype=bool)
    seen = 0
    for d in truth.defects:
        stripe[d.row_start:d.row_stop, d.column] = True
        if checked[d.column]:
            got = residual[d.row_start:d.row_stop, d.column] / -np.log(d.gain)
            assert np.all((got > 0.5) & (got < 1.5)), (d, got)
            seen += 1
    assert seen
    smallest = min(abs(np.log(d.gain)) for d in truth.defects)
    assert np.median(np.abs(residual[~stripe & checked[None, :]])) < 0.1 * smallest


def test_user_errors(tmp_path: Path) -> None:
    write_scan(tmp_path / "x.nxs", n_angles=2, n_rows=2, n_columns=8)
    with pytest.raises(NsgenError, match="already exists"):
        write_scan(tmp_path / "x.nxs", n_angles=2, n_rows=2, n_columns=8)
    write_scan(tmp_path / "x.nxs", n_angles=2, n_rows=2, n_columns=8, overwrite=True)
    with pytest.raises(NsgenError, match="outside the detector"):
        write_scan(tmp_path / "y.nxs", n_columns=8, defect_rows={8: (0, 1)})
    with pytest.raises(NsgenError, match="row_start < row_stop"):
        write_scan(tmp_path / "y.nxs", n_rows=4, defect_rows={1: (3, 3)})
    with pytest.raises(NsgenError, match="unknown compression"):
        write_scan(tmp_path / "y.nxs", compression="lzf")
    with pytest.raises(NsgenError, match="does not exist"):
        write_scan(tmp_path / "no" / "y.nxs")
    assert not (tmp_path / "y.nxs").exists()


def test_main_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.nxs"
    status = main([str(out), "--angles", "7", "--rows", "5", "--columns", "32", "--flats", "2", "--darks", "1",
                   "--flats-after", "--defect", "10:1:4", "--defect", "20:0:5:1.1", "--compression", "blosc",
                   "--seed", "3"])
    assert status == 0
    assert "wrote" in capsys.readouterr().out
    with open_scan(out) as scan:
        assert scan.shape == (7, 5, 32) and (scan.n_flats, scan.n_darks) == (4, 2)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "z.nxs"), "--defect", "10:1"])


def test_same_bytes_whatever_the_workers_and_block_size(tmp_path: Path) -> None:
    """Frame i has its own random stream: 1, 2 or 3 workers (threads of the default layout,
    processes of generate_frames) and any block size write the same file contents (labelled
    scan: every kind of defect, the drifting beam)."""
    kw = dict(n_angles=23, n_rows=6, n_columns=96, n_flats=3, n_darks=2, flats_after=True, seed=9,
              labelled=True)
    data = {}
    for workers in (1, 2, 3):
        write_scan(tmp_path / f"w{workers}.nxs", workers=workers, **kw)
        with h5py.File(tmp_path / f"w{workers}.nxs", "r") as f:
            data[workers] = f[DATA][()]
    np.testing.assert_array_equal(data[1], data[2])
    np.testing.assert_array_equal(data[1], data[3])
    key = write_scan(tmp_path / "k.nxs", **{**kw, "labelled": False}).image_key
    spec_blocks = {}
    from nsgen.io.scan_frames import FrameSpec, generate_frames
    n = key.size
    spec = FrameSpec(n_rows=6, n_columns=96, n_angles=23, seed=9, i0=2e4, dtype="float32", image_key=key,
                     frame_angle=np.linspace(0, 180, n))
    for block, workers in ((1, 1), (4, 1), (5, 2)):
        spec_blocks[(block, workers)] = np.concatenate([f for _, f in generate_frames(spec, block, workers)])
    for got in spec_blocks.values():
        np.testing.assert_array_equal(got, spec_blocks[(1, 1)])


@pytest.mark.parametrize("i0", [60.0, 20000.0])
def test_counts_have_the_mean_and_variance_of_poisson_photons_plus_read_noise(i0: float) -> None:
    """Flat counts at every pixel: mean dark + beam, variance beam + 2**2, below the exact
    Poisson threshold (i0 = 60: skewness beam / (beam + 4)**1.5 ~ 0.14, the photons' third
    cumulant) and above it (one Gaussian draw of the same mean and variance: no skew)."""
    from nsgen.io.scan_frames import READ_NOISE, FrameMaker, FrameSpec, _beam
    n = 2000
    key = np.ones(n, np.int32)
    key[0] = 0
    spec = FrameSpec(n_rows=2, n_columns=8, n_angles=1, seed=1, i0=i0, dtype="float64", image_key=key,
                     frame_angle=np.zeros(n))
    maker = FrameMaker(spec)
    flats = maker.frames(1, n)
    beam = _beam(2, 8, i0).astype(np.float64)
    dark = maker._dark.astype(np.float64)
    mean_err = (flats.mean(axis=0) - dark - beam) / np.sqrt((beam + READ_NOISE**2) / n)
    assert np.all(np.abs(mean_err) < 4.5)
    ratio = flats.var(axis=0, ddof=1) / (beam + READ_NOISE**2)
    assert abs(ratio.mean() - 1) < 0.06 and np.all(np.abs(ratio - 1) < 0.3)
    centred = flats - flats.mean(axis=0)
    skew = (centred**3).mean(axis=0) / flats.var(axis=0) ** 1.5
    expected = beam / (beam + READ_NOISE**2) ** 1.5 if i0 < 100 else np.zeros_like(beam)
    assert abs(skew.mean() - expected.mean()) < 0.045  # standard error ~0.014


def test_workers_option_errors(tmp_path: Path) -> None:
    with pytest.raises(NsgenError, match="--workers must be an integer >= 1"):
        write_scan(tmp_path / "x.nxs", workers=0)
    assert not (tmp_path / "x.nxs").exists()


def test_default_layout_written_by_the_workers_is_the_same_file(tmp_path: Path) -> None:
    """Default layout: every chunk allocated at creation and filled by the workers; the whole
    file (metadata and data) is the same for 1 and 2 workers, and its data equal the frames
    the compressed path writes through h5py."""
    kw = dict(n_angles=13, n_rows=5, n_columns=40, n_flats=2, n_darks=2, seed=6)
    for workers in (1, 2):
        write_scan(tmp_path / f"w{workers}.nxs", workers=workers, **kw)
    write_scan(tmp_path / "gzip.nxs", compression="gzip", **kw)
    assert (tmp_path / "w1.nxs").read_bytes() == (tmp_path / "w2.nxs").read_bytes()
    with h5py.File(tmp_path / "w1.nxs", "r") as f, h5py.File(tmp_path / "gzip.nxs", "r") as g:
        assert f[DATA].id.get_create_plist().get_alloc_time() == h5py.h5d.ALLOC_TIME_EARLY
        assert g[DATA].compression == "gzip"
        np.testing.assert_array_equal(f[DATA][()], g[DATA][()])


def test_fill_frames_threads_and_blocks_write_the_same_bytes(tmp_path: Path) -> None:
    """fill_frames' threads share one FrameMaker: any number of them and any block size give
    the bytes of generate_frames in one process (labelled: per-frame gains and caps)."""
    from nsgen.io.scan_defects import draw_defects
    from nsgen.io.scan_frames import FrameSpec, fill_frames, generate_frames

    key = np.array([2, 1] + [0] * 29 + [1, 2], np.int32)
    spec = FrameSpec(n_rows=12, n_columns=96, n_angles=29, seed=4, i0=2e4, dtype="uint16", image_key=key,
                     frame_angle=np.linspace(0, 180, key.size), labels=tuple(draw_defects(29, 12, 96, 4)),
                     labelled=True)
    want = np.concatenate([f for _, f in generate_frames(spec, 7, 1)]).tobytes()
    frame = 12 * 96 * 2
    offsets = np.arange(key.size, dtype=np.int64)[::-1] * frame  # any order of chunks in the file
    for workers, block in ((1, 33), (2, 1), (3, 4), (2, 5)):
        path = tmp_path / f"raw-{workers}-{block}"
        path.write_bytes(b"")
        fill_frames(spec, path, offsets, block, workers)
        got = np.frombuffer(path.read_bytes(), np.uint16).reshape(key.size, 12, 96)[::-1]
        assert got.tobytes() == want, (workers, block)
