"""Command-line, environment and INI options, parsed into a :class:`~nsgen.config.Config`.

Precedence, highest first: command-line flag > environment variable
(``NSGEN_<LONG_NAME>``, dashes as underscores, e.g. ``NSGEN_HDF_ROOT``) > config file
(``--config FILE``; keys are the long option names, ``hdf-root = 1000.nxs`` or
``hdf-root: 1000.nxs``) > built-in default. The result is an immutable
:class:`~nsgen.config.Config` (which validates itself). Subcommands read ``--config`` and
``NSGEN_*`` the same way (:class:`OneLineParser`).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import configargparse

from nsgen.config import (MODES, Config, _check_last_sample, _int_range, check_root,
                          parse_bytes)
from nsgen.errors import NsgenError, attempt
from nsgen.prep.detect import DEFAULT_DETECTOR

__all__ = ["PRECEDENCE", "OneLineParser", "auto_int", "build_parser", "check_config_file",
           "config_from_namespace", "memory_limit", "parse_config"]


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
                        "stripe; 0 = the reference's clusters only: about half of the "
                        "pairs identical, 51 %% over seeds 0-2 at -N 256)")

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
                   help="stripe detector of the on-the-fly masks: robust (default) or larix "
                        "(the seed's, which over-detects; see docs/detection.md)")
    r.add_argument("--frame-angles", type=int,
                   help="angles per frame of a dynamic scan (default: its projections per "
                        "180 degrees of rotation, from its angles; 900 without angles)")
    r.add_argument("--frame-stride", type=int, default=1,
                   help="use every n-th block of frame-angles angles (default 1 = all; "
                        "2 reproduces the reference)")
    r.add_argument("--patch-size", nargs=2, type=int, metavar=("H", "W"),
                   help="patch height (angles) and width (columns) (default 1801 256, cut "
                        "down to sinograms with fewer angles or columns)")
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


def auto_int(name: str, text: str, lo: int) -> int | None:
    """``--name``'s value: None for ``auto``, else an integer ``>= lo`` (one line if not).

    Examples
    --------
    >>> auto_int("workers", "auto", 1), auto_int("workers", "3", 1)
    (None, 3)
    >>> auto_int("workers", "0", 1)
    Traceback (most recent call last):
    ...
    nsgen.errors.NsgenError: --workers must be an integer >= 1 or 'auto', got '0'
    """
    if str(text).strip().lower() == "auto":
        return None
    try:
        v = int(str(text))
    except ValueError:
        raise NsgenError(f"--{name} must be an integer >= {lo} or 'auto', got {text!r}") from None
    if v < lo:
        raise NsgenError(f"--{name} must be an integer >= {lo} or 'auto', got {text!r}")
    return v


def memory_limit(text: str | None) -> int | None:
    """``--memory-limit``'s value in bytes: None for ``auto`` (or not given), else a size of
    at least 1 MiB (one line if not).

    Examples
    --------
    >>> memory_limit("auto"), memory_limit("4GB"), memory_limit("512MiB")
    (None, 4000000000, 536870912)
    >>> memory_limit("lots")
    Traceback (most recent call last):
    ...
    nsgen.errors.NsgenError: --memory-limit must be a size such as 4GB or 512MiB, got 'lots'
    >>> memory_limit("10")
    Traceback (most recent call last):
    ...
    nsgen.errors.NsgenError: --memory-limit must be at least 1MiB, got '10'
    """
    if not text or str(text).strip().lower() == "auto":
        return None
    try:
        mem = parse_bytes(text)
    except ValueError:
        raise NsgenError(f"--memory-limit must be a size such as 4GB or 512MiB, got "
                         f"{text!r}") from None
    if mem < 2**20:
        raise NsgenError(f"--memory-limit must be at least 1MiB, got {text!r}")
    return mem


def config_from_namespace(ns: Any) -> Config:
    """Turn a parsed namespace into a :class:`Config` (validated by its constructor;
    no files are written). Every invalid option is reported, in one line."""
    problems: list[str] = []

    start, samples, task = ns.start, ns.samples, getattr(ns, "array_task", None)
    if task is not None:  # one task of an array: sample start + task alone
        if samples < 1:
            pass   # Config reports it
        elif not 0 <= task < samples:
            problems.append(f"--array-task {task} is outside the run's {samples} samples "
                            f"(tasks 0..{samples - 1}); submit --array=0-{samples - 1} or "
                            f"raise --samples")
        else:
            attempt(problems, _int_range, "start", ns.start, 0, 9999)
            attempt(problems, _check_last_sample, ns.start, ns.samples)
            start, samples = start + task, 1
    shifts_given = ns.shifts is not None   # real scans: use the shift files that exist
    shifts = ns.shifts if shifts_given else 5
    patch_size_given = ns.patch_size is not None
    frame_angles_given = ns.frame_angles is not None
    ph, pw = ns.patch_size if patch_size_given else Config.patch_size   # its default
    chunk = attempt(problems, auto_int, "chunk-size", ns.chunk_size, 1)
    workers = attempt(problems, auto_int, "workers", ns.workers, 1)
    mem = attempt(problems, memory_limit, ns.memory_limit)

    def opt(v: Any) -> Any:
        return None if v in (None, "") else v

    config = attempt(problems, lambda: Config(
        mode=ns.mode, root=Path(ns.root), samples=samples, start=start,
        verbose=bool(ns.verbose), seed=ns.seed, size=ns.size, objects=ns.objects,
        object_type=ns.object_type, shifts=shifts, shifts_given=shifts_given,
        shiftstep=ns.shiftstep,
        flatsnum=ns.flatsnum, I0=float(ns.I0), defect_density=float(ns.defect_density),
        hdf_root=tuple(ns.hdf_root or ()),
        flats=opt(ns.flats) and Path(ns.flats), darks=opt(ns.darks) and Path(ns.darks),
        data_path=opt(ns.data_path), image_key_path=opt(ns.image_key_path),
        angles_path=opt(ns.angles_path), mask=opt(ns.mask) and Path(ns.mask),
        detector=ns.detector,
        frame_angles=ns.frame_angles if frame_angles_given else Config.frame_angles,
        frame_angles_given=frame_angles_given, frame_stride=ns.frame_stride,
        patch_size=(ph, pw), patch_size_given=patch_size_given,
        bounds_percentile=float(ns.bounds_percentile),
        chunk_size=chunk, workers=workers, memory_limit=mem, progress=bool(ns.progress),
        preview=bool(ns.preview), config_file=Path(ns.config_file) if getattr(ns, "config_file", None)
        else None, array_task=task, format=ns.format, compression=ns.compression,
        overwrite=bool(getattr(ns, "overwrite", False)), quiet=bool(getattr(ns, "quiet", False)),
    ))
    attempt(problems, check_root, Path(ns.root))
    if problems:
        raise NsgenError("; ".join(dict.fromkeys(problems)))
    assert config is not None
    return config


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
