"""The ``.npz`` stripe-mask archive: lazy read of one key, atomic append.

Format (compatible with ``np.savez_compressed`` and ``np.load``): a zip file whose members
are ``<key>.npy`` (ZIP_DEFLATED, written with ``np.lib.format.write_array`` or, for entries
compressed in parallel pieces by the caller, as :class:`nsgen.io.deflate.Deflated`). A mask is
stored as uint8 0/1 at full resolution, axes (angles, detector rows, detector columns), under
``m<scan file stem>`` (see :func:`mask_key`); optional weights as float32 under
``<key>_weights``. ``np.load(path)[key]`` reads it.

Appending never rewrites existing entries: their zip members (local header, compressed data,
data descriptor) are copied byte for byte into a new archive written beside the old one
(hidden temporary name in the same directory), which then replaces it with ``os.replace``.
The zip container is written by :mod:`nsgen.io.zip_writer`, the compression is
python-isal's (:mod:`nsgen.io.deflate`); this module is the mask API on top of them.
An interrupted append leaves the old archive untouched (after a hard kill, a stale
``.<name>.*.tmp`` file may remain next to it; it is safe to delete).

Reading: :func:`read_mask` loads one key (other members are never decompressed);
:func:`check_mask` validates a key's shape and dtype from its ``.npy`` header alone;
:func:`read_mask_bands` streams one mask and ORs it over bands of angles, without ever
holding the whole mask. :func:`check_archive_writable` runs the checks of
:func:`append_mask` up front, before a long detection.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from nsgen.errors import NsgenError
from nsgen.io.deflate import Deflated, InflateError, Inflater, crc32_combine, deflate_piece
from nsgen.io.zip_writer import ZipWriter

__all__ = [
    "WEIGHTS_SUFFIX",
    "append_mask",
    "check_archive_writable",
    "check_mask",
    "mask_key",
    "merge_archives",
    "read_mask",
    "read_mask_bands",
]

WEIGHTS_SUFFIX = "_weights"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def mask_key(scan_path: str | os.PathLike[str]) -> str:
    """Archive key of the mask of a scan: ``'m' + file stem``.

    Examples
    --------
    >>> mask_key("/dls/i12/data/119617.nxs")
    'm119617'
    """
    return "m" + Path(scan_path).stem


def _mask_keys(names: list[str]) -> list[str]:
    keys = [n.removesuffix(".npy") for n in names]
    return sorted(k for k in keys if not k.endswith(WEIGHTS_SUFFIX))


def read_mask(archive_path: str | os.PathLike[str], key: str) -> np.ndarray:
    """Load one mask from the archive (only that member is read and decompressed).

    Parameters
    ----------
    archive_path : path
        The ``.npz`` archive.
    key : str
        Entry name, e.g. ``mask_key(scan)``.

    Returns
    -------
    ndarray
        The stored array (uint8 0/1, (angles, detector rows, detector columns) when written
        by :func:`append_mask`).

    Raises
    ------
    NsgenError
        The file is missing, is not a zip/npz archive, is corrupt, or has no such key
        (the message lists the keys it has).
    """
    path = Path(archive_path)
    with _reading(path):
        with _checked_zip(path) as zf:
            _open_member(zf, path, key)
        with np.load(path, allow_pickle=False) as npz:
            return npz[key]


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn low-level read failures of an archive into one clear NsgenError line."""
    try:
        yield
    except NsgenError:
        raise
    except (zipfile.BadZipFile, zlib.error, InflateError, ValueError, OSError, EOFError) as exc:
        raise NsgenError(f"mask archive {path} is unreadable ({_one_line(exc)}); regenerate "
                         f"the mask with `nsgen mask`") from None


