"""Will the output fit? The size of a run's files, estimated before anything is written.

Every output image is a 16-bit TIFF; a mode's file count per sample follows from its
options (synthetic) or from its scans' shapes (real data). Estimates are upper bounds
where the count depends on the data (paired and patch modes write stripe inputs only
where stripes are found). A default complex sample is about 448 MB (1,536 TIFFs of
402 x 362); ten default simple samples about 1.5 GB.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from nsgen.errors import NsgenError
from nsgen.prep.patches import fitted_patch_shape

#: bytes of a TIFF beyond its pixels (header, one IFD, tags)
TIFF_OVERHEAD = 300
#: sinogram shape of the real modes that downsample (nsgen.stages.scan_stages.OUT_SHAPE)
REAL_SHAPE = (402, 362)


def tiff_bytes(shape: tuple[int, int]) -> int:
    """Bytes of one uint16 TIFF of ``shape``.

    Examples
    --------
    >>> tiff_bytes((402, 362))
    291348
    """
    return shape[0] * shape[1] * 2 + TIFF_OVERHEAD


def _scan_shapes(config: Any) -> list[tuple[int, int, int]]:
    from nsgen.scan import ScanLayout, open_scan, shift_files

    files = list(config.hdf_root)
    if len(files) == 1 and config.mode != "dynamic":
        files = shift_files(files[0], config.shifts if config.shifts_given else None)
    layout = ScanLayout(config.data_path, config.image_key_path, config.angles_path)
    shapes = []
    for f in files:
        with open_scan(f, layout, config.flats, config.darks) as scan:
            shapes.append(tuple(int(x) for x in scan.shape))
    return shapes  # type: ignore[return-value]


def sample_bytes(config: Any) -> int:
    """Estimated bytes of one sample's output files (an upper bound for paired/patch).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> c = SimpleNamespace(mode="complex", size=256, shifts=5)
    >>> round(sample_bytes(c) / 1e6)
    448
    >>> round(10 * sample_bytes(SimpleNamespace(mode="simple", size=256)) / 1e9, 1)
    1.5
    """
    if config.mode in ("simple", "complex"):
        n = config.size
        per_row = 2 if config.mode == "simple" else 1 + config.shifts
        return n * per_row * tiff_bytes((int(math.pi / 2 * n), int(math.sqrt(2) * n)))
    total = 0
    for a, rows, c in _scan_shapes(config):
        if config.mode == "raw":
            total += rows * tiff_bytes(REAL_SHAPE)
        elif config.mode == "paired":
            total += 2 * rows * tiff_bytes(REAL_SHAPE)
        elif config.mode == "dynamic":
            from nsgen.modes.dynamic import frame_angles_of
            frames = -(-a // frame_angles_of(config, Path(config.hdf_root[0])))
            total += frames * rows * tiff_bytes(REAL_SHAPE)
        else:   # patch: every patch of the cropped sinogram, clean and stripe
            ph, pw = fitted_patch_shape(config.patch_size, config.patch_size_given, (a, c))
            total += 2 * rows * max(1, (a // ph) * (c // pw)) * tiff_bytes((ph, pw))
    return total


def free_bytes(root: Path) -> int:
    """Free bytes on the file system that will hold ``root`` (its nearest existing parent)."""
    probe = Path(root).absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def human(n: float) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units).

    Examples
    --------
    >>> human(999), human(1.5e6), human(4.34e8), human(1.5e9)
    ('999 B', '1.5 MB', '434.0 MB', '1.50 GB')
    """
    if n < 1e3:
        return f"{n:.0f} B"
    if n < 1e6:
        return f"{n / 1e3:.1f} kB"
    if n < 1e9:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e9:.2f} GB"


def check_free_space(config: Any, samples: list[int], free: int | None = None) -> None:
    """Refuse a run whose estimated output does not fit on the root's file system.

    Raises
    ------
    NsgenError
        One line: needed and free bytes, and what to do.
    """
    if not samples:
        return
    need = sample_bytes(config) * len(samples)
    have = free_bytes(config.root) if free is None else free
    if need > have:
        raise NsgenError(
            f"--root {config.root} has {human(have)} free but {len(samples)} "
            f"{config.mode} sample{'s' if len(samples) > 1 else ''} need about {human(need)}; "
            f"free space there, choose another --root, or make fewer --samples")
