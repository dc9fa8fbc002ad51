"""``nsgen inspect SCAN``: what nsgen finds in a scan, before anything is generated.

Prints the layout found and why, every path used, shapes, type, storage (chunks,
compression), counts of projections/flats/darks, the angle range, dead and saturated
pixels of the flat field, estimated output size, memory and run time of a ``raw`` run,
and stripe-detection parameters that fit the scan. Reads the flats and darks and a few
detector rows of the projections; writes nothing. A file that is neither HDF5 nor TIFF,
or a scan without usable projections, flats or darks, is one line and exit status 2.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsgen.errors import NsgenError

#: rows read and normalised to estimate the run time
SAMPLE_ROWS = 8
#: bytes of one output TIFF of the downsampling modes (402 x 362 uint16 + header)
TIFF_BYTES = 402 * 362 * 2 + 240


def build_parser() -> Any:
    """The ``nsgen inspect`` parser (``--config`` and ``NSGEN_*`` like the main command)."""
    from nsgen.config import OneLineParser

    p = OneLineParser(prog="nsgen inspect",
                      description="Show what nsgen finds in a scan (writes nothing).")
    p.add_argument("scan", nargs="?", help="the scan: NeXus/HDF5 file, TIFF folder or TIFF file "
                                           "(default: --hdf-root)")
    p.add_argument("--hdf-root", "--hdf-file", nargs="+", help="as in 'nsgen --help' (the first "
                                                               "file is inspected)")
    p.add_argument("--flats", help="flats: FILE, FILE:/dataset, or a TIFF folder or file")
    p.add_argument("--darks", help="darks: as --flats, or 'zeros'")
    p.add_argument("--data-path", help="HDF5 path of the frames")
    p.add_argument("--image-key-path", help="HDF5 path of image_key")
    p.add_argument("--angles-path", "--angles", help="HDF5 path, text file or START:STOP")
    return p


def _count(a: np.ndarray) -> str:
    return f"{int(np.count_nonzero(a)):,}"


def pixel_report(flat: np.ndarray, dark: np.ndarray, dtype: np.dtype,
                 probes: np.ndarray | None = None) -> str:
    """Dead and saturated pixels as a run finds them (:func:`~nsgen.prep.bad_pixels.
    find_bad_pixels`: the flat and dark means and, when given, the probed projections),
    a problem of the flats as a whole, or why the scan cannot be normalised.

    Examples
    --------
    >>> pixel_report(np.array([[5., 0., 65535.]]), np.zeros((1, 3)), np.dtype("uint16"))
    '1 dead, 1 saturated of 3 pixels (flagged as stripes, left out of the scaling bounds)'
    >>> pixel_report(np.zeros((1, 3)), np.ones((1, 3)), np.dtype("uint16"))  # doctest: +ELLIPSIS
    'normalisation impossible: no detector pixel has a flat above its dark ...'
    """
    from nsgen.prep.bad_pixels import find_bad_pixels, saturation_level
    try:
        bad = find_bad_pixels(flat, dark, saturation_level(dtype), "the scan", probes)
    except NsgenError as exc:
        return f"normalisation impossible: {str(exc).removeprefix('the scan: ')}"
    text = f"{_count(bad.dead)} dead"
    if saturation_level(dtype) is not None:
        text += f", {_count(bad.saturated)} saturated"
    text += f" of {flat.size:,} pixels"
    if bad.count:
        text += " (flagged as stripes, left out of the scaling bounds)"
    return text + (f"; {bad.flats_problem}" if bad.flats_problem else "")


def fitting_params(shape: tuple[int, int, int]) -> tuple[dict[str, Any], str]:
    """Stripe-detection parameters for a scan of ``shape`` (angles, rows, columns): what
    ``nsgen mask`` and the on-the-fly detection use by default
    (:meth:`~nsgen.prep.detect_params.DetectParams.for_scan`), and where they come from.

    Examples
    --------
    >>> fitting_params((1801, 100, 2560))[1]
    "the seed's values (they fit)"
    >>> p, why = fitting_params((181, 40, 64))
    >>> p["size"], p["min_stripe_length"], p["min_stripe_depth"], why.startswith("derived")
    (25, 60, 30, True)
    """
    from dataclasses import asdict

    from nsgen.prep.detect_params import DetectParams

    try:
        params = DetectParams.for_scan(shape)
    except ValueError as exc:
        return {}, str(exc)
    if params == DetectParams():
        return asdict(params), "the seed's values (they fit)"
    return asdict(params), ("derived from the scan's size (DetectParams.for_scan): what nsgen "
                            "mask uses unless given")


def _timing(scan: Any, workers: int) -> str:
    from nsgen.prep.normalise import flat_field_log

    n_rows = scan.shape[1]
    k = min(SAMPLE_ROWS, n_rows)
    rows = slice((n_rows - k) // 2, (n_rows - k) // 2 + k)
    flat, dark = scan.flat_mean(rows), scan.dark_mean(rows)
    flat_field_log(scan.read_projections(slice(rows.start, rows.start + 1)), flat[:1], dark[:1])
    t0 = time.perf_counter()
    raw = scan.read_projections(rows)
    t1 = time.perf_counter()
    flat_field_log(raw, flat, dark)
    t2 = time.perf_counter()
    per_row = (t1 - t0) / k, (t2 - t1) / k
    total = n_rows * (per_row[0] + per_row[1] * 4 / max(1, workers))
    return (f"about {total:.2g} s per shift ({k} rows read in {t1 - t0:.2f} s (page cache may "
            f"flatter it), normalised in {t2 - t1:.2f} s; raw mode, {workers} workers, "
            f"downsampling counted as 3x normalising)")


def _no_key(scan: Any) -> str:
    if scan.how.startswith("TIFF"):
        return "none (TIFF: projections, flats and darks told apart by file name)"
    return "none (every frame of the data is a projection)"


def report(scan: Any, *, workers: int, memory: int) -> list[str]:
    """The lines ``nsgen inspect`` prints for an open scan."""
    n_angles, n_rows, n_cols = scan.shape
    dtype = np.dtype(scan.dtype)
    lines = [
        f"scan:        {scan.path}",
        f"layout:      {scan.how}",
        f"data:        {scan.data_path}",
        f"image_key:   {scan.image_key_path or _no_key(scan)}",
        f"angles:      {scan.angles_path or 'none found'}",
        f"flats:       {scan.flats_source}",
        f"darks:       {scan.darks_source}",
        (f"frames:      {scan.n_frames} ({n_angles} projections, {scan.n_flats} flats, "
         f"{scan.n_darks} darks)"),
        f"projections: {n_angles} angles x {n_rows} rows x {n_cols} columns, {dtype}",
        f"storage:     {scan.storage}",
    ]
    angles = scan.angles
    if angles is not None and angles.size:
        lines.append(f"angle range: {angles.min():.3f} .. {angles.max():.3f} degrees "
                     f"({angles.size} angles)")
    every = slice(0, n_rows)
    from nsgen.prep.bad_pixels import probe_frames
    pixels = pixel_report(scan.flat_mean(every), scan.dark_mean(every), dtype, probe_frames(scan))
    lines.append(f"pixels:      {pixels}")
    scan_bytes = n_angles * n_rows * n_cols * dtype.itemsize
    row_bytes = n_angles * n_cols * (dtype.itemsize + 4 * 5)
    lines.append(f"output:      raw mode: {n_rows} TIFFs per shift, {n_rows * TIFF_BYTES / 1e6:.1f} MB; "
                 f"paired: at most {2 * n_rows} TIFFs, {2 * n_rows * TIFF_BYTES / 1e6:.1f} MB "
                 f"(projections read: {scan_bytes / 1e9:.2f} GB)")
    lines.append(f"memory:      one detector row {row_bytes / 2**20:.1f} MiB in flight (raw + float32 "
                 f"work); {memory / 2**30:.1f} GiB usable here, chunks sized to fit "
                 f"(--memory-limit)")
    lines.append(f"run time:    {_timing(scan, workers)}")
    from nsgen.mask import OPTIONS

    params, why = fitting_params((n_angles, n_rows, n_cols))
    option = {name: flag for flag, name, *_ in OPTIONS}
    opts = " ".join(f"{option.get(k, '--' + k)} {v}" for k, v in params.items())
    depth = f" (row window --min-stripe-depth {params['min_stripe_depth']})" if params else ""
    lines.append(f"detection:   --detector robust, the default{depth}; --detector larix: {opts} "
                 f"({why})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nsgen inspect``."""
    from nsgen.engine.sizing import available_memory, usable_cores
    from nsgen.scan import ScanLayout, open_scan

    a = build_parser().parse_args(list(sys.argv[2:] if argv is None else argv))
    target = a.scan or (a.hdf_root[0] if a.hdf_root else None)
    if target is None:
        raise NsgenError("nothing to inspect; give the scan: nsgen inspect SCAN (or --hdf-root)")
    layout = ScanLayout(a.data_path, a.image_key_path, a.angles_path)
    with open_scan(target, layout, a.flats, a.darks) as scan:
        for line in report(scan, workers=usable_cores(), memory=available_memory()):
            print(line)
    return 0
