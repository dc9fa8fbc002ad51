"""Two passes over the same row chunks of a scan, each chunk read once.

A paired or patch run that detects its stripes on the fly used to read the scan once for
the detector's first pass and once more for its own pass one (the bounds), each read a
disk read when the scan does not fit in the page cache. :class:`FusedStage` hands every
chunk the reader delivers to both stages' workers in turn; :class:`Alongside` is how a
mode asks the detector to take its pass along (:func:`nsgen.stages.robust.detect_robust`)
and gets the pass's per-chunk values back. The engine sees one stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nsgen.engine.pipeline import Chunk, Stage, WorkResult
from nsgen.engine.stage import ReadsThrough
from nsgen.stages.scan_stages import ScanStage

__all__ = ["Alongside", "FusedStage"]


@dataclass
class Alongside:
    """A pass over a scan's row chunks (``stage``; its ``chunk_rows`` is replaced by the
    pass it rides with) to run on the chunks another pass reads anyway.

    ``work_factor`` is the float32 copies of a row its worker holds (as for
    :func:`~nsgen.stages.scan_sizing.scan_sizing`); ``values`` are its chunks' results in
    order once it ran, None while it has not (then the mode runs it on its own).
    """

    stage: ScanStage
    work_factor: float
    values: list[Any] | None = field(default=None)


@dataclass
class FusedStage(ReadsThrough, Stage):
    """``first`` and ``then`` on the same chunks of one read: the reader reads as ``first``
    does (:class:`~nsgen.engine.stage.ReadsThrough`, early reads included), every worker
    runs ``first.work`` then ``then.work`` on the chunk's arrays (neither may change them)
    and returns the pair of their values.

    The two must chunk alike and read the same rows (no halo, or the same):

    >>> from nsgen.scan import ScanLayout
    >>> from nsgen.stages.scan_source import ScanSource
    >>> s = ScanStage(ScanSource("s.nxs", ScanLayout()), (10, 8, 4), "<u2", chunk_rows=3)
    >>> f = FusedStage(s, s)
    >>> [(c.start, c.stop) for c in f.chunks()], f.label
    ([(0, 3), (3, 6), (6, 8)], 'normalise + normalise')
    >>> FusedStage(s, ScanStage(s.source, s.shape, s.dtype, chunk_rows=4))
    Traceback (most recent call last):
    ...
    ValueError: fused passes must read the same chunks: rows [0, 3) and [0, 4)
    """

    first: ScanStage
    then: ScanStage
    label: str = ""

    def __post_init__(self) -> None:
        a, b = self.first.chunks(), self.then.chunks()
        for x, y in zip(a, b):
            if self.first.read_rows(x) != self.then.read_rows(y):
                raise ValueError(f"fused passes must read the same chunks: rows "
                                 f"[{x.start}, {x.stop}) and [{y.start}, {y.stop})")
        if len(a) != len(b):
            raise ValueError(f"fused passes must read the same chunks: {len(a)} and {len(b)}")
        if not self.label:
            self.label = f"{self.first.label} + {self.then.label}"

    def reads_as(self) -> ScanStage:
        return self.first

    def prepare(self) -> None:
        self.first.prepare()
        self.then.prepare()

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        a = self.first.work(chunk, data)
        b = self.then.work(chunk, data)
        return WorkResult((a.value, b.value), a.files + b.files, a.nbytes + b.nbytes,
                          {**a.checksums, **b.checksums})
