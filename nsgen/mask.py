"""``nsgen mask`` / ``python -m nsgen.mask``: stripe mask of a scan into an .npz archive.

Larix generation-2 ``STRIPES_DETECT`` + ``STRIPES_MERGE`` (docs/science.md B 5.2), streamed over
detector-row chunks in two passes (detector, then merge passes), each with the halo rows
its filters need (the result equals the whole-volume computation exactly), on the engine's
worker pool with bounded memory. The
full-resolution ``(angles, rows, columns)`` uint8 0/1 mask is appended to the archive under
``m<file stem>`` (or ``--file-name``), with ``<name>_weights`` when ``--weights``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nsgen.config import OneLineParser
from nsgen.options import auto_int, memory_limit
from nsgen.engine.pipeline import (
    Chunk,
    Engine,
    Stage,
    WorkResult,
    install_sigterm_handler,
    row_chunks,
)
from nsgen.engine import scratch
from nsgen.engine.forkserver import mask_preload
from nsgen.engine.sizing import usable_cores
from nsgen.errors import NsgenError, attempt
from nsgen.io.deflate import Deflated, crc32_combine, deflate_piece
from nsgen.io.spill import Spill
from nsgen.runner import Log, StageRunner
from nsgen.scan import ScanLayout
from nsgen.stages.decompress import decompressed
from nsgen.stages.scan_source import ScanSource
from nsgen.prep.detect import DEFAULT_DETECTOR, DETECTORS, LARIX_OPTIONS, choose_detector
from nsgen.prep.detect_params import DetectParams, ScanTooSmall
from nsgen.stages.stripes import StepClock, detect_stripes


def build_parser() -> argparse.ArgumentParser:
    """Options of ``nsgen mask`` (detection defaults are the seed's values)."""
    p = OneLineParser(prog="nsgen mask", description="Detect stripes in a scan and append the mask "
                                               "to an .npz archive.")
    p.add_argument("--h5", required=True, help="the scan (NeXus/HDF5)")
    p.add_argument("--flats", help="file with flats (and darks): FILE or FILE:/dataset")
    p.add_argument("--darks", help="file with darks: FILE or FILE:/dataset")
    p.add_argument("-a", "--archive", required=True,
                   help=".npz archive; created if missing, appended to if it exists")
    p.add_argument("-f", "--file-name", help="key in the archive (default m<scan file stem>)")
    p.add_argument("-w", "--weights", action="store_true",
                   help="also store the detection weights as <key>_weights")
    p.add_argument("--overwrite", action="store_true", help="replace an existing key")
    p.add_argument("--data-path"), p.add_argument("--image-key-path")
    p.add_argument("--angles-path")
    p.add_argument("--detector",
                   help=f"{DEFAULT_DETECTOR} (default: decisions from each sinogram's "
                        f"statistics) or larix (Larix generation 2, the seed's, bit-exact; "
                        f"chosen when --weights or a Larix-only option is given without "
                        f"--detector); see docs/detection.md")
    d = p.add_argument_group(
        "detection (Larix STRIPES_DETECT / STRIPES_MERGE)",
        "Larix's parameters (all but --min-stripe-depth, which the robust detector uses for "
        "its row window too; any of them selects --detector larix when none is named). "
        "Defaults: the seed's values for full-size i12 scans (1801 angles x 2560 columns), "
        "with --median-size, --min-stripe-length (angles) and --min-stripe-width (columns) scaled to "
        "the scan, --radius and --min-stripe-depth capped by it; give a value to fix it")
    for option, name, kind, text in OPTIONS:
        d.add_argument(option, type=kind, dest=name, help=text)
    e = p.add_argument_group("engine")
    e.add_argument("--workers", default="auto",
                   help="worker processes; auto (default) = usable cores")
    e.add_argument("--chunk-size", "-C", default="auto",
                   help="detector rows per chunk; auto (default) sizes it from the memory limit")
    e.add_argument("--memory-limit", help="memory budget, e.g. 4GB")
    e.add_argument("-v", "--verbose", action="store_true")
    return p


#: detection options: (option, DetectParams field, type, help)
OPTIONS = (
    ("--median-size", "size", int,
     "half window of the vertical median along angles (seed: 250; Larix's size)"),
    ("--radius", "radius", int, "radius of the neighbourhood means (seed: 3)"),
    ("--threshold", "threshold", float,
     "weights <= threshold are stripe candidates (seed: 0.63)"),
    ("--min-stripe-length", "min_stripe_length", int, "minimum length along angles (seed: 600)"),
    ("--min-stripe-depth", "min_stripe_depth", int,
     "features deeper than this along detector rows are not stripes (seed: 30)"),
    ("--min-stripe-width", "min_stripe_width", int,
     "merge distance across columns and angles (seed: 22)"),
    ("--sensitivity", "sensitivity_perc", float,
     "percentage of a window that must be stripe (seed: 85)"),
)
_OPTION = {f: o for o, f, _, _ in OPTIONS}


def larix_options_given(args: argparse.Namespace) -> list[str]:
    """The options of Larix alone (:data:`~nsgen.prep.detect.LARIX_OPTIONS`) given in
    ``args``, in that order."""
    given = {o for o, f, _, _ in OPTIONS if getattr(args, f) is not None}
    given |= {"--weights"} if args.weights else set()
    return [o for o in LARIX_OPTIONS if o in given]


def scan_params(args: argparse.Namespace, shape: tuple[int, int, int],
                detector: str = "larix") -> DetectParams:
    """Detection parameters of ``detector`` for a scan of ``shape``: the options given, the
    rest derived.

    Every problem of the given options is reported in one line (exit 2); an option that was
    not given is never the cause (:meth:`DetectParams.for_scan`).
    """
    given = {f: getattr(args, f) for f in _OPTION if getattr(args, f) is not None}
    try:
        return DetectParams.for_scan(shape, given, name=_OPTION.__getitem__, detector=detector)
    except ScanTooSmall as exc:   # whatever the options
        raise NsgenError(f"{args.h5}: {exc}") from None
    except ValueError as exc:
        a, v, c = shape
        raise NsgenError(f"detection parameters do not fit the scan ({a} angles x {v} rows x "
                         f"{c} columns): {exc}; change or leave out those options") from None


#: bytes of a mask or weights entry deflated per chunk (pieces compress in parallel)
DEFLATE_PIECE_BYTES = 32 * 2**20


@dataclass
class DeflateStage(Stage):
    """Deflate an archive entry kept in a scratch volume, in independent pieces (pigz style).

    The volume is stored angles first; a mask is bit-packed along columns (``n_cols`` set),
    weights are plain. Chunk ``i`` covers the angle planes ``[i * planes, (i + 1) * planes)``;
    its value is ``(compressed piece, CRC-32, length)`` of the entry's bytes for them (see
    :func:`nsgen.io.deflate.deflate_piece`).
    """

    spill: Spill
    planes: int = 1
    n_cols: int | None = None
    label: str = "compress"

    def chunks(self) -> list[Chunk]:
        return row_chunks(-(-self.spill.shape[0] // self.planes), 1)

    def work(self, chunk: Chunk, data: object) -> WorkResult:
        clock = StepClock()
        k0 = chunk.start * self.planes
        k1 = min(self.spill.shape[0], k0 + self.planes)
        stored = self.spill.read_rows(k0, k1)
        clock.lap("read")
        last = k1 == self.spill.shape[0]
        if self.n_cols is None:
            out, crc = deflate_piece(stored.data.cast("B"), last=last)
            clock.lap("deflate")
            return WorkResult((out, crc, stored.nbytes, clock.seconds))
        # a mask: stored as uint8 0/1, unpacked from the scratch's bits
        from nsgen.prep._stripe_jit import unpack_bits
        # (this worker's buffer, piece after piece: a new one faulted its pages in each time)
        mask = scratch.buffer("unpacked mask", (*stored.shape[:2], self.n_cols), np.uint8)
        unpack_bits(stored, mask)
        clock.lap("unpack")
        out, crc = deflate_piece(mask, last=last)
        clock.lap("deflate")
        return WorkResult((out, crc, mask.nbytes, clock.seconds))


def deflate_spill(run: StageRunner, spill: Spill, n_cols: int | None = None) -> Deflated:
    """Compress an archive entry kept in a scratch volume on ``run``'s workers."""
    shape = spill.shape if n_cols is None else (*spill.shape[:2], n_cols)
    itemsize = 1 if n_cols is not None else np.dtype(spill.dtype).itemsize
    plane = int(np.prod(shape[1:])) * itemsize
    stage = DeflateStage(spill=spill, planes=max(1, DEFLATE_PIECE_BYTES // plane),
                         n_cols=n_cols)
    # compute-only (no slot data): the slots only bound the pieces in flight
    pieces = run.run(stage, run.sizing(n_rows=len(stage.chunks()), row_bytes=1, work_factor=0))
    run.say(StepClock.describe(stage.label, [c for *_, c in pieces]))
    crc = pieces[0][1]
    for _, c, n, _ in pieces[1:]:
        crc = crc32_combine(crc, c, n)
    return Deflated(shape, "|u1" if n_cols is not None else np.dtype(spill.dtype).str,
                    tuple(p for p, *_ in pieces), crc, sum(n for _, _, n, _ in pieces))


def flag_bad_pixels(mask: Spill, bad: np.ndarray) -> None:
    """Set the ``bad`` pixels ``(rows, columns)`` (dead, saturated) in every angle of the
    bit-packed mask spill ``(angles, rows, ceil(columns / 8))``: no value of theirs is data.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = Spill.create(Path(d) / "m.bits", (3, 2, 1), "uint8")
    ...     bad = np.zeros((2, 5), bool); bad[1, 2] = True
    ...     flag_bad_pixels(m, bad)
    ...     np.unpackbits(m.read_rows(0, 3), axis=-1)[:, :, :5].sum(axis=0).tolist()
    [[0, 0, 0, 0, 0], [0, 0, 3, 0, 0]]
    """
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return
    bits = np.memmap(mask.path, dtype=np.uint8, mode="r+", offset=mask.offset, shape=mask.shape)
    packed = np.packbits(bad[rows], axis=-1)
    for k in range(mask.shape[0]):
        bits[k, rows] |= packed
    bits.flush()
    del bits


def process_age() -> float:
    """Seconds since this process started, to a clock tick (10 ms).

    ``psutil.Process().create_time()`` adds the start to the boot time, which Linux gives
    in whole seconds: differences from ``time.time()`` were up to a second off. Here both
    ends are on the clock since boot.

    >>> 0 < process_age() < 3600
    True
    """
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])   # field 22: starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):   # not Linux
        import psutil
        return time.time() - psutil.Process().create_time()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nsgen mask``."""
    from nsgen.io.mask_archive import append_mask, check_archive_writable, mask_key

    a = build_parser().parse_args(argv)
    from nsgen.cli import log_to_stderr
    log_to_stderr(a.verbose)   # run messages (the "nsgen" logger) on stderr, INFO with -v
    # every problem of the options in one line: those of the options alone, then (when
    # the scan opens) the detection parameters that do not fit it
    problems: list[str] = []
    detector, chunk_size, workers, memory = (attempt(problems, f) for f in (
        lambda: choose_detector(a.detector, larix_options_given(a)),
        lambda: auto_int("chunk-size", a.chunk_size, 1),
        lambda: auto_int("workers", a.workers, 1),
        lambda: memory_limit(a.memory_limit)))
    n_workers = workers or usable_cores()
    install_sigterm_handler()
    source = ScanSource(str(a.h5), ScanLayout(a.data_path, a.image_key_path, a.angles_path),
                        a.flats, a.darks)
    with source.open_new() as scan:
        n_angles, n_rows, n_cols = (int(x) for x in scan.shape)
        dtype = np.dtype(scan.dtype).str
    shape = (n_angles, n_rows, n_cols)
    params = None
    checked = detector or (a.detector if a.detector in DETECTORS else None)
    if checked is not None:   # a named detector's parameters, even if Larix's were refused
        params = attempt(problems, lambda: scan_params(a, shape, checked))
    if problems:
        raise NsgenError("; ".join(problems))
    assert params is not None and detector is not None
    key = a.file_name or mask_key(a.h5)
    archive = Path(a.archive)
    check_archive_writable(archive, key, a.weights, a.overwrite)
    from nsgen.modes.real import bad_pixels_of
    bad = bad_pixels_of(source)   # refuses flats that cannot normalise, before any work
    # dead and saturated pixels are stripes whatever the detector (flagged after it), and
    # saturated or constant flats are usable: one warning line for both, before any work
    said = ([f"{int(bad.dead.sum())} dead and {int(bad.saturated.sum())} saturated pixels: "
             f"flagged as stripes at every angle"] if bad.count else []) + (
        [bad.flats_problem] if bad.flats_problem else [])
    if said:
        print(f"nsgen: warning: {a.h5}: {'; '.join(said)}", file=sys.stderr, flush=True)
    log = Log(a.verbose, progress=False)
    log(f"[{key}] {a.h5}: {n_angles} angles x {n_rows} rows x {n_cols} columns -> "
        f"{archive}[{key}]; {n_workers} workers")
    work = archive.parent / f".{archive.name}.nsgen-work"
    work.mkdir(parents=True, exist_ok=True)
    log(f"[{key}] start-up: {process_age():.2f} s (process start to the first stage)")
    t0 = time.monotonic()
    try:
        # angles first like the archive entries (compressed plane range by plane range);
        # the mask bit-packed along columns (8x less scratch I/O)
        mask = Spill.create(work / "mask.bits", (n_angles, n_rows, -(-n_cols // 8)), "uint8")
        weights = (Spill.create(work / "weights.f32", shape, "float32")
                   if a.weights else None)
        # the robust detector's stages and kernels, loaded once in the forkserver (when
        # cached; the command line started it: nsgen.prestart.start_mask_early)
        with Engine(n_workers, mask_preload(detector)) as engine:
            run = StageRunner(engine, log, n_workers, chunk_size, memory, key)
            source = decompressed(run, source, shape, dtype, work)
            flags = detect_stripes(run, source, shape, dtype, params, work,
                                   mask_spill=mask, weights_spill=weights, detector=detector)
            if bad.count:   # dead and saturated pixels are stripes whatever the detector
                flag_bad_pixels(mask, bad.mask)
                flags = flags | bad.rows()[:, None]
            run.say(f"detection: {time.monotonic() - t0:.1f} s; stripes in "
                    f"{int(flags.sum())} of {n_rows} detector rows")
            t1 = time.monotonic()
            deflated = (deflate_spill(run, mask, n_cols),
                        None if weights is None else deflate_spill(run, weights))
            run.say(f"compression: {time.monotonic() - t1:.1f} s")
            t2 = time.monotonic()
        t3 = time.monotonic()
        append_mask(archive, key, deflated[0], weights=deflated[1],
                    overwrite=a.overwrite)
        log(f"[{key}] engine stop: {t3 - t2:.2f} s; archive write: "
            f"{time.monotonic() - t3:.2f} s")
    finally:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    print(f"nsgen mask: wrote {archive}[{key}]{' and its weights' if a.weights else ''}: "
          f"{n_angles} x {n_rows} x {n_cols} mask, stripes in {int(flags.sum())} of {n_rows} "
          f"rows; archive {archive.stat().st_size / 1e6:.1f} MB; {time.monotonic() - t0:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from nsgen.cli import main as cli_main
    sys.exit(cli_main(["mask", *sys.argv[1:]]))
