"""The one write stage: a mode names a chunk's images, an output backend writes them.

A mode's pass two is ``WriteStage(source, images, writer)``:

* ``source`` - the stage whose reader delivers the chunk's data and whose
  :meth:`values` turns it into the rows the images are made of (a scratch volume's rows,
  :class:`~nsgen.stages.spill.SpillStage`, or a scan's normalised sinograms,
  :class:`~nsgen.stages.scan_stages.ScanStage`);
* ``images`` - the mode's hook :class:`ChunkImages`: ``(path, uint16 image)`` of every
  output of the chunk, paths relative to the dataset root (as in the manifest);
* ``writer`` - the output backend :class:`ImageWriter` (:class:`~nsgen.io.tiff.TiffWriter`:
  one 16-bit TIFF per path).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nsgen.engine import profile
from nsgen.engine.pipeline import Chunk, Stage, WorkResult
from nsgen.engine.stage import ChunkReader, ReadsThrough

__all__ = ["IMAGES_AHEAD", "ChunkImages", "ImageWriter", "RowSource", "Written", "WriteStage",
           "range_of", "range_used", "releases_images"]

#: images a write stage's worker makes ahead of the one being written
IMAGES_AHEAD = 4

#: ``(path relative to the dataset root, uint16 image)``
Image = tuple[str, np.ndarray]
#: an :data:`Image` with its :func:`range_used`, when the mode knows it already
UsedImage = tuple[str, np.ndarray, float]


@dataclass(frozen=True)
class Written:
    """Yielded by a mode's :class:`ChunkImages` between its images: wait until the writer
    is done with the first ``count`` images of the chunk, so that their buffers may be
    used again. Only for writers whose ``releases_images`` is true (they keep no image
    once they ask for the next, as :class:`~nsgen.io.tiff.TiffWriter`)."""

    count: int


class ImageWriter(Protocol):
    """An output backend: writes images, each whole or not at all. One that keeps no
    image once it asks for the next has a true ``releases_images`` (:class:`Written`)."""

    def write(self, items: Iterable[Image]) -> tuple[int, int, dict[str, str]]:
        """Write every ``(path, image)``; return files and bytes written and a checksum
        of each path's pixels (recorded in the manifest, verified by ``check --deep``)."""


def releases_images(writer: ImageWriter) -> bool:
    """Whether ``writer`` keeps no image once it asks for the next (a mode may then yield
    :class:`Written` and use the image's buffer again)."""
    return bool(getattr(writer, "releases_images", False))


class ChunkImages(Protocol):
    """A mode's hook: the images of one chunk of rows (picklable: it goes to the workers)."""

    def __call__(self, chunk: Chunk, rows: Any) -> Iterable[Image | UsedImage | Written]:
        """``(path, uint16 image)`` of every output made from ``rows`` of ``chunk`` (what
        the source's :meth:`RowSource.values` made: an array of rows, or what the mode's
        own source delivers), or
        ``(path, uint16 image, range_used(image))``; between them, a :class:`Written` to
        wait for the writer."""


class RowSource(ChunkReader, Protocol):
    """A stage whose reader delivers a chunk's data and whose :meth:`values` makes rows."""

    label: str

    def values(self, chunk: Chunk, data: Any) -> Any:
        """The rows of ``chunk`` from the data the reader delivered (as the mode's
        :class:`ChunkImages` takes them)."""


@dataclass
class WriteStage(ReadsThrough, Stage):
    """Pass two of every mode: read through ``source``, make images, write them.

    Parameters
    ----------
    source : RowSource
        Delivers each chunk's rows (its reader, early reads, read-ahead and worker
        preparation are used: :class:`~nsgen.engine.stage.ReadsThrough`).
    images : ChunkImages
        Names and makes the chunk's images.
    writer : ImageWriter
        Writes them; files and bytes written feed the progress bar.
    """

    source: RowSource
    images: ChunkImages
    writer: ImageWriter
    label: str = "write"

    def reads_as(self) -> RowSource:
        return self.source

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        """Write the chunk's images; its value is ``{path: fraction of 0..65535 used}``.

        The images are made on a thread, at most :data:`IMAGES_AHEAD` ahead of the writer,
        so that making the next images overlaps writing the last ones (file writes that
        wait for the disk, once the page cache holds many dirty pages, release the GIL, as
        the compiled kernels do). The writer receives them in order: the same bytes. A
        :class:`Written` from the mode holds the maker until the writer is done with that
        many images.
        """
        rows = self.source.values(chunk, data)
        used: dict[str, float] = {}
        ahead: queue.Queue[Any] = queue.Queue(maxsize=IMAGES_AHEAD)
        stop = threading.Event()
        done = threading.Condition()
        released = [0]      # images the writer is done with (it asked for the next)
        releases = releases_images(self.writer)

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        def wait(fence: Written) -> bool:
            if not releases:
                raise TypeError(f"{type(self.writer).__name__} keeps its images: "
                                f"a mode cannot wait for it to release them")
            with done:
                while released[0] < fence.count and not stop.is_set():
                    done.wait(0.1)
            return not stop.is_set()

        def make() -> None:
            try:
                with profile.phase("images"):
                    for item in self.images(chunk, rows):
                        if isinstance(item, Written):
                            if not wait(item):
                                return
                            continue
                        path, image = item[0], item[1]
                        used[path] = item[2] if len(item) == 3 else range_used(image)
                        if not put((path, image)):
                            return
            except BaseException as exc:  # noqa: BLE001 - re-raised by the writer's side
                put(exc)
                return
            put(None)

        def made() -> Iterable[Image]:
            while True:
                item = ahead.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                with done:
                    released[0] += 1
                    done.notify()

        maker = threading.Thread(target=make, name="nsgen-images", daemon=True)
        maker.start()
        try:
            with profile.phase("encode+write files"):
                files, nbytes, checksums = self.writer.write(made())
        finally:
            stop.set()        # a writer that failed: the maker gives up at its next image
            maker.join()
        return WorkResult(used, files, nbytes, checksums)


def range_used(image: np.ndarray) -> float:
    """Fraction of the 16-bit range an image uses: ``(max - min) / 65535``, 6 decimals.

    Examples
    --------
    >>> range_used(np.array([[100, 13207]], np.uint16))   # 13107 = 65535 / 5
    0.2
    """
    return range_of(int(image.min()), int(image.max())) if image.size else 0.0


def range_of(low: int, high: int) -> float:
    """:func:`range_used` of an image whose least and greatest values are ``low`` and
    ``high``.

    Examples
    --------
    >>> range_of(100, 13207)
    0.2
    """
    return round((high - low) / 65535, 6)
