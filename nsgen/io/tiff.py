"""16-bit TIFF output: every file appears whole or not at all."""

from __future__ import annotations

import errno
import functools
import io
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

import numpy as np
from isal import isal_zlib

from nsgen.errors import disk_full

TMP_MARK = ".nsgen-tmp"


def temporary_name(path: Path, owner: int | None = None) -> Path:
    """Name under which ``path`` is written before it is renamed into place: marked with
    ``owner``, the id of the process that creates it (this one's when None; see
    :class:`Temporaries`)."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid() if owner is None else owner}")


def is_temporary(path: Path) -> bool:
    """True for a leftover of an interrupted write (see :func:`temporary_name`)."""
    return path.name.startswith(".") and TMP_MARK in path.name


def write_tiff(path: Path, image: np.ndarray, owner: int | None = None) -> int:
    """Write a 2D uint16 image atomically; return the number of bytes written.

    The image goes to a hidden temporary name in the same directory (that of ``owner``,
    :func:`temporary_name`: one :class:`Temporaries` may have created already, empty) and
    is then renamed over ``path``, so a crash leaves either the old file, the new file or a
    temporary that :func:`remove_temporaries` deletes, never a truncated TIFF.
    The bytes depend only on the pixels (no date or software tags): tifffile's
    uncompressed encoding, whose header depends only on the shape
    (:func:`tiff_header`: built without tifffile), followed by the pixels, written with
    one system call.

    Examples
    --------
    >>> import io, tempfile, tifffile
    >>> img = np.arange(12, dtype=np.uint16).reshape(3, 4)
    >>> path = Path(tempfile.mkdtemp()) / "a.tif"
    >>> ref = io.BytesIO()
    >>> tifffile.imwrite(ref, img, photometric="minisblack", metadata=None, software=False)
    >>> write_tiff(path, img) == len(ref.getvalue()), path.read_bytes() == ref.getvalue()
    (True, True)
    """
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"expected a 2D uint16 image, got {image.dtype} {image.shape}")
    path = Path(path)
    tmp = temporary_name(path, owner)
    pixels = np.ascontiguousarray(image)
    header = tiff_header(pixels.shape)
    try:
        if header is None:   # a layout other than header + one strip: tifffile writes it
            import tifffile
            tifffile.imwrite(tmp, pixels, **_TIFF_OPTIONS)
            size = tmp.stat().st_size
        else:
            size = _write_all(tmp, [header, pixels.data.cast("B")])
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise disk_full(path) from exc
        raise
    return size


#: tifffile options of nsgen's TIFFs: no date, software or metadata tags
_TIFF_OPTIONS: dict[str, Any] = {"photometric": "minisblack", "metadata": None,
                                 "software": False}


@functools.lru_cache(maxsize=64)
def tiff_header(shape: tuple[int, ...]) -> bytes | None:
    """The bytes tifffile writes before the pixels of a native uint16 image of ``shape``.

    A 2D image of fewer than 2**31 bytes is one uncompressed strip after a header that
    depends only on the shape (:func:`strip_header`: built here, no tifffile import in the
    processes that write); any other shape's header is found by encoding a zero image with
    tifffile: when its pixels are one uncompressed strip at the end of the file, every
    image of the shape is this header followed by its pixels; otherwise None (then
    :func:`write_tiff` calls tifffile).

    Examples
    --------
    >>> len(tiff_header((402, 362)))
    176
    """
    if len(shape) == 2 and 0 < shape[0] and 0 < shape[1] and 2 * shape[0] * shape[1] < 2**31:
        return strip_header(shape[0], shape[1])
    return _tifffile_header(shape)


#: the tags of :func:`strip_header`, in tifffile's order: (code, TIFF type, value); the
#: values ``"width"``, ``"height"``, ``"nbytes"`` are the image's, ``"x"``/``"y"`` the
#: offsets of the resolution rationals; types 3 SHORT, 4 LONG, 5 RATIONAL
_STRIP_TAGS: tuple[tuple[int, int, int | str], ...] = (
    (256, 4, "width"), (257, 4, "height"), (258, 3, 16), (259, 3, 1), (262, 3, 1),
    (273, 4, 176), (277, 3, 1), (278, 4, "height"), (279, 4, "nbytes"), (282, 5, "x"),
    (283, 5, "y"), (296, 3, 1))


def strip_header(height: int, width: int) -> bytes:
    """tifffile's 176 header bytes of an uncompressed ``height x width`` uint16 image
    (``photometric="minisblack"``, no metadata, no software tag; little-endian classic
    TIFF): the file header, one IFD of 12 tags, each one value (ImageWidth, ImageLength,
    BitsPerSample 16, Compression 1, Photometric 1, StripOffsets 176, SamplesPerPixel 1,
    RowsPerStrip = height, StripByteCounts, X/YResolution 1/1, ResolutionUnit 1), no next
    IFD, the two rationals at bytes 158 and 166 and two bytes of padding; the pixels follow
    as one strip. tests/test_tiff.py checks it against tifffile's output.

    Examples
    --------
    >>> h = strip_header(2, 3)
    >>> len(h), h[:4] == b"II*" + bytes(1), h[-22:].hex()   # no next IFD, 1/1, 1/1, pad
    (176, True, '00000000010000000100000001000000010000000000')
    """
    values = {"width": width, "height": height, "nbytes": 2 * width * height, "x": 158,
              "y": 166}
    out = [b"II*\x00", struct.pack("<IH", 8, len(_STRIP_TAGS))]
    for code, kind, value in _STRIP_TAGS:
        v = values[value] if isinstance(value, str) else value
        out.append(struct.pack("<HHI", code, kind, 1)
                   + struct.pack("<H2x" if kind == 3 else "<I", v))
    out.append(struct.pack("<I4I2x", 0, 1, 1, 1, 1))
    return b"".join(out)


def _tifffile_header(shape: tuple[int, ...]) -> bytes | None:
    """:func:`tiff_header` of any shape, by encoding a zero image with tifffile."""
    import tifffile   # here: processes that write no TIFF (the reader) never import it

    buf = io.BytesIO()
    zeros = np.zeros(shape, dtype=np.uint16)
    tifffile.imwrite(buf, zeros, **_TIFF_OPTIONS)
    data = buf.getvalue()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        offsets, counts = page.dataoffsets, page.databytecounts
    if len(offsets) != 1 or counts[0] != zeros.nbytes or offsets[0] + counts[0] != len(data):
        return None
    return data[:offsets[0]]


def _write_all(path: Path, parts: list[Any]) -> int:
    """Create ``path`` (0666 less the umask, as ``open``) holding ``parts``; return its size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        views = [memoryview(p).cast("B") for p in parts]
        total = sum(v.nbytes for v in views)
        while views:
            n = os.writev(fd, views)
            while views and n >= views[0].nbytes:
                n -= views[0].nbytes
                views.pop(0)
            if views:
                views[0] = views[0][n:]
    finally:
        os.close(fd)
    return total


