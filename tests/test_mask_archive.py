"""Tests for nsgen.io.mask_archive (.npz mask archive: lazy read, atomic append)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from helpers import HANG, wait_for
from nsgen.errors import NsgenError
from nsgen.io import mask_archive as ma
from nsgen.io.deflate import Deflated, crc32_combine, deflate_piece
from nsgen.io.mask_archive import append_mask, mask_key, merge_archives, read_mask
from nsgen.io.zip_writer import member_span
from nsgen.stages.stripes import band_flags, mask_bands, mask_flags

REPO = Path(__file__).resolve().parents[1]


def random_mask(seed: int, shape=(6, 4, 10)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < 0.3


def raw_members(path: Path) -> dict[str, bytes]:
    """Each member's bytes as stored: local header + compressed data (+ descriptor)."""
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        out = {}
        for info in zf.infolist():
            span = member_span(fh, info)
            fh.seek(info.header_offset)
            out[info.filename] = fh.read(span)
        return out


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_mask_key():
    assert mask_key("/dls/i12/data/119617.nxs") == "m119617"
    assert mask_key(Path("scans/0007.nxs")) == "m0007"  # leading zeros kept
    assert mask_key("sample.a.nxs") == "msample.a"


def test_create_and_read(tmp_path):
    path = tmp_path / "masks.npz"
    m = random_mask(0)
    append_mask(path, "m1000", m)
    got = read_mask(path, "m1000")
    assert got.dtype == np.uint8 and got.shape == m.shape
    assert np.array_equal(got, m.astype(np.uint8))
    with np.load(path) as npz:  # plain numpy compatibility
        assert npz.files == ["m1000"]
        assert np.array_equal(npz["m1000"], got)
    with zipfile.ZipFile(path) as zf:
        (info,) = zf.infolist()
        assert info.filename == "m1000.npy"
        assert info.compress_type == zipfile.ZIP_DEFLATED
    assert leftovers(tmp_path) == []


def test_integer_masks_and_weights(tmp_path):
    path = tmp_path / "masks.npz"
    m = random_mask(1).astype(np.int64)
    w = np.random.default_rng(1).random(m.shape)  # float64 -> stored float32
    append_mask(path, "m7", m, weights=w)
    with np.load(path) as npz:
        assert sorted(npz.files) == ["m7", "m7_weights"]
        assert npz["m7"].dtype == np.uint8 and np.array_equal(npz["m7"], m)
        assert npz["m7_weights"].dtype == np.float32
        assert np.array_equal(npz["m7_weights"], w.astype(np.float32))


def test_append_keeps_old_entries_byte_identical(tmp_path):
    path = tmp_path / "masks.npz"
    old = {"m1": random_mask(2).view(np.uint8), "m2": random_mask(3).view(np.uint8)}
    np.savez_compressed(path, **old)  # an archive written by numpy itself
    before = raw_members(path)
    new = random_mask(4)
    append_mask(path, "m3", new)
    after = raw_members(path)
    assert set(after) == {"m1.npy", "m2.npy", "m3.npy"}
    for name, blob in before.items():
        assert after[name] == blob
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    with np.load(path) as npz:
        for key, value in old.items():
            assert np.array_equal(npz[key], value)
        assert np.array_equal(npz["m3"], new)
    append_mask(path, "m4", random_mask(5))  # and again on our own output
    assert all(raw_members(path)[n] == b for n, b in after.items())


def test_refuses_existing_key(tmp_path):
    path = tmp_path / "masks.npz"
    append_mask(path, "m1", random_mask(6))
    before = path.read_bytes()
    with pytest.raises(NsgenError, match="already holds 'm1'") as err:
        append_mask(path, "m1", random_mask(7))
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_key_and_its_weights(tmp_path):
    path = tmp_path / "masks.npz"
    append_mask(path, "m1", random_mask(8), weights=np.ones((6, 4, 10)))
    append_mask(path, "m2", random_mask(9))
    kept = raw_members(path)["m2.npy"]
    new = random_mask(10)
    append_mask(path, "m1", new, overwrite=True)
    with np.load(path) as npz:
        assert sorted(npz.files) == ["m1", "m2"]  # stale weights dropped
        assert np.array_equal(npz["m1"], new)
    assert raw_members(path)["m2.npy"] == kept


