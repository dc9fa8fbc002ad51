"""A once-decompressed copy of a compressed scan, for passes that read it in row chunks.

HDF5 decompresses whole chunks, and detector frames are usually compressed a frame (or
many rows) per chunk: a pass over row chunks would decompress each frame once per row
chunk. :func:`decompressed` copies such a scan's frames, each decompressed once, into an
uncompressed file that the passes then read instead (same frames, image key, flats and
darks, so the same output bytes).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nsgen.engine.pipeline import Chunk, SlotSpec, Stage, WorkResult, row_chunks
from nsgen.engine.sizing import TARGET_SLOT_BYTES
from nsgen.errors import NsgenError
from nsgen.io.spill import Spill
from nsgen.runner import StageRunner
from nsgen.scan import create_frame_copy
from nsgen.stages.scan_sizing import row_sizing, scan_sizing
from nsgen.stages.scan_source import ScanSource

__all__ = ["DecompressStage", "decompressed"]


@dataclass
class DecompressStage(Stage):
    """Copy a compressed scan's frames, whole, into an uncompressed file (see
    :func:`decompressed`): the reader decompresses blocks of frames in file order, each
    chunk once; workers write them at their place in the copy."""

    source: ScanSource
    frames: Spill               # every frame of the copy: (frames, rows, columns)
    frames_per_chunk: int
    label: str = "decompress"
    unit: str = "frames"

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.frames.shape[0], self.frames_per_chunk)

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        return (chunk.rows, *self.frames.shape[1:]), self.frames.dtype

    def read(self, chunk: Chunk, out: np.ndarray) -> None:
        self.source.open().read_frames(slice(chunk.start, chunk.stop), out)

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        self.frames.write_rows(chunk.start, data)
        return WorkResult(None, nbytes=data.nbytes)


def decompressed(run: StageRunner, source: ScanSource, shape: tuple[int, int, int], dtype: str,
                 work: Path) -> ScanSource:
    """``source``, or an uncompressed copy of it when reading it in row chunks would
    decompress every frame many times.

    When the scan's compressed chunks span more rows than a chunk of the passes will
    hold, its frames are first copied, decompressed once each, into ``work/frames.h5``
    (on ``run``'s engine: the reader decompresses, workers write); the passes then read the copy
    through the direct row reader. The copy reads exactly as the original (same frames,
    image key, flats and darks), so the outputs are the same bytes. A finished copy is kept
    (renamed into place when complete) and reused by a rerun.

    Raises
    ------
    NsgenError
        When ``work``'s file system lacks the space for the copy.
    """
    with source.open_new() as scan:
        span = scan.compressed_row_span
        rows = scan_sizing(run, shape, dtype, 4).chunk_rows
        if span is None or span <= rows:
            return source
        n_frames = scan.n_frames
        frame_bytes = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        target = work / "frames.h5"
        copy = replace(source, copy=str(target))
        if target.exists():
            return copy
        work.mkdir(parents=True, exist_ok=True)
        need = n_frames * frame_bytes
        free = shutil.disk_usage(work).free
        if need > free:
            raise NsgenError(
                f"{source.path} is compressed in chunks of {span} detector rows; reading it "
                f"in chunks of {rows} rows needs an uncompressed copy of {need / 2**30:.1f} GiB "
                f"but {work} has {free / 2**30:.1f} GiB free; free space there, or decompress "
                f"the file first (h5repack -f NONE in.nxs out.nxs)")
        tmp = work / "frames.h5.partial"
        offset = create_frame_copy(tmp, scan)
    run.say(f"{source.path}: compressed in chunks of {span} rows; decompressing "
            f"{n_frames} frames once into {target}")
    sizing = row_sizing(run, shape[1], row_bytes=frame_bytes, work_factor=0.0)
    block = max(1, min(n_frames, TARGET_SLOT_BYTES // max(1, frame_bytes)))
    frames = Spill(tmp, (n_frames, *shape[1:]), np.dtype(dtype).str, offset)
    run.run(DecompressStage(source, frames, block), replace(sizing, chunk_rows=block))
    os.replace(tmp, target)
    return copy
