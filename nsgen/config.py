"""The options of a generation run: an immutable :class:`Config`, validated once.

:class:`Config` checks every value on construction (:func:`validate`), whether it comes
from the command line or from Python. Parsing the command line, ``NSGEN_*`` environment
variables and ``--config`` files into a Config is :mod:`nsgen.options`; its public names
(:func:`parse_config`, :func:`build_parser`, :class:`OneLineParser`, ...) can also be
imported from here.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsgen.errors import NsgenError, attempt
from nsgen.prep.detect import DEFAULT_DETECTOR, check_detector

if TYPE_CHECKING:
    from nsgen.options import (PRECEDENCE, OneLineParser, build_parser, check_config_file,
                               config_from_namespace, parse_config)

#: names of :mod:`nsgen.options` importable from here (loaded on first use: no cycle)
_OPTIONS = ("PRECEDENCE", "OneLineParser", "build_parser", "check_config_file",
            "config_from_namespace", "parse_config")
__all__ = ["COMPRESSIONS", "FORMATS", "MODES", "OBJECT_TYPES", "REAL_MODES", "SYNTHETIC_MODES",
           "Config", "check_root", "parse_bytes", "validate",
           "PRECEDENCE", "OneLineParser", "build_parser", "check_config_file",  # nsgen.options
           "config_from_namespace", "parse_config"]

MODES = ("simple", "complex", "raw", "paired", "dynamic", "patch")
SYNTHETIC_MODES = ("simple", "complex")
REAL_MODES = ("raw", "paired", "dynamic", "patch")
OBJECT_TYPES = ("sphere", "ellipsoid")
#: output formats (nsgen.io.formats) and container compressions (nsgen.io.containers)
FORMATS = ("tiff", "hdf5", "zarr")
COMPRESSIONS = ("none", "gzip", "blosc")

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "t": 1e12, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """Parse a memory size such as ``4GB``, ``512MiB`` or ``1e9``.

    Examples
    --------
    >>> parse_bytes("4GB"), parse_bytes("512MiB"), parse_bytes("1000")
    (4000000000, 536870912, 1000)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 4GB, 512MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class Config:
    """Every option of a generation run, validated. See ``docs/user-guide.md``."""

    mode: str = "complex"
    root: Path = Path("data")
    samples: int = 1
    start: int = 0
    verbose: bool = False
    seed: int = 0
    # synthetic
    size: int = 256
    objects: int = 300
    object_type: str = "sphere"
    shifts: int = 5
    #: ``--shifts`` was given (flag, environment or file); without it a real scan uses the
    #: numbered shift files that exist (at most ``shifts``)
    shifts_given: bool = False
    shiftstep: int = 2
    flatsnum: int = 20
    I0: float = 40000.0
    defect_density: float = 1.0
    # real data
    hdf_root: tuple[Path, ...] = ()
    flats: Path | None = None
    darks: Path | None = None
    data_path: str | None = None
    image_key_path: str | None = None
    angles_path: str | None = None
    mask: Path | None = None
    detector: str = DEFAULT_DETECTOR
    frame_angles: int = 900
    #: ``--frame-angles`` was given; without it a dynamic scan's frames are its projections
    #: per 180 degrees (:func:`nsgen.modes.dynamic.half_turn`), ``frame_angles`` if none
    frame_angles_given: bool = False
    frame_stride: int = 1
    patch_size: tuple[int, int] = (1801, 256)
    #: ``--patch-size`` was given; without it a sinogram smaller than ``patch_size`` is cut
    #: into patches of its own angles or columns (:func:`nsgen.prep.patches.fitted_patch_shape`)
    patch_size_given: bool = False
    bounds_percentile: float = 0.0
    # engine
    chunk_size: int | None = None
    workers: int | None = None
    memory_limit: int | None = None
    progress: bool = True
    preview: bool = True
    config_file: Path | None = None
    #: replace samples made (or started) with other options or inputs (nsgen.rerun)
    overwrite: bool = False
    #: no summary line at the end of the run
    quiet: bool = False
    # one task I of a SLURM array (docs/slurm.md): of the run --start S --samples N this
    # process makes only sample S + I, so start = S + I and samples = 1 here
    array_task: int | None = None
    # output (nsgen.io.formats)
    format: str = "tiff"
    compression: str = "none"

    def __post_init__(self) -> None:
        """Normalise paths and validate (:func:`validate`): a Config is always valid.

        Examples
        --------
        >>> Config(size=4)
        Traceback (most recent call last):
        ...
        nsgen.errors.NsgenError: --size must be an integer in 8..4096, got 4
        """
        for name in ("root", "flats", "darks", "mask", "config_file"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, name, Path(v))
        if isinstance(self.hdf_root, (str, Path)):
            object.__setattr__(self, "hdf_root", (self.hdf_root,))
        # inputs absolute: a sample records (and a rerun compares) the files it was made
        # from, not names relative to wherever the command happened to run
        object.__setattr__(self, "hdf_root", tuple(Path(p).absolute() for p in self.hdf_root))
        for name in ("flats", "darks", "mask"):
            v = getattr(self, name)
            if v is not None and str(v) != "zeros":
                object.__setattr__(self, name, v.absolute())
        object.__setattr__(self, "patch_size", tuple(self.patch_size))
        validate(self)

    @property
    def synthetic(self) -> bool:
        """True for the simulated modes (simple, complex)."""
        return self.mode in SYNTHETIC_MODES

    def sample_numbers(self) -> range:
        """Sample numbers of this run: ``start, start+1, ..., start+samples-1``."""
        return range(self.start, self.start + self.samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (paths as strings), keyed by long option name."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = [str(x) if isinstance(x, Path) else x for x in v]
            out[f.name.replace("_", "-")] = v
        return out


def _int_range(name: str, value: int, lo: int | None = None, hi: int | None = None) -> int:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = (f">= {lo}" if hi is None else f"in {lo}..{hi}") if lo is not None else f"<= {hi}"
        raise NsgenError(f"--{name} must be an integer {rng}, got {value}")
    return value


def _check_last_sample(start: int, samples: int) -> None:
    if start + samples - 1 > 9999:
        raise NsgenError(f"--start + --samples - 1 must be <= 9999 (four-digit sample "
                         f"directories), got {start + samples - 1}")


def check_root(root: Path) -> None:
    """Refuse a ``--root`` that cannot be created or written (before anything is written).

    The root (or its nearest existing parent) must be a directory where a file can be
    made: a probe file is created and removed (``os.access`` trusts root on /proc, /sys
    and read-only mounts). Checked when the command line is parsed and when a run starts
    (not by :class:`Config` itself: simulating in memory needs no writable root).
    """
    import tempfile

    probe = root.absolute()
    while not probe.exists() and not probe.is_symlink():
        probe = probe.parent
    if not probe.is_dir():
        what = "it is a file" if probe == root.absolute() else f"it is below the file {probe}"
        raise NsgenError(f"--root {root} is not writable: {what}; choose a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=".nsgen-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise NsgenError(f"--root {root} is not writable ({probe}: {exc.strerror or exc}); "
                         f"choose a directory you can write to") from None


def validate(c: Config) -> None:
    """Check every option of ``c``; the messages are the command line's.

    Raises
    ------
    NsgenError
        Every invalid value, in one line: each problem naming its option and the fix,
        separated by "; ".
    """
    problems: list[str] = []

    if c.mode not in MODES:
        problems.append(f"--mode must be one of {', '.join(MODES)}, got {c.mode!r}")
    if c.object_type not in OBJECT_TYPES:
        problems.append(f"--object-type must be one of {', '.join(OBJECT_TYPES)}, "
                        f"got {c.object_type!r}")
    attempt(problems, _int_range, "samples", c.samples, 1)
    attempt(problems, _int_range, "start", c.start, 0, 9999)
    attempt(problems, _check_last_sample, c.start, c.samples)
    attempt(problems, _int_range, "seed", c.seed, 0)
    attempt(problems, _int_range, "size", c.size, 8, 4096)
    attempt(problems, _int_range, "objects", c.objects, 1)
    attempt(problems, _int_range, "shifts", c.shifts, 1, 100)
    attempt(problems, _int_range, "shiftstep", c.shiftstep, 0)
    attempt(problems, _int_range, "flatsnum", c.flatsnum, 1)
    if not c.I0 > 0 or c.I0 != c.I0 or c.I0 == float("inf"):
        problems.append(f"--I0 must be a positive finite photon count, got {c.I0}")
    columns = int(2 ** 0.5 * c.size)  # detector columns of the synthetic geometry
    if not 0 <= c.defect_density <= columns:
        problems.append(f"--defect-density must be a number of defective pixels per detector "
                        f"row in 0..{columns} (the detector columns at --size {c.size}), got "
                        f"{c.defect_density}; use 1 (default) or 0 for the reference's "
                        f"density")
    if not 0 <= c.bounds_percentile < 50:
        problems.append(f"--bounds-percentile must be a percentile in [0, 50) (0 = min/max), "
                        f"got {c.bounds_percentile}; e.g. 0.1 scales between the 0.1th and "
                        f"99.9th percentiles")
    attempt(problems, _int_range, "frame-angles", c.frame_angles, 1)
    attempt(problems, _int_range, "frame-stride", c.frame_stride, 1)
    ph, pw = c.patch_size
    if ph < 1 or pw < 1:
        problems.append(f"--patch-size must be two positive integers H W, got {ph} {pw}")
    for name, value in (("chunk-size", c.chunk_size), ("workers", c.workers)):
        if value is not None and value < 1:
            problems.append(f"--{name} must be an integer >= 1 or 'auto', got {value!r}")
    if c.memory_limit is not None and c.memory_limit < 2**20:
        problems.append(f"--memory-limit must be at least 1MiB, got {c.memory_limit!r}")
    if c.array_task is not None and c.array_task < 0:
        problems.append(f"--array-task must be an integer >= 0, got {c.array_task}")
    if c.format not in FORMATS:
        problems.append(f"--format must be one of {', '.join(FORMATS)}, got {c.format!r}")
    if c.compression not in COMPRESSIONS:
        problems.append(f"--compression must be one of {', '.join(COMPRESSIONS)}, got "
                        f"{c.compression!r}")
    if c.compression != "none" and c.format == "tiff":
        problems.append(f"--compression {c.compression} applies to --format hdf5 or zarr; "
                        f"add --format hdf5 (TIFFs are written uncompressed)")
    if c.format == "zarr":
        from importlib.util import find_spec
        if find_spec("zarr") is None:
            problems.append("--format zarr needs the zarr package; pip install "
                            "'nsgen[zarr]' or use --format hdf5")
    attempt(problems, check_detector, c.detector)
    if c.mode in REAL_MODES and not c.hdf_root:
        problems.append(f"--mode {c.mode} reads a real scan: give it with --hdf-root "
                        f"FILE.nxs")
    if problems:
        raise NsgenError("; ".join(dict.fromkeys(problems)))


def __getattr__(name: str) -> Any:
    """The parsing side (:mod:`nsgen.options`), under its old import path."""
    if name in _OPTIONS:
        from nsgen import options
        return getattr(options, name)
    raise AttributeError(f"module 'nsgen.config' has no attribute {name!r}")