def pixel_crc32(image: np.ndarray) -> str:
    """CRC-32 of a uint16 image's pixel bytes (little-endian, row by row), as 8 hex digits.

    The checksum a manifest records for each TIFF (``nsgen check --deep`` verifies it):
    computed from the image in memory as it is written, so writing reads nothing back.

    Examples
    --------
    >>> img = np.arange(6, dtype=np.uint16).reshape(2, 3)
    >>> import zlib
    >>> pixel_crc32(img) == f"{zlib.crc32(bytes([0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0])):08x}"
    True
    >>> pixel_crc32(img.astype(">u2")) == pixel_crc32(img)  # values count, not byte order
    True
    >>> pixel_crc32(np.zeros((2, 3), np.uint16))
    '7bd5c66f'
    """
    data = np.ascontiguousarray(image, dtype="<u2")
    return f"{isal_zlib.crc32(data.data.cast('B')):08x}"   # zlib's CRC-32, ~20x faster


def write_tiffs(items: Iterable[tuple[Path, np.ndarray]]) -> tuple[int, int]:
    """Write ``(path, uint16 image)`` pairs with :func:`write_tiff`; return (files, bytes)."""
    files = nbytes = 0
    for path, image in items:
        nbytes += write_tiff(path, image)
        files += 1
    return files, nbytes


