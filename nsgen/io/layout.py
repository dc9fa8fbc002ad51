"""Where an image of the TIFF layout lives in a container (``--format hdf5|zarr``).

Every mode names its images ``[NNNN/][folders/]NNNN_<series>_VVVV[_wPP].tif`` relative
to the dataset root (see the modes' docstrings). A container format stores sample
``NNNN`` in one file ``NNNN.h5`` (or store ``NNNN.zarr``) with one uint16 dataset per
*series*: the folder path (without the sample directory), followed by the series name
when the folder is not already named after it:

=============================================  =====================================
TIFF path (relative to the root)               dataset, key
=============================================  =====================================
``0000/clean/0000_clean_0005.tif``             ``clean``, (5,)
``0000/shift01/0000_shift01_0005.tif``         ``shift01``, (5,)
``0000/fake_artifacts/clean/0000_shift01_0005.tif``  ``fake_artifacts/clean/shift01``, (5,)
``0000/real_artifacts/stripe/0000_shift00_0007_w02.tif``  ``.../shift00``, (7, 2)
``0000_frame02_0005.tif`` (dynamic mode)        ``frame02``, (5,)
=============================================  =====================================

A dataset whose keys are exactly ``(0,), (1,), ..., (n-1,)`` is stored as the volume
(rows, angles, columns) itself; any other (paired and patch modes: each sinogram or patch
is in the fake *or* the real folder) stacks its images in key order, with the keys in a
sibling int32 dataset ``<name>_index``. A manifest entry then names its image as
``NNNN.h5/<dataset>/<position>`` (a path inside the container, unique like a file path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CONTAINER_SUFFIXES = {"hdf5": ".h5", "zarr": ".zarr"}
INDEX_SUFFIX = "_index"

_NAME = re.compile(r"^(?:(?P<dirs>.+)/)?(?P<tag>\d{4})_(?P<series>[A-Za-z]+\d*)_(?P<v>\d{4})"
                   r"(?:_w(?P<p>\d+))?\.tiff?$")

Key = tuple[int, ...]


def locate(path: str) -> tuple[int, str, Key]:
    """``(sample, dataset, key)`` of a TIFF-layout path relative to the root.

    Examples
    --------
    >>> locate("0003/clean/0003_clean_0005.tif")
    (3, 'clean', (5,))
    >>> locate("0000/fake_artifacts/stripe/0000_shift01_0012_w03.tif")
    (0, 'fake_artifacts/stripe/shift01', (12, 3))
    >>> locate("0002_frame04_0100.tif")
    (2, 'frame04', (100,))
    """
    m = _NAME.match(path)
    if m is None:
        raise ValueError(f"{path} does not follow the nsgen TIFF layout")
    tag, series = m.group("tag"), m.group("series")
    dirs = [d for d in (m.group("dirs") or "").split("/") if d]
    if dirs and dirs[0] == tag:
        dirs = dirs[1:]
    if not dirs or dirs[-1] != series:
        dirs.append(series)
    key = (int(m.group("v")),) if m.group("p") is None else (int(m.group("v")), int(m.group("p")))
    return int(tag), "/".join(dirs), key


def is_dense(keys: Iterable[Key]) -> bool:
    """True when sorted ``keys`` are exactly ``(0,), (1,), ..., (n-1,)``.

    Examples
    --------
    >>> is_dense([(0,), (1,), (2,)]), is_dense([(0,), (2,)]), is_dense([(0, 0)])
    (True, False, False)
    """
    return all(len(k) == 1 and k[0] == i for i, k in enumerate(sorted(keys)))


def container_name(sample: int, fmt: str) -> str:
    """File (or store) name of a sample's container, e.g. ``0007.h5``."""
    return f"{sample:04d}{CONTAINER_SUFFIXES[fmt]}"


def item_path(sample: int, fmt: str, dataset: str, position: int) -> str:
    """Manifest path of an image inside a container.

    Examples
    --------
    >>> item_path(7, "hdf5", "shift01", 5)
    '0007.h5/shift01/5'
    """
    return f"{container_name(sample, fmt)}/{dataset}/{position}"


def split_item(path: str) -> tuple[str, str, str, int] | None:
    """``(format, container, dataset, position)`` of a container path, None for a file.

    Examples
    --------
    >>> split_item("0007.zarr/fake_artifacts/clean/shift00/3")
    ('zarr', '0007.zarr', 'fake_artifacts/clean/shift00', 3)
    >>> split_item("0007/clean/0007_clean_0003.tif") is None
    True
    """
    head, _, rest = path.partition("/")
    for fmt, suffix in CONTAINER_SUFFIXES.items():
        if head.endswith(suffix) and rest:
            dataset, _, position = rest.rpartition("/")
            return fmt, head, dataset, int(position)
    return None
