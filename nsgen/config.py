"""Command-line, environment and INI options, parsed and validated once.

Precedence, highest first: command-line flag > environment variable
(``NSGEN_<LONG_NAME>``, dashes as underscores, e.g. ``NSGEN_HDF_ROOT``) > config file
(``--config FILE``; keys are the long option names, ``hdf-root = 1000.nxs`` or
``hdf-root: 1000.nxs``) > built-in default. The result is an immutable :class:`Config`.
Subcommands read ``--config`` and ``NSGEN_*`` the same way (:class:`OneLineParser`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import configargparse

from nsgen.errors import NsgenError
from nsgen.prep.detect import DEFAULT_DETECTOR, check_detector

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
    frame_stride: int = 1
    patch_size: tuple[int, int] = (1801, 256)
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
        object.__setattr__(self, "hdf_root", tuple(Path(p) for p in self.hdf_root))
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


class OneLineParser(configargparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit status 2.

    Every nsgen command's parser: it also reads ``--config FILE`` (``key = value`` or
    ``key: value`` lines; keys another command uses are ignored) and ``NSGEN_<OPTION>``
    environment variables, with the precedence of the module docstring.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("config_file_parser_class", configargparse.DefaultConfigFileParser)
        kwargs.setdefault("auto_env_var_prefix", "NSGEN_")
        kwargs.setdefault("args_for_setting_config_path", ["--config", "-c"])
        kwargs.setdefault("ignore_unknown_config_file_keys", True)
        kwargs.setdefault("add_config_file_help", False)   # PRECEDENCE says it (no dead link)
        kwargs.setdefault("add_env_var_help", False)
        kwargs.setdefault("config_arg_help_message", "INI file of options: 'key = value' or "
                          "'key: value' lines, keys the long option names")
        kwargs.setdefault("formatter_class", configargparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None,
                         **kwargs: Any) -> Any:
        """Check the ``--config`` file's lines first (one-line error for a malformed one)."""
        path = _config_path(list(sys.argv[1:] if args is None else args),
                            kwargs.get("env_vars"))
        if path is not None:
            check_config_file(path, None)
        return super().parse_known_args(args, namespace, **kwargs)

    def error(self, message: str) -> None:
        raise NsgenError(message)