@dataclass(frozen=True)
class TiffWriter:
    """Output backend of the write stage: image ``path`` -> 16-bit TIFF ``root/path``.

    See :class:`nsgen.stages.write.ImageWriter`.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> files, nbytes, crc = TiffWriter(root).write([("a.tif", np.zeros((2, 3), np.uint16))])
    >>> files, nbytes > 0, read_tiff(root / "a.tif").shape, crc
    (1, True, (2, 3), {'a.tif': '7bd5c66f'})
    """

    root: Path
    #: the id in the temporary names (:func:`temporary_name`): that of the process whose
    #: :class:`Temporaries` created them ahead; None: each writing process's own
    owner: int | None = None

    #: done with an image (written, checksummed) when it asks for the next: a mode may
    #: then use its buffer again (:class:`nsgen.stages.write.Written`)
    releases_images: ClassVar[bool] = True

    def write(self, items: Iterable[tuple[str, np.ndarray]]) -> tuple[int, int, dict[str, str]]:
        """Write every ``(path relative to root, uint16 image)``; return files and bytes
        written and the :func:`pixel_crc32` of each path (computed from the image in memory,
        no second read), each before it asks for the next image."""
        files = nbytes = 0
        checksums: dict[str, str] = {}
        for path, image in items:
            nbytes += write_tiff(self.root / path, image, self.owner)
            checksums[path] = pixel_crc32(image)
            files += 1
        return files, nbytes, checksums


#: niceness the thread of :class:`Temporaries` adds to its process's (Linux): it takes
#: the CPU that the rest of the run leaves, mostly
NICER = 5


@dataclass(eq=False)
class Temporaries:
    """Creates, on a thread, the empty temporaries of files that a
    ``TiffWriter(root, owner=self.owner)`` is going to write, while the run waits for
    something else (patch mode: pass one, which waits for the disk): the writer then opens
    and fills a file that exists (:func:`write_tiff`) instead of creating it too. Creating a
    file (allocating its inode, entering its name in the directory) costs the writer as much
    CPU as a third of copying a 0.9 MB image into the page cache.

    The thread creates the files in the order given, each only where no file has that
    name, and gives up at the first error (the writer creates the rest); :meth:`stop` it
    before the files are written. A run that fails before writing them all calls
    :meth:`discard` for what is left.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> ahead = Temporaries(root)
    >>> ahead.start(["a.tif", "b.tif"]); ahead.stop(finish=True)
    2
    >>> writer = TiffWriter(root, owner=ahead.owner)
    >>> writer.write([("a.tif", np.zeros((2, 3), np.uint16))])[:2]
    (1, 188)
    >>> sorted(p.name for p in root.iterdir()) == [temporary_name(root / "b.tif").name, "a.tif"]
    True
    >>> ahead.discard(), sorted(p.name for p in root.iterdir())
    (1, ['a.tif'])
    """

    root: Path
    #: the id in the temporaries' names: this process's
    owner: int = field(default_factory=os.getpid)
    #: the temporaries created so far
    created: list[Path] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self, paths: Iterable[str]) -> None:
        """Start creating the temporaries of ``paths`` (relative to the root)."""
        self._thread = threading.Thread(target=self._create, args=(list(paths),),
                                        name="nsgen-temporaries", daemon=True)
        self._thread.start()

    def _create(self, paths: list[str]) -> None:
        try:   # yield the CPU to the run's other processes and threads
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me)
                                                    + NICER))
        except (AttributeError, OSError):   # pragma: no cover - not Linux
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for path in paths:
            if self._stop.is_set():
                return
            tmp = temporary_name(self.root / path, self.owner)
            try:
                os.close(os.open(tmp, flags, 0o666))
            except FileExistsError:
                continue
            except OSError:
                return
            self.created.append(tmp)

    def stop(self, finish: bool = False) -> int:
        """Stop creating (wait for the thread; with ``finish``, until it has created them
        all); return how many temporaries were created."""
        if not finish:
            self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return len(self.created)

    def discard(self) -> int:
        """:meth:`stop`, and delete the temporaries that are still there (not written and
        renamed); return how many."""
        self.stop()
        n = 0
        for tmp in self.created:
            try:
                tmp.unlink()
                n += 1
            except FileNotFoundError:
                pass
        self.created.clear()
        return n


def read_tiff(path: Path) -> np.ndarray:
    """Read one TIFF image as a numpy array."""
    import tifffile

    return tifffile.imread(path)


def remove_temporaries(directory: Path, prefix: str = "", recursive: bool = True) -> int:
    """Delete leftovers of interrupted writes in ``directory``; return how many.

    Only files whose final name starts with ``prefix`` are considered (so that concurrent
    runs writing other samples into the same directory are left alone); subdirectories
    are searched when ``recursive``.
    """
    n = 0
    directory = Path(directory)
    if not directory.exists():
        return 0
    pattern = f".{prefix}*{TMP_MARK}*"
    for p in (directory.rglob(pattern) if recursive else directory.glob(pattern)):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