def _open_member(zf: zipfile.ZipFile, path: Path, key: str) -> zipfile.ZipInfo:
    names = zf.namelist()
    if key + ".npy" not in names:
        have = ", ".join(_mask_keys(names)) or "no masks"
        raise NsgenError(
            f"mask archive {path} has no key {key!r} (it holds: {have}); "
            f"create it with `nsgen mask` on the scan it belongs to"
        )
    return zf.getinfo(key + ".npy")


def _npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f"unsupported .npy format version {version}")


def _checked_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise NsgenError(
            f"mask archive {path} does not exist; create it with `nsgen mask` "
            f"or give the path of an existing archive"
        )
    if not zipfile.is_zipfile(path):
        raise NsgenError(
            f"{path} is not a mask archive (.npz zip file); give the archive written by "
            f"`nsgen mask`"
        )
    return zipfile.ZipFile(path)


def _check_header(path: Path, key: str, header, shape: tuple[int, ...]) -> None:
    got, _, dtype = header
    if tuple(got) != tuple(shape):
        raise NsgenError(
            f"mask {key!r} in {path} has shape {tuple(got)} but the scan is {tuple(shape)} "
            f"(angles, rows, columns); regenerate it with `nsgen mask` on this scan"
        )
    if dtype not in (np.dtype(np.uint8), np.dtype(np.bool_)):
        raise NsgenError(
            f"mask {key!r} in {path} has dtype {dtype}, not uint8 0/1; regenerate it with "
            f"`nsgen mask`"
        )


def check_mask(
    archive_path: str | os.PathLike[str], key: str, shape: tuple[int, int, int]
) -> None:
    """Check that the archive holds ``key`` as a uint8/bool mask of ``shape``.

    Only the member's ``.npy`` header is decompressed.

    Parameters
    ----------
    archive_path : path
    key : str
    shape : (int, int, int)
        Expected (angles, detector rows, detector columns): the scan's full resolution.

    Raises
    ------
    NsgenError
        Missing/unreadable archive, missing key, other shape or dtype.
    """
    path = Path(archive_path)
    with _reading(path), _checked_zip(path) as zf:
        info = _open_member(zf, path, key)
        with zf.open(info) as fh:
            header = _npy_header(fh)
    _check_header(path, key, header, shape)


def read_mask_bands(
    archive_path: str | os.PathLike[str],
    key: str,
    shape: tuple[int, int, int],
    bands: Sequence[tuple[int, int]],
) -> np.ndarray:
    """Stream a mask from the archive and OR it over bands of angles.

    The member is decompressed once, one angle at a time; each angle's plane is ORed into
    its band's ``(rows, columns)`` plane. Memory is one plane per band plus one, never
    the whole mask.

    Parameters
    ----------
    archive_path : path
    key : str
    shape : (int, int, int)
        Expected (angles, detector rows, detector columns).
    bands : sequence of (int, int)
        Half-open angle ranges ``[start, stop)``, disjoint and within the angles.

    Returns
    -------
    ndarray of bool
        ``(len(bands), rows, columns)``: whether any angle of the band is set.

    Raises
    ------
    NsgenError
        As :func:`check_mask`, or the member is truncated/corrupt.

    Examples
    --------
    >>> import tempfile
    >>> m = np.zeros((6, 2, 3), bool); m[4, 1, 2] = True
    >>> with tempfile.TemporaryDirectory() as d:
    ...     append_mask(f"{d}/masks.npz", "m", m)
    ...     read_mask_bands(f"{d}/masks.npz", "m", (6, 2, 3), [(0, 3), (3, 6)])[:, 1].tolist()
    [[False, False, False], [False, False, True]]
    """
    path = Path(archive_path)
    n_k, n_j, n_i = (int(v) for v in shape)
    band_of = np.full(n_k, -1, dtype=np.int64)
    for b, (k0, k1) in enumerate(bands):
        if not 0 <= k0 <= k1 <= n_k or (band_of[k0:k1] >= 0).any():
            raise ValueError(f"angle bands must be disjoint ranges within 0..{n_k}, got {bands}")
        band_of[k0:k1] = b
    out = np.zeros((len(bands), n_j, n_i), dtype=np.uint8)
    with _reading(path), _checked_zip(path) as zf:
        info = _open_member(zf, path, key)
        with _open_stream(zf, info) as fh:
            header = _npy_header(fh)
            _check_header(path, key, header, shape)
            if header[1]:  # Fortran order (not written by nsgen): read it whole
                with zf.open(info) as again:
                    whole = np.lib.format.read_array(again, allow_pickle=False)
                for b, (k0, k1) in enumerate(bands):
                    out[b] = whole[k0:k1].any(axis=0)
            else:
                _or_planes(fh, key, band_of, out)
    return out != 0


