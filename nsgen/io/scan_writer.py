"""Write realistic synthetic NXtomo scans (i12 layout) with known stripe defects.

For tests and benchmarks of the real-data path. The file looks like a Diamond
i12 scan::

    /entry1                          NXentry
      /tomo_entry                    NXsubentry, definition = "NXtomo"
        /data                        NXdata, signal = "data"
          data            (frames, rows, columns)   uint16 (or float32)
          rotation_angle  (frames,)                  degrees
        /instrument/detector         NXdetector
          image_key       (frames,)  2 = dark, 1 = flat, 0 = projection
          data            hard link to /entry1/tomo_entry/data/data

Frames: ``n_darks`` darks, ``n_flats`` flats, ``n_angles`` projections, and with
``flats_after`` a second block of ``n_flats`` flats and ``n_darks`` darks.

Content: the phantom, beam, detector and noise of :mod:`nsgen.io.scan_frames`, plus
defects: on a known range of rows, a few detector columns respond with a gain error
(``gain`` != 1) during the projections but not during the flats (a pixel whose response
drifted after the flat fields were taken). Flat-field correction cannot remove this, so
after ``-log`` normalisation each defective pixel adds exactly ``-ln(gain)`` at every
angle: a full stripe in the sinograms of those rows, at those columns. :class:`ScanTruth`
lists them. With ``labelled=True`` the defects are those of :mod:`nsgen.io.scan_defects`.

Frames are made in parallel (``workers``; frame ``i`` has its own random numbers, so the
bytes do not depend on the number of workers or the block size). With the default layout
(one uncompressed chunk per frame) HDF5 allocates every chunk when the data set is created
and ``workers`` threads make the frames and write each straight into its chunk's storage;
otherwise (compression, other chunks) ``workers`` processes make them and the calling
process writes them through h5py in blocks of a few tens of MB. Memory stays bounded for
any scan size.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import h5py
import hdf5plugin
import numpy as np
import numpy.typing as npt

from nsgen.errors import NsgenError
from nsgen.io.scan_defects import draw_defects, write_truth
from nsgen.io.scan_frames import Defect, FrameSpec, default_workers, fill_frames, generate_frames
from nsgen.mainscript import check_main_importable
from nsgen.rng import generator

__all__ = ["Defect", "ScanTruth", "main", "write_scan"]

DEFAULT_GAIN_ERROR = 0.94
_BLOCK_BYTES = 32 * 2**20
#: scans smaller than this are made in the calling process (starting workers costs ~1 s)
_PARALLEL_BYTES = 256 * 2**20
_COMPRESSIONS = (None, "gzip", "blosc", "bitshuffle")


@dataclass(frozen=True, eq=False)
class ScanTruth:
    """What :func:`write_scan` put into the file.

    Attributes
    ----------
    shape : tuple of int
        ``(n_frames, n_rows, n_columns)`` of the stored data set.
    n_projections, n_flats, n_darks : int
        Frame counts (flats and darks over all blocks).
    image_key : numpy.ndarray
        Per frame: 2 dark, 1 flat, 0 projection.
    angles : numpy.ndarray
        Projection angles in degrees.
    defects : tuple of Defect
        The stripe-causing defects.
    stripe_rows : numpy.ndarray
        Sorted detector rows whose sinograms carry at least one real stripe.
    stripe_columns : numpy.ndarray
        Sorted detector columns that carry a stripe in at least one row.
    """

    shape: tuple[int, int, int]
    n_projections: int
    n_flats: int
    n_darks: int
    image_key: np.ndarray
    angles: np.ndarray
    defects: tuple[Defect, ...]
    stripe_rows: np.ndarray = field(repr=False)
    stripe_columns: np.ndarray = field(repr=False)

    @property
    def projection_indices(self) -> np.ndarray:
        """Frame indices of the projections."""
        return np.flatnonzero(self.image_key == 0)

    def stripe_columns_in_row(self, row: int) -> np.ndarray:
        """Sorted columns that carry a stripe in the sinogram of detector ``row``."""
        return np.array(sorted({d.column for d in self.defects if d.row_start <= row < d.row_stop}), dtype=np.int64)


# ----------------------------------------------------------------------------
# defects and filters
# ----------------------------------------------------------------------------


def _default_defects(n_rows: int, n_columns: int, seed: int) -> list[Defect]:
    rng = generator(seed, "scan-defects")
    k = int(np.clip(n_columns // 64, 1, 8))
    free = list(range(2, n_columns - 2)) if n_columns >= 8 else list(range(n_columns))
    columns: list[int] = []
    for _ in range(k):
        ok = [c for c in free if all(abs(c - d) > 3 for d in columns)]
        if not ok:
            break
        columns.append(int(ok[int(rng.integers(len(ok)))]))
    defects = []
    for c in sorted(columns):
        length = int(rng.integers(max(1, n_rows // 8), max(2, n_rows // 2 + 1)))
        start = int(rng.integers(0, n_rows - length + 1))
        size = rng.uniform(0.04, 0.10) * rng.choice([-1.0, 1.0])
        defects.append(Defect(c, start, start + length, float(1.0 + size)))
    return defects


def _parse_defects(defect_rows: Mapping[int, Sequence[float]], n_rows: int, n_columns: int) -> list[Defect]:
    defects = []
    for column, spec in sorted(defect_rows.items()):
        values = tuple(spec)
        if len(values) not in (2, 3):
            raise NsgenError(f"defect for column {column} must be (row_start, row_stop[, gain]), got {values}; "
                             f"fix the defect list")
        start, stop = int(values[0]), int(values[1])
        gain = float(values[2]) if len(values) == 3 else DEFAULT_GAIN_ERROR
        if not 0 <= int(column) < n_columns:
            raise NsgenError(f"defect column {column} is outside the detector (0..{n_columns - 1}); "
                             f"choose a column inside it")
        if not 0 <= start < stop <= n_rows:
            raise NsgenError(f"defect rows {start}..{stop} of column {column} are not a non-empty range inside "
                             f"0..{n_rows}; choose row_start < row_stop <= {n_rows}")
        if not (gain > 0 and np.isfinite(gain)) or gain == 1.0:
            raise NsgenError(f"defect gain {gain} of column {column} must be positive and not 1; "
                             f"use e.g. 0.94 or 1.06")
        defects.append(Defect(int(column), start, stop, gain))
    return defects


def _allocated_now() -> h5py.h5p.PropDCID:
    """Dataset creation properties: storage of every chunk allocated at creation, never
    filled (its bytes are written by :func:`~nsgen.io.scan_frames.fill_frames`)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def _compression_kwargs(compression: str | None) -> dict:
    if compression is None:
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if compression == "blosc":
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "bitshuffle":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    raise NsgenError(f"unknown compression {compression!r}; use none, gzip, blosc or bitshuffle")


