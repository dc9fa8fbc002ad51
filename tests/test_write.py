"""nsgen.stages.write: images made on a thread reach the writer in order (a mode may wait for
the writer to be done with them); failures of either side end the chunk with their own error
and leave no thread behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from nsgen.engine.pipeline import Chunk
from nsgen.stages.write import IMAGES_AHEAD, WriteStage, Written


class Rows:
    """A row source whose rows are the slot's data itself."""

    label = "rows"

    def values(self, chunk, data):
        return data


class Images:
    """One image per row (``fail_at``: raise instead of making that row's image)."""

    def __init__(self, fail_at: int = -1) -> None:
        self.fail_at = fail_at

    def __call__(self, chunk, rows):
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            if v == self.fail_at:
                raise ValueError(f"cannot make image {v}")
            yield f"img{v:03d}.tif", rows[k].astype(np.uint16)


class Writer:
    """Records what it writes (``fail_after``: disk full after that many files)."""

    def __init__(self, fail_after: int = -1) -> None:
        self.fail_after = fail_after
        self.written: list[tuple[str, int]] = []

    def write(self, items):
        for path, image in items:
            if len(self.written) == self.fail_after:
                raise OSError("disk full")
            self.written.append((path, int(image[0])))
        return len(self.written), 2 * len(self.written), {p: "0" for p, _ in self.written}


def rows(n: int) -> np.ndarray:
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)


def test_images_reach_the_writer_in_order():
    writer = Writer()
    n = 5 * IMAGES_AHEAD
    res = WriteStage(Rows(), Images(), writer).work(Chunk(0, 0, n), rows(n))
    assert writer.written == [(f"img{v:03d}.tif", v) for v in range(n)]
    assert (res.files, res.nbytes) == (n, 2 * n)
    assert list(res.value) == [f"img{v:03d}.tif" for v in range(n)]


@pytest.mark.parametrize("images, writer, error", [
    (Images(fail_at=7), Writer(), ValueError),        # the images hook fails
    (Images(), Writer(fail_after=2), OSError),        # the writer fails (maker far ahead)
])
def test_a_failure_is_raised_and_the_maker_thread_ends(images, writer, error):
    before = threading.active_count()
    with pytest.raises(error):
        WriteStage(Rows(), images, writer).work(Chunk(0, 0, 40), rows(40))
    assert threading.active_count() == before


def test_a_range_used_given_with_an_image_is_recorded_as_given():
    def images(chunk, rows):
        yield "a.tif", np.array([0, 13107], np.uint16)          # measured: 0.2
        yield "b.tif", np.array([0, 13107], np.uint16), 0.5     # given
    writer = Writer()
    res = WriteStage(Rows(), images, writer).work(Chunk(0, 0, 1), rows(1))
    assert res.value == {"a.tif": 0.2, "b.tif": 0.5}
    assert [p for p, _ in writer.written] == ["a.tif", "b.tif"]


def test_a_mode_that_waits_for_the_writer_may_reuse_an_image_buffer():
    class Releasing(Writer):
        releases_images = True

    def images(chunk, rows):
        buffer = np.zeros(3, np.uint16)
        for v in range(5 * IMAGES_AHEAD):
            if v:
                yield Written(v)           # the writer is done with the last image
            buffer[0] = v
            yield f"img{v:03d}.tif", buffer
    writer = Releasing()
    WriteStage(Rows(), images, writer).work(Chunk(0, 0, 1), rows(1))
    assert writer.written == [(f"img{v:03d}.tif", v) for v in range(5 * IMAGES_AHEAD)]