@contextlib.contextmanager
def _open_stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[io.BufferedIOBase]:
    """A member's bytes as a stream with ``read(n)``: a deflated member through
    :class:`~nsgen.io.deflate.Inflater` (python-isal: the mask of a 2.25 GiB scan, 1.1 GB
    inflated, in ~0.4 CPU-s instead of zipfile's 0.73-0.90), any other through ``zf.open``."""
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:  # not deflated, or encrypted
        with zf.open(info) as fh:
            yield cast(io.BufferedIOBase, fh)
        return
    assert zf.filename is not None
    with open(zf.filename, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local file header of {info.filename}")
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        yield cast(io.BufferedIOBase, Inflater(fh, info.compress_size, info.file_size, info.CRC))


def _or_planes(fh: io.BufferedIOBase, key: str, band_of: np.ndarray, out: np.ndarray) -> None:
    """Read ``len(band_of)`` uint8 planes from ``fh``; OR plane ``k`` into ``out[band_of[k]]``."""
    size = out.shape[1] * out.shape[2]
    for b in band_of.tolist():
        data = fh.read(size)
        if len(data) != size:
            raise EOFError(f"member {key}.npy is truncated")
        if b >= 0:
            plane = np.frombuffer(data, dtype=np.uint8).reshape(out.shape[1:])
            np.bitwise_or(out[b], plane, out=out[b])


def _as_mask(mask: np.ndarray) -> np.ndarray:
    """uint8 0/1 view or copy of a bool or integer 0/1 3D mask (no copy for bool/uint8)."""
    m = np.asanyarray(mask)
    if m.ndim != 3:
        raise ValueError(
            f"mask must be 3D (angles, detector rows, detector columns); got shape {m.shape}"
        )
    if m.dtype == np.bool_:
        return m.view(np.uint8)
    if m.dtype.kind not in "iu":
        raise ValueError(f"mask must be bool or integer 0/1; got dtype {m.dtype}")
    if m.size and ((m.dtype.kind == "i" and m.min() < 0) or m.max() > 1):
        raise ValueError("mask values must be 0 or 1")
    return m if m.dtype == np.uint8 else m.astype(np.uint8)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise NsgenError(f"mask key must be a non-empty string; got {key!r}")
    if any(ch in key for ch in "/\\\0") or key in (".", ".."):
        raise NsgenError(
            f"mask key {key!r} contains a path separator; use a plain name like m119617"
        )
    if key.endswith(WEIGHTS_SUFFIX):
        raise NsgenError(
            f"mask key {key!r} ends in {WEIGHTS_SUFFIX!r}, which marks weights entries; "
            f"choose another key"
        )


def _write_deflated(zw: ZipWriter, name: str, d: Deflated) -> None:
    """Write a :class:`Deflated` array as member ``name`` (an ``.npy`` like ``np.save``'s)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(d.dtype)), "fortran_order": False,
        "shape": tuple(d.shape)})
    header = buf.getvalue()
    head, head_crc = deflate_piece(header, last=not d.pieces)
    zw.add(name, (head, *d.pieces), crc32_combine(head_crc, d.crc, d.size),
           len(header) + d.size)


def _write_entry(zw: ZipWriter, name: str, array: np.ndarray) -> None:
    """Write ``array`` as member ``name``: an ``.npy`` like ``np.save``'s, streamed."""
    with zw.stream(name) as fh:
        np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kept_members(path: Path, key: str, overwrite: bool) -> list[zipfile.ZipInfo]:
    """Members of an existing archive that an append of ``key`` keeps (checks included)."""
    _check_key(key)
    if not path.exists():
        return []
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise NsgenError(
            f"{path} exists but is not a mask archive (.npz zip file); choose another "
            f"archive path"
        )
    try:
        with zipfile.ZipFile(path) as zin:
            members = zin.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise NsgenError(
            f"mask archive {path} is unreadable ({_one_line(exc)}); choose another "
            f"archive path"
        ) from None
    replaced = {key + ".npy", key + WEIGHTS_SUFFIX + ".npy"}
    if not overwrite and any(i.filename in replaced for i in members):
        raise NsgenError(
            f"mask archive {path} already holds {key!r}; choose another key with "
            f"--file-name, or replace it with --overwrite"
        )
    return [i for i in members if i.filename not in replaced]


def check_archive_writable(
    archive_path: str | os.PathLike[str],
    key: str,
    weights: bool = False,
    overwrite: bool = False,
) -> None:
    """Check, before any long computation, that :func:`append_mask` will accept ``key``.

    Parameters
    ----------
    archive_path : path
        The archive (may not exist yet; its directory is created by :func:`append_mask`).
    key : str
    weights : bool
        Whether weights will be stored too (``<key>_weights`` is replaced along with the
        key either way).
    overwrite : bool

    Raises
    ------
    NsgenError
        Bad key; the path exists but is not a readable zip archive; the key (or its weights)
        is already there and ``overwrite`` is false; the directory is not writable.
    """
    path = Path(archive_path)
    _kept_members(path, key, overwrite)
    directory = path.parent if str(path.parent) else Path(".")
    existing = next((d for d in (directory, *directory.parents) if d.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise NsgenError(
            f"cannot write the mask archive {path}: {existing} is not writable; choose "
            f"another archive path"
        )


def append_mask(
    archive_path: str | os.PathLike[str],
    key: str,
    mask: np.ndarray | Deflated,
    weights: np.ndarray | Deflated | None = None,
    overwrite: bool = False,
) -> None:
    """Add a mask (and optionally its weights) to an archive, creating it if needed.

    Parameters
    ----------
    archive_path : path
        The ``.npz`` archive (it and its directory are created if missing).
    key : str
        Entry name, by convention ``mask_key(scan)``; must not end in ``'_weights'``.
    mask : ndarray or Deflated, shape (n_angles, n_rows, n_cols)
        bool or integer 0/1, stored as uint8. May be an ``np.memmap``: it is streamed. A
        :class:`Deflated` uint8 array (compressed in parallel by the caller) is written as is.
    weights : ndarray or Deflated, optional
        Same shape, stored as float32 under ``key + '_weights'``.
    overwrite : bool
        Replace an existing ``key`` (its old weights entry is dropped too).

    Raises
    ------
    NsgenError
        The key exists and ``overwrite`` is false; the path exists but is not a readable
        zip archive; bad key; writing failed (e.g. disk full).
    ValueError
        Mask not 3D or not 0/1; weights of another shape.

    Notes
    -----
    The new archive is built beside the old one under a hidden temporary name: existing
    members are copied byte for byte, then the new ones are compressed in; the file is
    flushed to disk and renamed over the old archive (``os.replace``). On any error the
    temporary file is removed and the old archive is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> mask = np.zeros((3, 2, 8), bool); mask[:, 1, 4] = True
    >>> with tempfile.TemporaryDirectory() as d:
    ...     append_mask(f"{d}/masks.npz", "m1000", mask)
    ...     append_mask(f"{d}/masks.npz", "m1001", mask, weights=np.ones(mask.shape))
    ...     with np.load(f"{d}/masks.npz") as npz:
    ...         print(sorted(npz.files), read_mask(f"{d}/masks.npz", "m1000").sum())
    ['m1000', 'm1001', 'm1001_weights'] 3
    """
    path = Path(archive_path)
    _check_key(key)
    if isinstance(mask, Deflated):
        if mask.dtype != "|u1" or len(mask.shape) != 3:
            raise ValueError(f"a deflated mask must be 3D uint8; got {mask.dtype} {mask.shape}")
        m: np.ndarray | Deflated = mask
    else:
        m = _as_mask(mask)
    entries: list[tuple[str, np.ndarray | Deflated]] = [(key + ".npy", m)]
    if weights is not None:
        if not isinstance(weights, Deflated):
            weights = np.asanyarray(weights).astype(np.float32, copy=False)
        if tuple(weights.shape) != tuple(m.shape):
            raise ValueError(f"weights shape {weights.shape} differs from mask shape {m.shape}")
        entries.append((key + WEIGHTS_SUFFIX + ".npy", weights))
    old = _kept_members(path, key, overwrite)

    def fill(zw: ZipWriter) -> None:
        _copy_members(path, old, zw)
        for name, array in entries:
            if isinstance(array, Deflated):
                _write_deflated(zw, name, array)
            else:
                _write_entry(zw, name, array)

    _rewrite(path, fill)


def _copy_members(path: Path, members: list[zipfile.ZipInfo], zw: ZipWriter) -> None:
    """Copy ``members`` of the archive at ``path`` into ``zw`` byte for byte."""
    if not members:
        return
    try:
        with open(path, "rb") as src:
            for info in members:
                zw.copy(src, info)
    except zipfile.BadZipFile as exc:
        raise NsgenError(f"mask archive {path} is unreadable ({_one_line(exc)}); choose "
                         f"another archive path") from None


def _rewrite(path: Path, fill: Callable[[ZipWriter], None]) -> None:
    """Build a new archive with ``fill`` beside ``path``, then rename it into place.

    The temporary file is flushed to disk before ``os.replace``; on any error it is
    removed and ``path`` is left as it was.
    """
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            with ZipWriter(fh) as zw:
                fill(zw)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise NsgenError(f"cannot write the mask archive {path} ({_one_line(exc)}); free some "
                         f"space or choose another archive path") from None
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(directory)


def merge_archives(archive_path: str | os.PathLike[str],
                   parts: list[str | os.PathLike[str]]) -> list[str]:
    """Merge per-task mask archives into one, atomically, copying members as stored.

    Keys already in ``archive_path`` are kept unless a part has them (the part is the newer
    computation); a key in two parts is an error (two scans with one file stem).

    Returns
    -------
    list of str
        Sorted member names of the merged archive.

    Raises
    ------
    NsgenError
        A part is missing or unreadable, or two parts share a key.
    """
    path = Path(archive_path)
    sources: dict[str, tuple[Path, zipfile.ZipInfo]] = {}
    for part in map(Path, parts):
        if not part.is_file():
            raise NsgenError(f"mask part {part} is missing; rerun its array task, then merge "
                             f"again")
        for info in _members(part):
            if info.filename in sources:
                key = info.filename.removesuffix(".npy")
                raise NsgenError(f"key {key} is in both {sources[info.filename][0]} and {part}; "
                                 f"give the scans distinct file names (or --file-name)")
            sources[info.filename] = (part, info)
    if path.exists():
        for info in _members(path):
            sources.setdefault(info.filename, (path, info))

    def fill(zw: ZipWriter) -> None:
        for name in sorted(sources):
            src, info = sources[name]
            _copy_members(src, [info], zw)

    _rewrite(path, fill)
    return sorted(sources)


def _members(path: Path) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as z:
            return z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise NsgenError(f"{path} is not a readable mask archive ({_one_line(exc)}); "
                         f"regenerate it with `nsgen mask`") from None


def _discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