def test_identical_content_gives_identical_archives(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for p in (a, b):
        append_mask(p, "m1", random_mask(11))
        append_mask(p, "m2", random_mask(12))
    assert a.read_bytes() == b.read_bytes()


def test_memmap_mask_is_streamed(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "spill.npy", mode="w+", dtype=bool,
                                   shape=(6, 4, 10))
    mm[:] = random_mask(13)
    append_mask(tmp_path / "masks.npz", "m5", mm)
    assert np.array_equal(read_mask(tmp_path / "masks.npz", "m5"), random_mask(13))


def test_read_errors(tmp_path):
    with pytest.raises(NsgenError, match="does not exist.*nsgen mask"):
        read_mask(tmp_path / "none.npz", "m1")
    text = tmp_path / "notes.npz"
    text.write_text("not a zip\n")
    with pytest.raises(NsgenError, match="is not a mask archive"):
        read_mask(text, "m1")
    path = tmp_path / "masks.npz"
    append_mask(path, "m1000", random_mask(14), weights=np.zeros((6, 4, 10)))
    append_mask(path, "m1001", random_mask(15))
    with pytest.raises(NsgenError) as err:
        read_mask(path, "m999")
    msg = str(err.value)
    assert "no key 'm999'" in msg and "m1000, m1001" in msg and "nsgen mask" in msg
    assert "_weights" not in msg and "\n" not in msg


def test_read_touches_only_its_key(tmp_path):
    path = tmp_path / "masks.npz"
    good = random_mask(16)
    append_mask(path, "good", good)
    append_mask(path, "bad", np.random.default_rng(0).integers(0, 2, (60, 40, 50)))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("bad.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 20  # inside the compressed data
    raw[start : start + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    assert np.array_equal(read_mask(path, "good"), good)
    with pytest.raises(NsgenError, match="unreadable"):
        read_mask(path, "bad")


def test_append_errors(tmp_path):
    path = tmp_path / "masks.npz"
    path.write_text("precious")
    with pytest.raises(NsgenError, match="exists but is not a mask archive"):
        append_mask(path, "m1", random_mask(17))
    assert path.read_text() == "precious"
    fresh = tmp_path / "fresh.npz"
    for key in ("", "a/b", "m1_weights"):
        with pytest.raises(NsgenError):
            append_mask(fresh, key, random_mask(18))
    with pytest.raises(ValueError, match="3D"):
        append_mask(fresh, "m1", np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="0 or 1"):
        append_mask(fresh, "m1", np.full((2, 2, 2), 2))
    with pytest.raises(ValueError, match="bool or integer"):
        append_mask(fresh, "m1", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="weights shape"):
        append_mask(fresh, "m1", np.zeros((2, 2, 2), bool), weights=np.zeros((2, 2, 3)))
    assert not fresh.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_during_write_leaves_archive_intact(tmp_path, monkeypatch, exc):
    path = tmp_path / "masks.npz"
    append_mask(path, "m1", random_mask(19))
    before = path.read_bytes()

    def broken(zw, name, array):
        with zw.stream(name) as fh:
            fh.write(b"\x93NUMPY partial")
        raise exc

    monkeypatch.setattr(ma, "_write_entry", broken)
    with pytest.raises(type(exc)):
        append_mask(path, "m2", random_mask(20))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    assert np.array_equal(read_mask(path, "m1"), random_mask(19))


def test_hard_kill_during_write_leaves_archive_intact(tmp_path):
    path = tmp_path / "masks.npz"
    append_mask(path, "m1", random_mask(21))
    before = path.read_bytes()
    marker = tmp_path / "writing"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np
        from nsgen.io import mask_archive as ma

        def hang(fh, array, allow_pickle=False):
            fh.write(b"\\x93NUMPY" + bytes(4096))
            open({str(marker)!r}, "w").close()
            time.sleep({HANG})

        np.lib.format.write_array = hang
        ma.append_mask({str(path)!r}, "m2", np.ones((50, 40, 30), bool))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(marker.exists, "the writer began its entry", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before  # the archive was never touched
    with np.load(path) as npz:
        assert npz.files == ["m1"]
    stale = leftovers(tmp_path)  # the half-written temporary file, beside it
    assert len(stale) == 1 and stale[0].startswith(".masks.npz.")


# ------------------------------------------------------------------------------------------
# helpers used by `nsgen mask` and the paired/patch modes
# ------------------------------------------------------------------------------------------


def test_check_archive_writable(tmp_path):
    path = tmp_path / "sub" / "masks.npz"
    ma.check_archive_writable(path, "m1", weights=True)  # nothing there yet: fine
    append_mask(path, "m1", random_mask(22))  # creates the directory
    with pytest.raises(NsgenError, match="already holds 'm1'"):
        ma.check_archive_writable(path, "m1")
    ma.check_archive_writable(path, "m1", overwrite=True)
    ma.check_archive_writable(path, "m2", weights=True)
    np.savez_compressed(tmp_path / "orphan.npz", m3_weights=np.zeros(2))
    with pytest.raises(NsgenError, match="already holds 'm3'"):
        ma.check_archive_writable(tmp_path / "orphan.npz", "m3")
    (tmp_path / "text.npz").write_text("x")
    with pytest.raises(NsgenError, match="is not a mask archive"):
        ma.check_archive_writable(tmp_path / "text.npz", "m1")
    with pytest.raises(NsgenError, match="path separator"):
        ma.check_archive_writable(path, "../m1")


def test_check_mask_reads_the_header_only(tmp_path):
    path = tmp_path / "masks.npz"
    shape = (30, 20, 40)
    big = np.random.default_rng(2).integers(0, 2, shape).astype(np.uint8)
    np.savez_compressed(path, m1=big, f=np.zeros(shape, np.float32))
    ma.check_mask(path, "m1", shape)
    with pytest.raises(NsgenError, match=r"has shape \(30, 20, 40\) but the scan is "
                                         r"\(30, 20, 41\)"):
        ma.check_mask(path, "m1", (30, 20, 41))
    with pytest.raises(NsgenError, match="dtype float32"):
        ma.check_mask(path, "f", shape)
    with pytest.raises(NsgenError, match="no key 'm2'.*m1"):
        ma.check_mask(path, "m2", shape)
    with pytest.raises(NsgenError, match="does not exist"):
        ma.check_mask(tmp_path / "none.npz", "m1", shape)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("m1.npy")
    raw = bytearray(path.read_bytes())
    mid = info.header_offset + info.compress_size // 2
    raw[mid : mid + 256] = bytes(256)  # corrupt the data, not the header
    path.write_bytes(bytes(raw))
    ma.check_mask(path, "m1", shape)
    with pytest.raises(NsgenError, match="unreadable"):
        read_mask(path, "m1")


@pytest.mark.parametrize("layout", ["append", "bool", "fortran", "stored"])
@pytest.mark.parametrize("patch_shape", [None, (3, 4), (5, 7), (12, 21)])
def test_read_mask_bands_gives_the_flags_of_the_whole_mask(tmp_path, layout, patch_shape):
    """Streaming the archive and ORing over angle bands gives the flags that mask_flags
    computes from the whole mask in memory, for every patch shape (crops with remainders)."""
    path = tmp_path / "masks.npz"
    shape = (12, 9, 21)
    mask = np.zeros(shape, bool)
    mask[3:9, [1, 4, 8], 5] = True
    mask[0, 6, 20] = True
    mask[11, 2, 0] = True
    if layout == "append":
        append_mask(path, "m1", mask)
    elif layout == "bool":
        np.savez_compressed(path, m1=mask)
    elif layout == "stored":      # not deflated: read through zipfile
        np.savez(path, m1=mask.astype(np.uint8))
    else:
        np.savez_compressed(path, m1=np.asfortranarray(mask.astype(np.uint8)))
    bands = mask_bands(shape[0], patch_shape)
    banded = ma.read_mask_bands(path, "m1", shape, bands)
    assert banded.dtype == bool and banded.shape == (len(bands), 9, 21)
    for b, (k0, k1) in enumerate(bands):
        assert np.array_equal(banded[b], mask[k0:k1].any(axis=0))
    assert np.array_equal(band_flags(banded, patch_shape), mask_flags(mask, patch_shape))
    assert np.array_equal(band_flags(banded, patch_shape), _patch_flags(mask, patch_shape))
    if patch_shape is None:
        assert band_flags(banded, None)[:, 0].tolist() == [r in (1, 2, 4, 6, 8) for r in range(9)]


def _patch_flags(mask: np.ndarray, patch_shape: tuple[int, int] | None) -> np.ndarray:
    """The definition: any voxel set in each cropped patch (p = w * nh + h) or row."""
    if patch_shape is None:
        return mask.any(axis=(0, 2))[:, None]
    n_angles, rows, n_cols = mask.shape
    ph, pw = patch_shape
    rs = slice((n_angles % ph) // 2, (n_angles % ph) // 2 + n_angles // ph * ph)
    cs = slice((n_cols % pw) // 2, (n_cols % pw) // 2 + n_cols // pw * pw)
    nh, nw = n_angles // ph, n_cols // pw
    out = np.zeros((rows, nw * nh), bool)
    for h in range(nh):
        for w in range(nw):
            patch = mask[rs][h * ph:(h + 1) * ph, :, cs][:, :, w * pw:(w + 1) * pw]
            out[:, w * nh + h] = patch.any(axis=(0, 2))
    return out


def test_read_mask_bands_errors(tmp_path):
    path = tmp_path / "masks.npz"
    append_mask(path, "m1", random_mask(23))
    with pytest.raises(NsgenError, match=r"\(6, 4, 11\)"):
        ma.read_mask_bands(path, "m1", (6, 4, 11), [(0, 6)])
    with pytest.raises(NsgenError, match="no key 'm2'"):
        ma.read_mask_bands(path, "m2", (6, 4, 10), [(0, 6)])
    with pytest.raises(ValueError, match="disjoint"):
        ma.read_mask_bands(path, "m1", (6, 4, 10), [(0, 4), (3, 6)])
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(NsgenError):
        ma.read_mask_bands(tmp_path / "cut.npz", "m1", (6, 4, 10), [(0, 6)])
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["m1.npy"]
    bad = bytearray(raw)
    bad[raw.rindex(b"PK\x01\x02") + 16] ^= 0xFF  # the central directory's CRC-32 of m1.npy
    (tmp_path / "crc.npz").write_bytes(bytes(bad))
    with pytest.raises(NsgenError, match="unreadable.*CRC-32"):
        ma.read_mask_bands(tmp_path / "crc.npz", "m1", (6, 4, 10), [(0, 6)])


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_merge_archives_copies_members_as_stored(tmp_path):
    a = _npz(tmp_path / "a.npz", ma=np.arange(6, dtype=np.uint8).reshape(2, 3))
    b = _npz(tmp_path / "b.npz", mb=np.ones((2, 2), np.uint8), mb_weights=np.zeros(2, "f4"))
    archive = _npz(tmp_path / "masks.npz", mold=np.full(3, 7, np.uint8),
                   ma=np.zeros(1, np.uint8))
    stored = {i.filename: (i.CRC, i.compress_size) for p in (a, b)
              for i in zipfile.ZipFile(p).infolist()}
    keys = merge_archives(archive, [a, b])
    merged = {i.filename: (i.CRC, i.compress_size) for i in zipfile.ZipFile(archive).infolist()}
    assert all(merged[k] == v for k, v in stored.items())
    assert keys == ["ma.npy", "mb.npy", "mb_weights.npy", "mold.npy"]
    with np.load(archive) as z:
        assert sorted(z.files) == ["ma", "mb", "mb_weights", "mold"]
        assert np.array_equal(z["ma"], np.arange(6).reshape(2, 3))  # recomputed key wins
        assert np.array_equal(z["mold"], [7, 7, 7]) and z["mb_weights"].dtype == np.float32
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "masks.npz"]
    with pytest.raises(NsgenError, match="key ma is in both .*a.npz and .*c.npz"):
        merge_archives(archive, [a, _npz(tmp_path / "c.npz", ma=np.ones(1))])
    with pytest.raises(NsgenError, match="mask part .*task-0009.npz is missing; rerun"):
        merge_archives(archive, [a, tmp_path / "task-0009.npz"])
    with zipfile.ZipFile(archive) as z:  # the failed merges changed nothing
        assert sorted(z.namelist()) == keys


def test_deflated_pieces_make_one_valid_member(tmp_path):
    """Pieces deflated independently (sync-flushed, the last final) are one deflate stream;
    np.load reads the entry and zipfile's CRC check passes."""
    rng = np.random.default_rng(4)
    m = (rng.random((9, 5, 40)) < 0.2).astype(np.uint8)
    raw = m.tobytes()
    cuts = [0, 1, 700, 701, 1500, len(raw)]
    pieces, crc = [], zlib.crc32(b"")
    for a, b in zip(cuts[:-1], cuts[1:]):
        p, c = deflate_piece(raw[a:b], last=b == len(raw))
        pieces.append(p)
        crc = crc32_combine(crc, c, b - a)
    w = rng.random(m.shape).astype(np.float32)
    wp, wc = deflate_piece(w.tobytes(), last=True)
    path = tmp_path / "a.npz"
    ma.append_mask(path, "m1", Deflated(m.shape, "|u1", tuple(pieces), crc, len(raw)),
                   weights=Deflated(w.shape, "<f4", (wp,), wc, w.nbytes))
    ma.append_mask(path, "m2", m)
    with np.load(path) as z:
        assert sorted(z.files) == ["m1", "m1_weights", "m2"]
        assert np.array_equal(z["m1"], m) and np.array_equal(z["m2"], m)
        assert np.array_equal(z["m1_weights"], w)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
    bad = Deflated(m.shape, "|u1", tuple(pieces), crc ^ 1, len(raw))
    ma.append_mask(tmp_path / "b.npz", "m1", bad)
    with zipfile.ZipFile(tmp_path / "b.npz") as z:
        assert z.testzip() == "m1.npy"  # a wrong CRC would be caught by readers
