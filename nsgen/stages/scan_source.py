"""How a process opens a scan: a picklable description, a per-process open-scan cache and
the read-ahead hint thread of the reader process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from nsgen.config import Config
from nsgen.scan import Scan, ScanLayout, open_scan

__all__ = ["HintThread", "RowHints", "ScanSource"]


@dataclass(frozen=True)
class ScanSource:
    """How to open one scan (picklable; each process opens its own handle).

    Examples
    --------
    >>> from nsgen.scan import ScanLayout
    >>> s = ScanSource("1000.nxs", ScanLayout())
    >>> s.path, s.copy is None
    ('1000.nxs', True)
    """

    path: str
    layout: ScanLayout
    flats: str | None = None
    darks: str | None = None
    #: an uncompressed copy of the scan's frames to read instead
    #: (:func:`nsgen.stages.decompress.decompressed`)
    copy: str | None = None
    #: ``(rows, columns)`` bool: the scan's dead and saturated pixels
    #: (:func:`nsgen.modes.real.bad_pixels_of`), left out of the bounds; None: none
    bad: np.ndarray | None = field(default=None, hash=False, compare=False)

    @classmethod
    def of(cls, config: Config, path: Path) -> "ScanSource":
        """The scan at ``path`` read with the layout and flat/dark files of ``config``."""
        return cls(str(path), ScanLayout(config.data_path, config.image_key_path,
                                         config.angles_path),
                   None if config.flats is None else str(config.flats),
                   None if config.darks is None else str(config.darks))

    def open_new(self) -> Scan:
        """A newly opened scan (close it)."""
        if self.copy is not None:
            return open_scan(self.copy, ScanLayout(), self.flats, self.darks)
        return open_scan(self.path, self.layout, self.flats, self.darks)

    def open(self) -> Scan:
        """An open scan, cached per process (the reader keeps its handle).

        Opening another source closes the one cached before.
        """
        scan = _OPEN.get(self)
        if scan is None:
            for old in _OPEN.values():
                old.close()
            _OPEN.clear()
            scan = _OPEN[self] = self.open_new()
        return scan


_OPEN: dict[ScanSource, Scan] = {}


class RowHints(Protocol):
    """Something that asks the disk for detector rows of projections ahead of reading."""

    def advise_projections(self, rows: slice) -> None:
        """Ask for the projections' detector ``rows``."""


class HintThread:
    """``advise_projections`` of an open scan, carried out in order on one background thread
    of this process, each request waiting for the previous one to arrive: asking the
    kernel for a batch of rows blocks while it queues the reads (~0.3 s per batch),
    which the reader must not wait for, and two batches in flight at once arrive
    interleaved, both late."""

    _pool: ThreadPoolExecutor | None = None

    def __init__(self, scan: Scan) -> None:
        self.scan = scan

    @classmethod
    def of(cls, scan: Scan) -> "HintThread":
        """Hints for ``scan`` on this process's hint thread (started on first use)."""
        if cls._pool is None:
            cls._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nsgen-hints")
        return cls(scan)

    def advise_projections(self, rows: slice) -> None:
        """Ask for ``rows`` once the rows asked for before have arrived."""
        assert self._pool is not None
        self._pool.submit(self.scan.advise_projections, rows, True)