def _add_generation_options(p: configargparse.ArgumentParser) -> None:
    g = p.add_argument_group("all modes")
    g.add_argument("--mode", "-m", default="complex", metavar="MODE",
                   help=f"what to generate: one of {', '.join(MODES)} (default complex)")
    g.add_argument("--root", "-r", default="./data",
                   help="directory under which the dataset is written, created if missing "
                        "(default ./data)")
    g.add_argument("--samples", "-S", type=int, default=1,
                   help="number of samples to generate (synthetic) or the sample count used "
                        "as output prefix (real data); default 1")
    g.add_argument("--start", type=int, default=0,
                   help="number of the first sample directory (default 0 -> root/0000)")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of every random draw; same seed, same bytes (default 0)")
    g.add_argument("--verbose", "-v", action="store_true", help="print the stages of the run")
    g.add_argument("--quiet", "-q", action="store_true",
                   help="no summary line at the end of the run (errors are still printed)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace samples under the root made or started with other options "
                        "or inputs (without it such a rerun stops)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is also off when stderr is not a terminal)")
    g.add_argument("--no-preview", dest="preview", action="store_false",
                   help="do not write preview.png at the end of the run")

    s = p.add_argument_group("synthetic modes (simple, complex; --shifts also real modes)")
    s.add_argument("--size", "-N", type=int, default=256,
                   help="edge of the cubic sample in voxels; sinograms are "
                        "int(pi/2*N) x int(sqrt(2)*N) (default 256 -> 402 x 362)")
    s.add_argument("--objects", "-o", type=int, default=300,
                   help="objects per sample (default 300)")
    s.add_argument("--object-type", default="sphere",
                   help="sphere (default) or ellipsoid (random semi-axes and rotation)")
    s.add_argument("--shifts", "-s", type=int, default=None,
                   help="number of vertical shifts (default 5; real modes without it: the "
                        "numbered shift files that exist, at most 5)")
    s.add_argument("--shiftstep", "-p", type=int, default=2,
                   help="step in detector rows between shifts (default 2)")
    s.add_argument("--flatsnum", "-f", type=int, default=20,
                   help="number of simulated flat fields (complex; default 20)")
    s.add_argument("--I0", "-I", type=float, default=40000.0,
                   help="full-beam photon count per pixel (complex; default 40000)")
    s.add_argument("--defect-density", type=float, default=1.0,
                   help="defective detector pixels per detector row on top of the defect "
                        "clusters (complex; default 1: every sinogram of every shift has a "
                        "stripe; 0 = the reference's clusters only, about 2/3 of pairs "
                        "identical)")

    r = p.add_argument_group("real-data modes (raw, paired, dynamic, patch)")
    r.add_argument("--hdf-root", "--hdf-file", nargs="+", default=None, metavar="SCAN",
                   help="scan of shift 0 (shift s is the file whose numeric stem is s "
                        "higher), or an explicit list of one per shift; a NeXus/HDF5 file, or "
                        "TIFFs: a folder (proj*/flat*/dark* files or sub-folders) or a "
                        "multi-page TIFF (docs/bring-your-own-data.md)")
    r.add_argument("--flats", default=None,
                   help="flat (and dark) fields to normalise with when not in the scan: "
                        "FILE, FILE:/dataset/path, or a TIFF folder or file")
    r.add_argument("--darks", default=None,
                   help="dark fields when they are not in the scan or --flats: FILE, "
                        "FILE:/dataset/path, a TIFF folder or file, or 'zeros' (no dark "
                        "offset)")
    r.add_argument("--data-path", default=None, help="HDF5 path of the frames dataset")
    r.add_argument("--image-key-path", default=None, help="HDF5 path of image_key")
    r.add_argument("--angles-path", "--angles", default=None,
                   help="rotation angles: HDF5 path; for TIFF scans a text file of one "
                        "angle (degrees) per projection, or START:STOP (evenly spaced, both "
                        "included)")
    r.add_argument("--mask", default=None,
                   help=".npz stripe-mask archive with key m<file stem> per shift "
                        "(paired, patch); computed on the fly when absent")
    r.add_argument("--detector", default=DEFAULT_DETECTOR,
                   help="stripe detector of the on-the-fly masks: larix (default, the seed's) "
                        "or robust (see docs/detection.md)")
    r.add_argument("--frame-angles", type=int, default=900,
                   help="angles per frame of a dynamic scan (default 900)")
    r.add_argument("--frame-stride", type=int, default=1,
                   help="use every n-th block of frame-angles angles (default 1 = all; "
                        "2 reproduces the reference)")
    r.add_argument("--patch-size", nargs=2, type=int, default=[1801, 256], metavar=("H", "W"),
                   help="patch height (angles) and width (columns) (default 1801 256)")
    r.add_argument("--bounds-percentile", type=float, default=0.0, metavar="P",
                   help="scale each scan between the P-th and (100-P)-th percentiles of its "
                        "interior rows (exact; outliers clip) instead of its min and max "
                        "(default 0: min/max, the seed's)")

    o = p.add_argument_group("output format")
    o.add_argument("--format", default="tiff",
                   help="tiff (default: one file per sinogram, the seed's layout), hdf5 "
                        "(one root/NNNN.h5 per sample) or zarr (one root/NNNN.zarr per "
                        "sample; pip install 'nsgen[zarr]')")
    o.add_argument("--compression", default="none",
                   help="hdf5/zarr chunk compression: none (default), gzip or blosc "
                        "(zstd; through hdf5plugin for hdf5)")

    e = p.add_argument_group("engine (all modes)")
    e.add_argument("--chunk-size", "-C", default="auto",
                   help="detector rows per chunk; auto (default) sizes it from the memory "
                        "limit, at most 243 rows for real data")
    e.add_argument("--workers", default="auto",
                   help="worker processes; auto (default) = usable cores of the machine or "
                        "SLURM allocation")
    e.add_argument("--memory-limit", default="auto",
                   help="memory budget of the whole run, e.g. 4GB; auto (default) = 75%% of "
                        "the available memory of the machine or SLURM allocation")

    a = p.add_argument_group("SLURM array jobs (docs/slurm.md)")
    a.add_argument("--array-task", type=int, default=None, metavar="I",
                   help="generate only sample start+I of the run's samples "
                        "start..start+samples-1: one task of a SLURM array, passed as "
                        "$SLURM_ARRAY_TASK_ID by scripts/nsgen.sbatch and 'nsgen submit'")


