"""16-bit TIFF output: every file appears whole or not at all."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import tifffile

TMP_MARK = ".nsgen-tmp"


def temporary_name(path: Path) -> Path:
    """Name under which ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def is_temporary(path: Path) -> bool:
    """True for a leftover of an interrupted write (see :func:`temporary_name`)."""
    return path.name.startswith(".") and TMP_MARK in path.name


def write_tiff(path: Path, image: np.ndarray) -> int:
    """Write a 2D uint16 image atomically; return the number of bytes written.

    The image goes to a hidden temporary name in the same directory and is then
    renamed over ``path``, so a crash leaves either the old file, the new file or a
    temporary that :func:`remove_temporaries` deletes, never a truncated TIFF.
    The bytes depend only on the pixels (no date or software tags).
    """
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"expected a 2D uint16 image, got {image.dtype} {image.shape}")
    path = Path(path)
    tmp = temporary_name(path)
    try:
        tifffile.imwrite(tmp, np.ascontiguousarray(image), photometric="minisblack",
                         metadata=None, software=False)
        size = tmp.stat().st_size
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


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
    >>> files, nbytes = TiffWriter(root).write([("a.tif", np.zeros((2, 3), np.uint16))])
    >>> files, nbytes > 0, read_tiff(root / "a.tif").shape
    (1, True, (2, 3))
    """

    root: Path

    def write(self, items: Iterable[tuple[str, np.ndarray]]) -> tuple[int, int]:
        """Write every ``(path relative to root, uint16 image)``; return (files, bytes)."""
        return write_tiffs((self.root / path, image) for path, image in items)


def read_tiff(path: Path) -> np.ndarray:
    """Read one TIFF image as a numpy array."""
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
