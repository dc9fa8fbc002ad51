"""Per-process work buffers (nsgen.engine.scratch) and their use by the engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from nsgen.engine import scratch
from nsgen.engine.pipeline import Engine, EngineError, Stage, WorkResult, row_chunks


@pytest.fixture(autouse=True)
def _clean():
    scratch.release()
    yield
    scratch.release()


def test_same_name_reuses_memory_and_grows():
    a = scratch.buffer("x", (4, 5), np.float32)
    assert a.shape == (4, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    b = scratch.buffer("x", (2, 10), np.float32)
    assert np.shares_memory(a, b)
    c = scratch.buffer("x", (100,), np.float64)  # larger: a new buffer
    assert not np.shares_memory(a, c) and c.nbytes == 800
    assert not np.shares_memory(scratch.buffer("y", (4, 5), np.float32), c)


def test_retired_buffers_serve_the_next_stage_then_trim_frees_the_rest():
    big = scratch.buffer("volume", (1000,), np.uint8)
    small = scratch.buffer("candidates", (100,), np.uint8)
    scratch.retire()
    # the smallest spare that fits is reused, under any name
    got = scratch.buffer("rows", (50,), np.uint8)
    assert np.shares_memory(got, small) and not np.shares_memory(got, big)
    got2 = scratch.buffer("other", (900,), np.uint8)
    assert np.shares_memory(got2, big)
    scratch.retire()
    scratch.trim()  # nothing reused: spares freed, a new request allocates
    fresh = scratch.buffer("rows", (50,), np.uint8)
    assert not np.shares_memory(fresh, got2) and not np.shares_memory(fresh, got)


def test_a_spare_much_larger_than_the_request_is_freed_not_reused():
    """A stage's memory is what its sizing counted: a previous stage's spare of more than
    _REUSE times a request does not serve it (and no spare is kept beside the new buffer)."""
    big = scratch.buffer("volume", (1000,), np.uint8)
    scratch.retire()
    small = scratch.buffer("rows", (1000 // (2 * scratch._REUSE),), np.uint8)
    assert not np.shares_memory(small, big) and scratch._SPARES == []


def test_a_request_no_spare_fits_frees_the_spares_first():
    scratch.buffer("a", (10,), np.uint8)
    scratch.retire()
    big = scratch.buffer("b", (1000,), np.uint8)
    assert big.nbytes == 1000 and scratch._SPARES == []


@dataclass
class Prepared(Stage):
    """Reports whether prepare() ran in the worker before the chunk, and buffer reuse."""

    n: int = 4
    fail: bool = False

    def chunks(self):
        return row_chunks(self.n, 1)

    def prepare(self):
        if self.fail:
            raise RuntimeError("cannot load the kernels")
        scratch.buffer("prepared", (1,), np.uint8)[0] = 7

    def work(self, chunk, data):
        mark = scratch.buffer("prepared", (1,), np.uint8)
        return WorkResult(int(mark[0]))


def test_prepare_runs_in_every_worker_before_work():
    with Engine(2) as engine:
        assert engine.run(Prepared(), 3) == [7, 7, 7, 7]


def test_prepare_failure_is_reported():
    with Engine(1) as engine, pytest.raises(EngineError, match="cannot load the kernels"):
        engine.run(Prepared(fail=True), 2)


def test_spill_write_band_fills_an_angles_first_volume(tmp_path):
    from nsgen.io.spill import Spill
    vol = np.random.default_rng(2).integers(0, 255, (5, 7, 3)).astype(np.uint8)
    s = Spill.create(tmp_path / "v.u8", vol.shape, "uint8")
    for start, stop in ((4, 7), (0, 1), (1, 4)):  # any order: disjoint bands
        s.write_band(start, np.ascontiguousarray(vol[:, start:stop].transpose(1, 0, 2)))
    assert np.array_equal(np.fromfile(s.path, np.uint8).reshape(vol.shape), vol)
    with pytest.raises(ValueError, match="does not fit"):
        s.write_band(6, vol[:, :2].transpose(1, 0, 2))