def build_parser(prog: str = "nsgen") -> configargparse.ArgumentParser:
    """The generation parser (``nsgen [--config FILE] [options]``)."""
    p = OneLineParser(
        prog=prog,
        description="Generate clean/stripe sinogram pairs for stripe-removal networks.",
        epilog=PRECEDENCE,
    )
    _add_generation_options(p)
    return p


#: how options combine, for ``--help``
PRECEDENCE = """\
Every option can also be set by an environment variable NSGEN_<OPTION> (the long
name in capitals, dashes as underscores: NSGEN_HDF_ROOT, NSGEN_NO_PROGRESS=true) or a
line of a --config file ('hdf-root = 1000.nxs' or 'hdf-root: 1000.nxs'; # comments).
Precedence, highest first: command line > NSGEN_* environment > --config file >
default. The subcommands take --config and NSGEN_* the same way.
Guides: docs/user-guide.md, docs/bring-your-own-data.md, docs/slurm.md."""

_LINE = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_-]*)\s*[=:]\s*(.*?)\s*$")


def check_config_file(path: str, parser: configargparse.ArgumentParser | None) -> None:
    """Reject a config file that is missing, malformed or (given the ``parser`` whose
    options are the keys) has unknown keys.

    Raises
    ------
    NsgenError
        One line naming the file, the line and the fix.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NsgenError(f"config file {path} does not exist; pass an existing INI file to "
                         f"--config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NsgenError(f"cannot read config file {path} ({exc}); pass a readable UTF-8 "
                         f"INI file") from None
    known = None if parser is None else {s.lstrip("-") for a in parser._actions
                                         for s in a.option_strings if s.startswith("--")}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;" or (s.startswith("[") and s.endswith("]")):
            continue
        m = _LINE.match(line)
        if not m:
            raise NsgenError(f"{path} line {n} is not 'key = value' (or 'key: value'): {s!r}; "
                             f"fix the line or comment it out with #")
        key = m.group(1)
        if known is not None and (key not in known or key in ("config",)):
            raise NsgenError(f"{path} line {n}: unknown key '{key}'; keys are the long "
                             f"option names of 'nsgen --help' (e.g. size, hdf-root)")


def _int_range(name: str, value: int, lo: int | None = None, hi: int | None = None) -> int:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = (f">= {lo}" if hi is None else f"in {lo}..{hi}") if lo is not None else f"<= {hi}"
        raise NsgenError(f"--{name} must be an integer {rng}, got {value}")
    return value


def _auto_int(name: str, text: str, lo: int) -> int | None:
    if str(text).strip().lower() == "auto":
        return None
    try:
        v = int(str(text))
    except ValueError:
        raise NsgenError(f"--{name} must be an integer >= {lo} or 'auto', got {text!r}") from None
    if v < lo:
        raise NsgenError(f"--{name} must be an integer >= {lo} or 'auto', got {text!r}")
    return v


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


def config_from_namespace(ns: Any) -> Config:
    """Turn a parsed namespace into a :class:`Config` (validated by its constructor;
    no files are written)."""
    if ns.mode not in MODES:
        raise NsgenError(f"--mode must be one of {', '.join(MODES)}, got {ns.mode!r}")
    _int_range("samples", ns.samples, 1)
    start, samples, task = ns.start, ns.samples, getattr(ns, "array_task", None)
    if task is not None:  # one task of an array: sample start + task alone
        if not 0 <= task < samples:
            raise NsgenError(f"--array-task {task} is outside the run's {samples} samples "
                             f"(tasks 0..{samples - 1}); submit --array=0-{samples - 1} or "
                             f"raise --samples")
        _int_range("start", ns.start, 0, 9999)
        _check_last_sample(ns.start, ns.samples)
        start, samples = start + task, 1
    shifts_given = ns.shifts is not None   # real scans: use the shift files that exist
    shifts = ns.shifts if shifts_given else 5
    ph, pw = ns.patch_size
    chunk = _auto_int("chunk-size", ns.chunk_size, 1)
    workers = _auto_int("workers", ns.workers, 1)
    mem: int | None = None
    if str(ns.memory_limit).strip().lower() != "auto":
        try:
            mem = parse_bytes(ns.memory_limit)
        except ValueError:
            raise NsgenError(f"--memory-limit must be a size such as 4GB or 512MiB, got "
                             f"{ns.memory_limit!r}") from None
        if mem < 2**20:
            raise NsgenError(f"--memory-limit must be at least 1MiB, got {ns.memory_limit!r}")
    def opt(v: Any) -> Any:
        return None if v in (None, "") else v

    config = Config(
        mode=ns.mode, root=Path(ns.root), samples=samples, start=start,
        verbose=bool(ns.verbose), seed=ns.seed, size=ns.size, objects=ns.objects,
        object_type=ns.object_type, shifts=shifts, shifts_given=shifts_given,
        shiftstep=ns.shiftstep,
        flatsnum=ns.flatsnum, I0=float(ns.I0), defect_density=float(ns.defect_density),
        hdf_root=tuple(ns.hdf_root or ()),
        flats=opt(ns.flats) and Path(ns.flats), darks=opt(ns.darks) and Path(ns.darks),
        data_path=opt(ns.data_path), image_key_path=opt(ns.image_key_path),
        angles_path=opt(ns.angles_path), mask=opt(ns.mask) and Path(ns.mask),
        detector=check_detector(ns.detector),
        frame_angles=ns.frame_angles, frame_stride=ns.frame_stride, patch_size=(ph, pw),
        bounds_percentile=float(ns.bounds_percentile),
        chunk_size=chunk, workers=workers, memory_limit=mem, progress=bool(ns.progress),
        preview=bool(ns.preview), config_file=Path(ns.config_file) if getattr(ns, "config_file", None)
        else None, array_task=task, format=ns.format, compression=ns.compression,
        overwrite=bool(getattr(ns, "overwrite", False)), quiet=bool(getattr(ns, "quiet", False)),
    )
    check_root(config.root)
    return config


def _check_last_sample(start: int, samples: int) -> None:
    if start + samples - 1 > 9999:
        raise NsgenError(f"--start + --samples - 1 must be <= 9999 (four-digit sample "
                         f"directories), got {start + samples - 1}")


def validate(c: Config) -> None:
    """Check every option of ``c``; the messages are the command line's.

    Raises
    ------
    NsgenError
        The first invalid value, as one line naming the option and the fix.
    """
    if c.mode not in MODES:
        raise NsgenError(f"--mode must be one of {', '.join(MODES)}, got {c.mode!r}")
    if c.object_type not in OBJECT_TYPES:
        raise NsgenError(f"--object-type must be one of {', '.join(OBJECT_TYPES)}, "
                         f"got {c.object_type!r}")
    _int_range("samples", c.samples, 1)
    _int_range("start", c.start, 0, 9999)
    _check_last_sample(c.start, c.samples)
    _int_range("seed", c.seed, 0)
    _int_range("size", c.size, 8, 4096)
    _int_range("objects", c.objects, 1)
    _int_range("shifts", c.shifts, 1, 100)
    _int_range("shiftstep", c.shiftstep, 0)
    _int_range("flatsnum", c.flatsnum, 1)
    if not c.I0 > 0 or c.I0 != c.I0 or c.I0 == float("inf"):
        raise NsgenError(f"--I0 must be a positive finite photon count, got {c.I0}")
    columns = int(2 ** 0.5 * c.size)  # detector columns of the synthetic geometry
    if not 0 <= c.defect_density <= columns:
        raise NsgenError(f"--defect-density must be a number of defective pixels per detector "
                         f"row in 0..{columns} (the detector columns at --size {c.size}), got "
                         f"{c.defect_density}; use 1 (default) or 0 for the reference's "
                         f"density")
    if not 0 <= c.bounds_percentile < 50:
        raise NsgenError(f"--bounds-percentile must be a percentile in [0, 50) (0 = min/max), "
                         f"got {c.bounds_percentile}; e.g. 0.1 scales between the 0.1th and "
                         f"99.9th percentiles")
    _int_range("frame-angles", c.frame_angles, 1)
    _int_range("frame-stride", c.frame_stride, 1)
    ph, pw = c.patch_size
    if ph < 1 or pw < 1:
        raise NsgenError(f"--patch-size must be two positive integers H W, got {ph} {pw}")
    for name, value in (("chunk-size", c.chunk_size), ("workers", c.workers)):
        if value is not None and value < 1:
            raise NsgenError(f"--{name} must be an integer >= 1 or 'auto', got {value!r}")
    if c.memory_limit is not None and c.memory_limit < 2**20:
        raise NsgenError(f"--memory-limit must be at least 1MiB, got {c.memory_limit!r}")
    if c.array_task is not None and c.array_task < 0:
        raise NsgenError(f"--array-task must be an integer >= 0, got {c.array_task}")
    if c.format not in FORMATS:
        raise NsgenError(f"--format must be one of {', '.join(FORMATS)}, got {c.format!r}")
    if c.compression not in COMPRESSIONS:
        raise NsgenError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got "
                         f"{c.compression!r}")
    if c.compression != "none" and c.format == "tiff":
        raise NsgenError(f"--compression {c.compression} applies to --format hdf5 or zarr; "
                         f"add --format hdf5 (TIFFs are written uncompressed)")
    if c.format == "zarr":
        from importlib.util import find_spec
        if find_spec("zarr") is None:
            raise NsgenError("--format zarr needs the zarr package; pip install "
                             "'nsgen[zarr]' or use --format hdf5")
    check_detector(c.detector)
    if c.mode in REAL_MODES and not c.hdf_root:
        raise NsgenError(f"--mode {c.mode} reads a real scan: give it with --hdf-root "
                         f"FILE.nxs")


def _config_path(argv: Sequence[str], env: Any = None) -> str | None:
    path = None
    for i, a in enumerate(argv):
        if a in ("--config", "-c") and i + 1 < len(argv):
            path = argv[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
    if path is None:
        path = (os.environ if env is None else env).get("NSGEN_CONFIG") or None
    return path


def parse_config(argv: Sequence[str] | None = None,
                 env: dict[str, str] | None = None) -> Config:
    """Parse and validate the generation options.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (without the program name); default ``sys.argv[1:]``.
    env : dict, optional
        Environment to read ``NSGEN_*`` variables from; default ``os.environ``.

    Returns
    -------
    Config

    Raises
    ------
    NsgenError
        Any invalid value, unknown key or malformed file, as one line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    path = _config_path(argv)
    if path is not None:
        check_config_file(path, parser)
    try:
        ns = parser.parse_args(argv, env_vars=os.environ if env is None else env)
    except configargparse.ConfigFileParserException as exc:
        raise NsgenError(f"malformed config file: {exc}; use 'key = value' (or 'key: value') "
                         f"lines") from None
    return config_from_namespace(ns)