# ----------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------


def write_scan(path: str | os.PathLike[str], *, n_angles: int = 181, n_rows: int = 32, n_columns: int = 256,
               n_flats: int = 10, n_darks: int = 5, flats_after: bool = False,
               defect_rows: Mapping[int, Sequence[float]] | None = None,
               chunks: tuple[int, int, int] | None = None, compression: str | None = None,
               seed: int = 0, dtype: npt.DTypeLike = np.uint16, i0: float = 20000.0,
               overwrite: bool = False, labelled: bool = False, workers: int | None = None) -> ScanTruth:
    """Write a synthetic NXtomo scan with known stripe defects.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written to a temporary name and renamed when complete.
    n_angles, n_rows, n_columns : int
        Projections (angles evenly spaced over [0, 180] degrees inclusive) and
        detector size.
    n_flats, n_darks : int
        Flat and dark frames per block (may be 0, e.g. to test separate flats).
    flats_after : bool
        Add a second block of flats and darks after the projections.
    defect_rows : mapping, optional
        ``{column: (row_start, row_stop[, gain])}``: a gain error (default
        0.94) on rows ``row_start <= r < row_stop`` of that column. ``None``: a
        few defects drawn from ``seed`` (1 per 64 columns, at most 8, gains
        1 +- 4..10 %).
    chunks : tuple of int, optional
        HDF5 chunk shape; default one frame per chunk, as area detectors write.
    compression : {None, 'gzip', 'blosc', 'bitshuffle'}
        Filter for the data set (Blosc and bitshuffle come from hdf5plugin).
    seed : int
        Seed of the phantom, the default defects and the noise.
    dtype : numpy dtype
        ``uint16`` (counts, clipped to 0..65535) or a float type (unrounded).
    i0 : float
        Photons per pixel at the centre of the beam.
    overwrite : bool
        Replace an existing file.
    labelled : bool
        Realistic labelled defects of every kind of :mod:`nsgen.io.scan_defects` instead of
        the gain defects (``defect_rows`` must be None), with hard negatives (a cylinder just
        off the rotation axis, a beam drifting smoothly after the flats), and the ground
        truth written beside the scan (:func:`~nsgen.io.scan_defects.truth_path`).
    workers : int, optional
        Threads that make and write the frames (default layout), or processes that make
        them (compression or other chunks: the calling process writes them). ``None``: one
        per available core for scans of 256 MiB or more, else 1. The file is the same
        whatever the number.

    Returns
    -------
    ScanTruth
        Which rows and columns carry real stripes, and the frame layout.
    """
    for name, value, least in (("--angles", n_angles, 1), ("--rows", n_rows, 1), ("--columns", n_columns, 1),
                               ("--flats", n_flats, 0), ("--darks", n_darks, 0)):
        if int(value) != value or value < least:
            raise NsgenError(f"{name} must be an integer >= {least}, got {value}; fix the scan size")
    if workers is not None and (int(workers) != workers or workers < 1):
        raise NsgenError(f"--workers must be an integer >= 1, got {workers}; e.g. --workers 2")
    if not (np.isfinite(i0) and 0 < i0 <= 60000):
        raise NsgenError(f"--i0 must be in (0, 60000] photons, got {i0}; choose a smaller beam intensity")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64)):
        raise NsgenError(f"--dtype must be uint16, float32 or float64, got {dtype}; choose one of these")
    filters = _compression_kwargs(compression)
    chunks = (1, n_rows, n_columns) if chunks is None else chunks
    chunks = (int(chunks[0]), int(chunks[1]), int(chunks[2])) if len(chunks) == 3 else chunks
    if len(chunks) != 3 or any(c < 1 for c in chunks):
        raise NsgenError(f"--chunks must be three positive integers, got {chunks}; e.g. 1,{n_rows},{n_columns}")
    out = Path(path)
    if out.exists() and not overwrite:
        raise NsgenError(f"'{out}' already exists; remove it or pass --overwrite")
    if not out.parent.is_dir():
        raise NsgenError(f"directory '{out.parent}' does not exist; create it first")

    if labelled and defect_rows is not None:
        raise NsgenError("a labelled scan draws its own defects; leave out --defect")
    labels = draw_defects(n_angles, n_rows, n_columns, seed) if labelled else []
    defects = ([] if labelled else _default_defects(n_rows, n_columns, seed) if defect_rows is None
               else _parse_defects(defect_rows, n_rows, n_columns))
    angles = np.linspace(0.0, 180.0, n_angles) if n_angles > 1 else np.zeros(1)
    blocks = [(2, n_darks), (1, n_flats), (0, n_angles)] + ([(1, n_flats), (2, n_darks)] if flats_after else [])
    image_key = np.concatenate([np.full(n, k, dtype=np.int32) for k, n in blocks])
    n_frames = image_key.size
    frame_angle = np.empty(n_frames)
    frame_angle[image_key == 0] = angles
    first = int(np.flatnonzero(image_key == 0)[0])
    frame_angle[:first] = angles[0]
    frame_angle[first + n_angles:] = angles[-1]

    spec = FrameSpec(n_rows=n_rows, n_columns=n_columns, n_angles=n_angles, seed=seed, i0=float(i0),
                     dtype=dtype.name, image_key=image_key, frame_angle=frame_angle,
                     defects=tuple(defects), labels=tuple(labels), labelled=labelled)
    frame_bytes = n_rows * n_columns * dtype.itemsize
    if workers is None:
        workers = default_workers() if n_frames * frame_bytes >= _PARALLEL_BYTES else 1
    workers = max(1, min(int(workers), n_frames))
    # blocks of at most _BLOCK_BYTES (float32 while made), at least 4 per worker
    block = max(1, min(_BLOCK_BYTES // (n_rows * n_columns * 4), -(-n_frames // (4 * workers))))
    if workers > 1:
        check_main_importable()

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            entry = f.create_group("entry1")
            entry.attrs["NX_class"] = "NXentry"
            tomo = entry.create_group("tomo_entry")
            tomo.attrs["NX_class"] = "NXsubentry"
            tomo.create_dataset("definition", data="NXtomo")
            data_group = tomo.create_group("data")
            data_group.attrs["NX_class"] = "NXdata"
            data_group.attrs["signal"] = "data"
            data_group.attrs["axes"] = np.array([b"rotation_angle", b".", b"."])
            data_group.attrs["rotation_angle_indices"] = 0
            direct = not filters and chunks == (1, n_rows, n_columns)
            dset = data_group.create_dataset("data", shape=(n_frames, n_rows, n_columns), dtype=dtype,
                                             chunks=chunks, dcpl=_allocated_now() if direct else None,
                                             **filters)
            rot = data_group.create_dataset("rotation_angle", data=frame_angle)
            rot.attrs["units"] = "deg"
            instrument = tomo.create_group("instrument")
            instrument.attrs["NX_class"] = "NXinstrument"
            detector = instrument.create_group("detector")
            detector.attrs["NX_class"] = "NXdetector"
            detector.create_dataset("image_key", data=image_key)
            detector["data"] = dset
            if direct:  # threads write each frame into its chunk's storage
                offsets = [dset.id.get_chunk_info_by_coord((i, 0, 0)).byte_offset for i in range(n_frames)]
                f.flush()
                fill_frames(spec, tmp, np.array(offsets, dtype=np.int64), block, workers)
            else:
                for a, frames in generate_frames(spec, block, workers):
                    dset[a:a + len(frames)] = frames
        if labelled:
            write_truth(out, labels, (n_angles, n_rows, n_columns))
        os.replace(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise

    rows = sorted({r for d in defects for r in range(d.row_start, d.row_stop)})
    return ScanTruth(
        shape=(n_frames, n_rows, n_columns),
        n_projections=n_angles,
        n_flats=int(np.count_nonzero(image_key == 1)),
        n_darks=int(np.count_nonzero(image_key == 2)),
        image_key=image_key,
        angles=angles,
        defects=tuple(defects),
        stripe_rows=np.array(rows, dtype=np.int64),
        stripe_columns=np.array(sorted({d.column for d in defects}), dtype=np.int64),
    )


# ----------------------------------------------------------------------------
# command line: nsgen make-scan
# ----------------------------------------------------------------------------


def _defect_arg(text: str) -> tuple[int, tuple[float, ...]]:
    parts = text.split(":")
    try:
        if len(parts) not in (3, 4):
            raise ValueError
        column, start, stop = (int(p) for p in parts[:3])
        rest = (float(parts[3]),) if len(parts) == 4 else ()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLUMN:ROW_START:ROW_STOP[:GAIN], got {text!r}") from None
    return column, (start, stop, *rest)


def _chunks_arg(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
        if len(values) != 3:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FRAMES,ROWS,COLUMNS, got {text!r}") from None
    return values


def build_parser() -> argparse.ArgumentParser:
    """The ``nsgen make-scan`` argument parser."""
    p = argparse.ArgumentParser(
        prog="nsgen make-scan",
        description="Write a synthetic NXtomo scan (i12 layout) with known stripe defects.",
    )
    p.add_argument("output", help="output .nxs file")
    p.add_argument("--angles", type=int, default=181, help="number of projections (default 181)")
    p.add_argument("--rows", type=int, default=32, help="detector rows (default 32)")
    p.add_argument("--columns", type=int, default=256, help="detector columns (default 256)")
    p.add_argument("--flats", type=int, default=10, help="flat frames per block (default 10)")
    p.add_argument("--darks", type=int, default=5, help="dark frames per block (default 5)")
    p.add_argument("--flats-after", action="store_true", help="also write flats and darks after the projections")
    p.add_argument("--defect", type=_defect_arg, action="append", metavar="COL:START:STOP[:GAIN]",
                   help="a gain-error defect (repeatable); default: a few random ones")
    p.add_argument("--chunks", type=_chunks_arg, default=None, metavar="F,R,C",
                   help="HDF5 chunk shape (default one frame per chunk)")
    p.add_argument("--compression", choices=["none", "gzip", "blosc", "bitshuffle"], default="none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["uint16", "float32"], default="uint16")
    p.add_argument("--i0", type=float, default=20000.0, help="photons per pixel at the beam centre")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--workers", type=int, default=None,
                   help="threads (processes with --compression or --chunks) making the frames "
                        "(default: one per core for scans of 256 MiB or more, else 1); the file is "
                        "the same whatever the number")
    p.add_argument("--labelled", action="store_true",
                   help="realistic labelled defects (full, partial, fluctuating, dead, saturated, "
                        "low-contrast stripes of 1-5 columns) and hard negatives; writes the "
                        "ground truth beside the scan as OUTPUT.truth.h5")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nsgen make-scan``; returns the exit status (NsgenError propagates)."""
    args = build_parser().parse_args(argv)
    defects = None if args.defect is None else dict(args.defect)
    if defects is not None and len(defects) != len(args.defect):
        raise NsgenError("two --defect options name the same column; give one per column")
    truth = write_scan(
        args.output, n_angles=args.angles, n_rows=args.rows, n_columns=args.columns, n_flats=args.flats,
        n_darks=args.darks, flats_after=args.flats_after, defect_rows=defects, chunks=args.chunks,
        compression=None if args.compression == "none" else args.compression, seed=args.seed,
        dtype=np.dtype(args.dtype), i0=args.i0, overwrite=args.overwrite, labelled=args.labelled,
        workers=args.workers,
    )
    if args.labelled:
        print(f"wrote {args.output} and its ground truth {args.output}.truth.h5", file=sys.stdout)
        return 0
    cols = ", ".join(f"{d.column}@{d.row_start}-{d.row_stop - 1}" for d in truth.defects)
    print(f"wrote {args.output}: {truth.n_projections} projections, {truth.n_flats} flats, {truth.n_darks} darks "
          f"of {args.rows} x {args.columns} ({args.dtype}); stripes at column@rows {cols}", file=sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
