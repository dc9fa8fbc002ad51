"""The streaming engine, with real processes and real shared memory (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest

from helpers import HANG, wait_for
from nsgen.engine.pipeline import (SHM_PREFIX, UNGUARDED_SCRIPT, Engine, EngineError, Stage,
                                   WorkResult, row_chunks)
from nsgen.errors import NsgenError

SHM = Path("/dev/shm")


def own_segments(pid: int | None = None) -> list[str]:
    pid = os.getpid() if pid is None else pid
    return [p.name for p in SHM.iterdir() if p.name.startswith(f"{SHM_PREFIX}{pid}-")]


@dataclass
class RowSum(Stage):
    """Reader fills row r with r; worker returns per-row sums (and can misbehave)."""

    n_rows: int
    chunk_rows: int
    width: int = 50
    fail_row: int = -1
    kill_row: int = -1
    user_error_row: int = -1
    read_fail_row: int = -1
    block_from_row: int = -1
    log: str = ""
    sleep: float = 0.0

    def chunks(self):
        return row_chunks(self.n_rows, self.chunk_rows)

    def slot_spec(self, chunk):
        return (chunk.rows, self.width), "float64"

    def _log(self, what):
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{what}\n")

    def read(self, chunk, out):
        if chunk.start <= self.read_fail_row < chunk.stop:
            raise OSError("disk on fire")
        self._log(f"read {chunk.index}")
        out[:] = np.arange(chunk.start, chunk.stop, dtype=np.float64)[:, None]

    def work(self, chunk, data):
        rows = range(chunk.start, chunk.stop)
        if self.fail_row in rows:
            raise ValueError(f"bad value in row {self.fail_row}")
        if self.user_error_row in rows:
            raise NsgenError("sinogram has NaNs; fix the scan")
        if self.kill_row in rows:
            os.kill(os.getpid(), signal.SIGKILL)
        if 0 <= self.block_from_row < chunk.stop:
            time.sleep(HANG)        # a chunk the run must not wait for
        time.sleep(self.sleep)
        self._log(f"done {chunk.index}")
        return WorkResult(data.sum(axis=1).tolist(), files=chunk.rows, nbytes=data.nbytes)


def expected(n_rows: int, width: int = 50) -> list[float]:
    return [float(r * width) for r in range(n_rows)]


@pytest.fixture(scope="module")
def engine():
    with Engine(2) as e:
        yield e
    assert own_segments() == []


def test_row_chunks_cover_rows_once():
    for n, c in [(10, 3), (10, 10), (10, 20), (1, 1), (243, 243), (256, 7)]:
        chunks = row_chunks(n, c)
        rows = [r for ch in chunks for r in range(ch.start, ch.stop)]
        assert rows == list(range(n))
        assert all(1 <= ch.rows <= c for ch in chunks)
        assert [ch.index for ch in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize("chunk_rows,slots", [(1, 1), (3, 2), (7, 5), (100, 3)])
def test_results_in_chunk_order_for_any_chunking(engine, chunk_rows, slots):
    values = engine.run(RowSum(40, chunk_rows), slots)
    assert [x for v in values for x in v] == expected(40)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_independent_of_worker_count(workers):
    with Engine(workers) as e:
        values = e.run(RowSum(30, 4, sleep=0.001), 2)
    assert [x for v in values for x in v] == expected(30)


def test_progress_counts_files_and_bytes(engine):
    seen = []
    engine.run(RowSum(12, 5), 2, progress=lambda p: seen.append((p.chunks_done, p.files,
                                                                 p.nbytes)))
    assert seen[-1] == (3, 12, 12 * 50 * 8)
    assert [s[0] for s in seen] == [1, 2, 3]


def test_one_slot_means_one_chunk_in_flight(tmp_path):
    log = tmp_path / "events"
    with Engine(2) as e:
        e.run(RowSum(10, 2, log=str(log), sleep=0.02), slots=1)
    events = log.read_text().split()
    events = [f"{a} {b}" for a, b in zip(events[::2], events[1::2])]
    # with a single slot the reader can only fill chunk k+1 after chunk k was processed
    for k in range(4):
        assert events.index(f"read {k + 1}") > events.index(f"done {k}")


def test_worker_exception_stops_the_run_with_its_message(tmp_path):
    """The first error stops the run: the chunks still in work are abandoned (their
    workers killed), not waited for."""
    before = set(own_segments())
    log = tmp_path / "events"
    with pytest.raises(EngineError, match=r"worker \d \(rows 20-29\) failed: ValueError: bad "
                                          r"value in row 23"):
        with Engine(2) as e:
            e.run(RowSum(200, 10, fail_row=23, block_from_row=30, log=str(log)), 3)
    assert all(p.exitcode is not None for p in e._procs)
    assert "done 3" not in log.read_text().split("\n")      # rows 30-39 were never finished
    assert set(own_segments()) <= before


def test_user_error_in_worker_is_reraised_as_such():
    before = set(own_segments())
    with pytest.raises(NsgenError, match="sinogram has NaNs"):
        with Engine(2) as e:
            e.run(RowSum(20, 5, user_error_row=7), 2)
    assert set(own_segments()) <= before


def test_reader_exception_surfaces():
    before = set(own_segments())
    with pytest.raises(EngineError, match=r"reader \(rows 10-14\) failed: OSError: disk on fire"):
        with Engine(1) as e:
            e.run(RowSum(20, 5, read_fail_row=12), 2)
    assert set(own_segments()) <= before


@dataclass
class FrameSum(RowSum):
    """RowSum whose chunks are frames (as a decompression pass's are)."""

    unit: str = "frames"


def test_failures_name_the_chunk_in_its_stage_unit():
    with pytest.raises(EngineError, match=r"worker 1 \(frames 5-9\) failed: ValueError"):
        with Engine(1) as e:
            e.run(FrameSum(20, 5, fail_row=7), 2)
    with pytest.raises(EngineError, match=r"reader \(frames 10-14\) failed: OSError"):
        with Engine(1) as e:
            e.run(FrameSum(20, 5, read_fail_row=12), 2)


def test_killed_worker_is_reported_not_a_hang():
    before = set(own_segments())
    with pytest.raises(EngineError, match="killed by signal 9"):
        with Engine(2) as e:
            e.run(RowSum(50, 5, kill_row=17, block_from_row=25), 2)
    assert set(own_segments()) <= before


def test_engine_is_reusable_across_stages_of_different_sizes(engine):
    a = engine.run(RowSum(8, 3, width=10), 2)
    b = engine.run(RowSum(9, 2, width=1000), 3)
    assert [x for v in a for x in v] == expected(8, 10)
    assert [x for v in b for x in v] == expected(9, 1000)


@dataclass
class Prepared(RowSum):
    """RowSum whose workers log every stage they prepare; the first worker to prepare
    stage ``slow_tag`` stays in it until ``slow_until`` stages are done."""

    tag: int = 0
    slow_tag: int = -1
    slow_until: int = 0

    def prepare(self):
        self._log(f"prepare {self.tag}")
        if self.tag == self.slow_tag:
            try:
                os.close(os.open(f"{self.log}.slow", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            wait_for(lambda: Path(self.log).read_text().count("done") >= self.slow_until,
                     f"{self.slow_until} stages done by the other workers")


def test_a_worker_that_misses_whole_stages_skips_them(tmp_path):
    """The reader starts with the workers, so a busy worker may find the control messages
    of stages that the others finished meanwhile, their slots already released: it must
    skip them, never fail or mix stages up."""
    log = tmp_path / "log"
    with Engine(3) as e:
        for k in range(30):
            width = 10 + 30 * (k % 2) + k   # larger and smaller slots: new segments, reused ones
            # stage 3 has no rows, so the worker that stays in its prepare holds no chunk
            rows = 0 if k == 3 else 2
            got = e.run(Prepared(rows, 2, width=width, log=str(log), tag=k, slow_tag=3,
                                 slow_until=20), 1)
            assert [x for v in got for x in v] == expected(rows, width)
            if k == 3:
                wait_for(lambda: "prepare 3" in log.read_text(), "a worker prepared stage 3")
    lines = log.read_text().splitlines()
    assert sum(x.startswith("done") for x in lines) == 29
    prepared = [int(x.split()[1]) for x in lines if x.startswith("prepare")]
    assert set(prepared) == set(range(30))
    # the slow worker prepared at most stages 0-3 and 20-29: it skipped 4..19 at least
    assert 3 * 30 - len(prepared) >= 16


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_pipeline import RowSum
    from nsgen.engine.pipeline import Engine, install_sigterm_handler

    if __name__ == "__main__":
        install_sigterm_handler()
        with Engine(2) as e:
            e.run(RowSum(100000, 1, sleep=0.05, log={log!r}), 3)
""")


def descendants(pid: int) -> list[psutil.Process]:
    """Every process below ``pid``: the forkserver, the resource tracker, reader, workers."""
    return psutil.Process(pid).children(recursive=True)


def gone(procs: list[psutil.Process]) -> bool:
    """Whether every process of ``procs`` has exited (zombies count as exited)."""
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def _start_long_run(tmp_path: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """A run of a long stage, once its reader and both workers are at work; with them."""
    script = tmp_path / "long_run.py"
    log = tmp_path / "events"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), log=str(log)))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    # a chunk done: the reader and a worker run; 3 processes under the forkserver: all run
    wait_for(lambda: log.exists() and "done" in log.read_text(), "a chunk done", proc)
    wait_for(lambda: len(descendants(proc.pid)) >= 5, "reader, workers, forkserver and "
             "resource tracker started", proc)
    assert own_segments(proc.pid), "the run holds no slots"
    return proc, descendants(proc.pid)


def test_sigterm_stops_children_and_releases_memory(tmp_path):
    proc, children = _start_long_run(tmp_path)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=HANG)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    assert own_segments(proc.pid) == []          # released by the main process itself
    wait_for(lambda: gone(children), "every child exited")
    assert "bootstrapping" not in proc.stderr.read()


def test_kill_9_of_main_leaves_no_segments_or_orphans(tmp_path):
    """The children notice that the main process died and exit; then the resource tracker
    (the last to go) unlinks the segments: no sweep by a later run is needed."""
    proc, children = _start_long_run(tmp_path)
    proc.kill()
    proc.wait(timeout=HANG)
    wait_for(lambda: gone(children), "every child of the killed run exited")
    assert own_segments(proc.pid) == []


def test_script_without_main_guard_is_one_clear_error(tmp_path):
    """Children import the main script: unguarded, each would start nsgen again."""
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), log="")
                      .replace('if __name__ == "__main__":', "if True:"))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == f"nsgen.errors.NsgenError: {UNGUARDED_SCRIPT}"
    assert "bootstrapping" not in err
    assert own_segments(proc.pid) == []


@dataclass
class TwoArrays(Stage):
    """A slot holding two arrays of different dtypes."""

    n_rows: int = 9

    def chunks(self):
        return row_chunks(self.n_rows, 4)

    def slot_spec(self, chunk):
        return [((chunk.rows, 3), "uint16"), ((chunk.rows,), "float64")]

    def read(self, chunk, out):
        a, b = out
        a[:] = np.arange(chunk.start, chunk.stop)[:, None]
        b[:] = 0.5

    def work(self, chunk, data):
        a, b = data
        return WorkResult((a.sum(axis=1) + b).tolist())


def test_slots_can_hold_several_arrays(engine):
    values = engine.run(TwoArrays(), 2)
    assert [x for v in values for x in v] == [3 * r + 0.5 for r in range(9)]


def test_slots_are_reused_by_later_stages_that_fit():
    """...and only by stages of similar size: every process maps and faults in whole
    segments, so slots much larger than a stage asked for would hold memory its sizing
    did not count."""
    from nsgen.engine.pipeline import SLOT_REUSE

    before = set(own_segments())
    with Engine(2) as e:
        names = lambda: [seg.name for seg in e._segments]  # noqa: E731
        e.run(RowSum(40, 10, width=1000), 3)
        first = names()
        e.run(RowSum(40, 10, width=600), 3)       # smaller, same order: the same segments
        assert names() == first
        small = 1000 // (2 * SLOT_REUSE)
        assert e.run(RowSum(40, 10, width=small), 3) == [expected(40, small)[i:i + 10]
                                                         for i in range(0, 40, 10)]
        assert not set(names()) & set(first)      # much smaller: replaced
        first = names()
        e.run(RowSum(40, 20, width=1000), 3)      # larger: replaced
        assert names() != first and len(names()) == 2
        assert not set(first) & set(own_segments())
        values = e.run(RowSum(12, 4, width=7), 3)
    assert [x for v in values for x in v] == expected(12, 7)
    assert set(own_segments()) <= before


def test_stage_larger_than_free_shared_memory_is_a_clear_error(monkeypatch):
    """Slots that /dev/shm cannot hold stop the run before it starts, with the fix named
    (otherwise the reader would die of SIGBUS when it first writes a slot)."""
    real = os.statvfs

    def small_shm(path):
        st = real(path)
        if str(path) != "/dev/shm":
            return st
        return os.statvfs_result((st.f_bsize, 4096, st.f_blocks, 256, 256, st.f_files,
                                  st.f_ffree, st.f_favail, st.f_flag, st.f_namemax))

    before = set(own_segments())
    with Engine(1) as e:
        assert [x for v in e.run(RowSum(4, 2, width=10), 2) for x in v] == expected(4, 10)
        monkeypatch.setattr(os, "statvfs", small_shm)        # 1 MiB free from now on
        with pytest.raises(NsgenError) as err:
            e.run(RowSum(40, 20, width=10_000), 2)           # 2 slots of 1.6 MB
        message = str(err.value)
    assert "/dev/shm has 1 MiB free" in message and "--shm-size" in message
    assert "--memory-limit" in message and "\n" not in message
    assert set(own_segments()) <= before



CLEANUP_SCRIPT = textwrap.dedent("""
    import atexit, sys, threading
    cleaned = []   # (semaphore name, thread that unlinked it)

    def report():  # registered first, so it runs after multiprocessing's exit handler
        print(repr(cleaned))
    atexit.register(report)

    import gc
    from multiprocessing import synchronize
    cleanup = synchronize.SemLock._cleanup

    def recording_cleanup(name):
        cleaned.append((name, threading.current_thread().name))
        cleanup(name)
    synchronize.SemLock._cleanup = staticmethod(recording_cleanup)

    sys.path.insert(0, {tests!r})
    from test_pipeline import RowSum
    from nsgen.engine.pipeline import Engine, EngineError

    if __name__ == "__main__":
        e = Engine(1)
        e.start()
        try:
            e.run(RowSum(40, 5, {fault}), 2)
            e.close()
        except EngineError:
            pass
        del e
        gc.collect()
        for t in threading.enumerate():   # the queues' feeder threads end and drop their refs
            if t.name == "QueueFeederThread":
                t.join()
        gc.collect()
""")


@pytest.mark.parametrize("fault", ["kill_row=12", "read_fail_row=12", "sleep=0.0"])
def test_queue_semaphores_are_unlinked_by_the_main_thread(tmp_path, fault):
    """A semaphore unlinked on a queue's daemon feeder thread can be left registered when
    the interpreter stops that thread at exit: the resource tracker then prints "leaked
    semaphore" warnings after an nsgen error line (seen after a reader was killed)."""
    script = tmp_path / "cleanup.py"
    script.write_text(CLEANUP_SCRIPT.format(tests=str(Path(__file__).parent), fault=fault))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=HANG)
    assert proc.returncode == 0, proc.stderr
    cleaned = eval(proc.stdout.strip().splitlines()[-1])
    assert len(cleaned) >= 3 * 4          # 4 queues (data, free, results, one control) at least
    assert {thread for _, thread in cleaned} == {"MainThread"}, cleaned
    assert "resource_tracker" not in proc.stderr, proc.stderr



def test_two_engines_in_one_process_use_their_own_segments():
    """Engines count their stages from 1 each: segment names must still not collide (two
    runs from two threads of one program)."""
    flat = lambda values: [x for v in values for x in v]  # noqa: E731
    with Engine(1) as a, Engine(1) as b:
        assert flat(a.run(RowSum(8, 4), 2)) == expected(8)
        assert flat(b.run(RowSum(8, 4), 2)) == expected(8)   # stage 1 of each, both alive
        assert not {s.name for s in a._segments} & {s.name for s in b._segments}


@dataclass
class EarlyRowSum(RowSum):
    """RowSum whose first chunks the main process may read (logged as ``early k``) while
    the engine's processes start; the processes start once ``gate`` is set, which the
    early reads do after ``open_after`` chunks (or on a failure)."""

    open_after: int = 2

    def early_reader(self):
        from contextlib import contextmanager

        @contextmanager
        def reader():
            reads = []

            def read(chunk, out):
                try:
                    if chunk.start <= self.read_fail_row < chunk.stop:
                        raise OSError("disk on fire")
                    out[:] = np.arange(chunk.start, chunk.stop, dtype=np.float64)[:, None]
                    self._log(f"early {chunk.index}")
                finally:
                    reads.append(chunk.index)
                    if len(reads) >= self.open_after:
                        GATE.set()
            try:
                yield read
            finally:
                GATE.set()
        return reader()


GATE = __import__("threading").Event()


@pytest.fixture
def gated(monkeypatch):
    """The engine's processes start only once GATE is set (by the stage's early reads)."""
    GATE.clear()
    start = Engine._start_processes

    def wait_then_start(self):
        GATE.wait(timeout=HANG)
        start(self)
    monkeypatch.setattr(Engine, "_start_processes", wait_then_start)


def test_main_process_reads_the_first_chunks_while_processes_start(tmp_path, gated):
    """Every chunk is read once: the first ones by the main process (while the processes
    start, at most one per slot), the rest by the reader, which starts after them."""
    log = tmp_path / "events"
    with Engine(2) as e:
        values = e.run(EarlyRowSum(20, 3, log=str(log)), 2)
        again = e.run(EarlyRowSum(20, 3, log=str(log)), 2)   # processes up: no early reads
    assert [x for v in values for x in v] == expected(20)
    assert again == values
    events = log.read_text().split("\n")
    reads = [e for e in events if e.startswith(("read", "early"))]
    first, second = reads[:7], reads[7:]
    assert first == ["early 0", "early 1"] + [f"read {k}" for k in range(2, 7)]
    assert second == [f"read {k}" for k in range(7)]


def test_a_failed_early_read_is_reported_as_the_readers(gated):
    before = set(own_segments())
    with pytest.raises(EngineError, match=r"reader \(rows 0-4\) failed: OSError: disk on fire"):
        with Engine(1) as e:
            e.run(EarlyRowSum(20, 5, read_fail_row=1), 2)
    assert set(own_segments()) <= before
