"""Streaming engine: reader process -> shared-memory slots -> worker processes.

The engine knows nothing about tomography. A :class:`Stage` describes one pass
over the rows of a volume: which chunks of rows there are, what the reader puts
into a slot for a chunk (:meth:`Stage.read`, run in the reader process) and what a
worker does with it (:meth:`Stage.work`, run in a worker process). The engine

* keeps one reader and ``workers`` worker processes alive for the whole run
  (forkserver start: nothing of the main process's state is inherited);
* allocates, per stage, a fixed pool of ``multiprocessing.shared_memory`` slots;
  the reader blocks while every slot is in use, so memory is bounded by
  ``slots x slot size`` whatever the size of the volume;
* while its processes start (the forkserver's preload: ~1 s), lets the main process read
  a stage's first chunks into the free slots, where the stage allows it
  (:meth:`Stage.early_reader`): the workers find them waiting when they start;
* returns the workers' results in chunk order, so reductions are independent of
  the order in which chunks finished;
* stops promptly on the first error of any process (its message is re-raised in
  the main process) or on the death of any process, and always releases shared
  memory (also on Ctrl-C and SIGTERM; after ``kill -9`` of the main process the
  children notice before their next chunk and exit, and multiprocessing's resource
  tracker, the last process of the run, unlinks the segments; stale segments of a run
  whose tracker was killed too are swept at the next start).

Modules: :mod:`~nsgen.engine.stage` (what a pass is), :mod:`~nsgen.engine.shm` (the
segments), :mod:`~nsgen.engine.children` (the reader's and workers' mains) and this one (the
:class:`Engine` of the main process); this module re-exports what callers use.
"""

from __future__ import annotations

import multiprocessing as mp
import itertools
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any, Callable, Sequence

from nsgen.engine import profile
from nsgen.engine.children import POLL, describe, reader_main, where, worker_main
from nsgen.engine.forkserver import forkserver_preload
from nsgen.engine.shm import SHM_PREFIX, check_shm_space, sweep_stale_segments
from nsgen.engine.stage import (Chunk, EngineError, SlotSpec, Stage, WorkResult, row_chunks,
                                slot_bytes, slot_views, tapered_chunks)
from nsgen.errors import NsgenError
from nsgen.mainscript import UNGUARDED_EXIT, UNGUARDED_SCRIPT, check_main_importable


#: numbers the process's segments (an engine's stage ids alone repeat across engines)
_SEGMENT_SERIAL = itertools.count()
#: segments are reused by a later stage while they hold at most this many times its slots' bytes
SLOT_REUSE = 2


def _quietly(fn: Callable[[], None]) -> None:
    """``fn()``, ignoring any error (for hints that cannot fail a run)."""
    try:
        fn()
    except Exception:  # noqa: BLE001 - a hint only
        pass


#: queues of engines stopped by a failure, kept until the process exits (see _close_queues)
_ABANDONED_QUEUES: list[Any] = []


def _close_queues(queues: Sequence[Any], clean: bool) -> None:
    """Close the main process's ends of the engine's queues.

    Each queue's semaphores are unlinked, and unregistered from multiprocessing's resource
    tracker, when the queue is garbage collected; if the last reference is dropped by the
    queue's daemon feeder thread, the interpreter can stop that thread between the two and
    the tracker then warns of a "leaked semaphore" on stderr. After a clean stop every
    child has read everything, so the feeders end at once and are joined here; after a
    failure a feeder may be blocked on a full pipe that no child reads any more, so it is
    not joined and the queue is kept alive until exit, when multiprocessing's exit handler
    cleans it up on the main thread.
    """
    for q in queues:
        if not clean:
            q.cancel_join_thread()
        q.close()
        if clean:
            q.join_thread()
    if not clean:
        _ABANDONED_QUEUES.extend(queues)



@dataclass
class Progress:
    """Running totals reported to a progress callback."""

    chunks_done: int = 0
    chunks_total: int = 0
    files: int = 0
    nbytes: int = 0
    started: float = field(default_factory=time.monotonic)


ProgressCallback = Callable[[Progress], None]


class Engine:
    """Reader + worker processes for a whole run (use as a context manager).

    Parameters
    ----------
    workers : int
        Number of worker processes (>= 1).
    preload : sequence of str
        Modules the processes import before they start (in the forkserver, once, shared
        by every child), beside the engine's own: what the run's stages need. A mode
        module (``nsgen.modes.<mode>``) brings its ``ENGINE_PRELOAD`` along
        (:mod:`nsgen.engine.preload`).
    """

    def __init__(self, workers: int, preload: Sequence[str] = ()) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.preload = list(preload)
        self._ctx = mp.get_context("forkserver")
        self._procs: list[Any] = []
        self._controls: list[Any] = []
        self._segments: list[shared_memory.SharedMemory] = []
        self._stage_counter = 0
        self._closed = False
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None
        #: ``WorkResult.checksums`` of every chunk of the last :meth:`run`
        self.checksums: dict[str, str] = {}

    # lifecycle -------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(abort=exc_type is not None)

    def start(self) -> None:
        """Start the reader and the workers (once: a started engine is left as it is)."""
        if self._starter is not None:
            return
        check_main_importable()   # stdin script: one clear error; a child importing an unguarded script: ends here
        sweep_stale_segments()
        ctx = self._ctx
        try:
            # what every child needs, and the ``preload`` of the run: the forkserver
            # imports them serially before the first child starts (SciPy alone took
            # 0.3 s), once for all children; each worker imports the rest of what its
            # stages need in parallel. Only the process's first engine sets them (the
            # forkserver lives as long as the process).
            # (forkserver_preload: nsgen.engine.preload imports what the modes among them
            # list in ENGINE_PRELOAD; nsgen.engine.fastexit last: the forkserver ends without
            # its teardown; the command line may have started it already with the same list:
            # nsgen.prestart)
            ctx.set_forkserver_preload(forkserver_preload(self.preload))
        except Exception:  # pragma: no cover - preload is an optimisation only
            pass
        self._data = ctx.Queue()
        self._free = ctx.Queue()
        self._results = ctx.Queue()
        rc = ctx.Queue()
        self._controls.append(rc)
        reader = ctx.Process(target=reader_main, args=(rc, self._data, self._free,
                                                        self._results),
                             name="nsgen-reader", daemon=True)
        self._procs.append(reader)
        for i in range(self.workers):
            wc = ctx.Queue()
            self._controls.append(wc)
            self._procs.append(ctx.Process(target=worker_main,
                                           args=(i + 1, wc, self._data, self._free,
                                                 self._results),
                                           name=f"nsgen-worker-{i + 1}", daemon=True))
        # The first start waits while the forkserver starts and imports its preloads
        # (~0.4 s): start the processes on a thread, so that the caller gets on with
        # submitting its first stage (whose prefetch begins the input meanwhile).
        self._starter = threading.Thread(target=self._start_processes, daemon=True,
                                         name="nsgen-start")
        self._starter.start()

    def _start_processes(self) -> None:
        try:
            for p in self._procs:
                p.start()
        except BaseException as exc:  # noqa: BLE001 - reported by _check_alive
            self._start_error = exc

    def close(self, abort: bool = False) -> None:
        """Stop the processes and release every shared-memory segment."""
        if self._closed:
            return
        self._closed = True
        clean = False
        try:
            if self._starter is not None:
                self._starter.join()
            if not abort:
                for c in self._controls:
                    c.put(("stop",))
                for _ in range(self.workers):
                    self._data.put(("stop",))
            started = [p for p in self._procs if p.pid is not None]
            if not abort:
                deadline = time.monotonic() + 5
                for p in started:
                    p.join(timeout=max(0.0, deadline - time.monotonic()))
            for p in started:
                if p.is_alive():
                    p.kill()
            for p in started:
                p.join(timeout=5)
            clean = not abort and all(p.exitcode == 0 for p in started)
        finally:
            self._release()
            if hasattr(self, "_data"):
                _close_queues([self._data, self._free, self._results, *self._controls],
                              clean=clean)

    def _release(self) -> None:
        for seg in self._segments:
            try:
                seg.close()
            except Exception:  # pragma: no cover
                pass
            try:
                seg.unlink()
            except FileNotFoundError:
                pass
        self._segments = []

    # running ---------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._start_error is not None:
            raise EngineError(f"cannot start the reader and worker processes: "
                              f"{describe(self._start_error)}")
        for p in self._procs:
            if p.exitcode == UNGUARDED_EXIT:
                raise NsgenError(UNGUARDED_SCRIPT)
            if p.exitcode is not None:
                how = (f"was killed by signal {-p.exitcode}" if p.exitcode < 0
                       else f"exited with status {p.exitcode}")
                raise EngineError(f"{p.name} {how}; the run was stopped (rerun to resume)")

    def _wait(self) -> tuple:
        while True:
            try:
                return self._results.get(timeout=POLL)
            except queue.Empty:
                self._check_alive()

    def _raise(self, msg: tuple) -> None:
        _, who, exc, text, tb = msg
        if isinstance(exc, NsgenError):
            raise exc
        err = EngineError(f"{who} failed: {text}")
        err.remote_traceback = tb  # type: ignore[attr-defined]
        raise err

    def run(self, stage: Stage, slots: int,
            progress: ProgressCallback | None = None) -> list[Any]:
        """Run one stage to completion.

        Parameters
        ----------
        stage : Stage
            The pass to run.
        slots : int
            Number of shared-memory slots (>= 1): the bound on data in flight.
        progress : callable, optional
            Called with a :class:`Progress` after every finished chunk.

        Returns
        -------
        list
            ``WorkResult.value`` of every chunk, in chunk order.
        """
        if self._closed:
            raise RuntimeError("engine is closed")
        t0 = time.perf_counter()
        chunks = list(stage.chunks())
        self._stage_counter += 1
        sid = self._stage_counter
        size = max([1] + [slot_bytes(stage.slot_spec(c)) for c in chunks])
        n_slots = max(1, min(slots, len(chunks) or 1))
        names = self._slots(n_slots, size, sid)
        try:
            threading.Thread(target=_quietly, args=(stage.prefetch,), daemon=True,
                             name="nsgen-prefetch").start()
            # while the processes start, the main process reads the first chunks
            first = self._read_early(stage, sid, chunks, n_slots)
            # the reader starts at once: the workers load their stage (and run its
            # prepare) while the first chunks are read
            for k in range(first, n_slots):
                self._free.put(k)
            for c in self._controls:
                c.put(("stage", sid, stage, names, first))
            values: dict[int, Any] = {}
            self.checksums = {}
            state = Progress(chunks_total=len(chunks))
            while len(values) < len(chunks):
                msg = self._wait()
                if msg[0] == "error":
                    self._raise(msg)
                if msg[0] != "done" or msg[1] != sid:
                    continue
                res: WorkResult = msg[3]
                values[msg[2]] = res.value
                self.checksums.update(res.checksums)
                state.chunks_done += 1
                state.files += res.files
                state.nbytes += res.nbytes
                if progress is not None:
                    progress(state)
            # every slot comes back before the next stage may reuse the queue
            for _ in range(n_slots):
                while True:
                    try:
                        self._free.get(timeout=POLL)
                        break
                    except queue.Empty:
                        self._check_alive()
        except BaseException:
            self.close(abort=True)
            raise
        profile.add("wall", time.perf_counter() - t0)
        profile.flush("main", stage.label)
        return [values[c.index] for c in chunks]

    def _read_early(self, stage: Stage, sid: int, chunks: list[Chunk], n_slots: int) -> int:
        """Fill slots ``0, 1, ...`` with chunks ``0, 1, ...`` (:meth:`Stage.early_reader`)
        while the processes are still starting (the forkserver imports the run's preload:
        ~1 s), at most every slot; returns how many chunks were read. A failure is reported
        as the reader's would be."""
        if self._starter is None or not self._starter.is_alive():
            return 0
        first = 0
        with stage.early_reader() as read:
            while (read is not None and first < n_slots and first < len(chunks)
                   and self._starter.is_alive()):
                chunk = chunks[first]
                arr = slot_views(self._segments[first].buf, stage.slot_spec(chunk))
                try:
                    with profile.phase("early read"):
                        read(chunk, arr)
                except NsgenError as exc:
                    raise NsgenError(f"reading {where(stage, chunk)}: {exc}") from exc
                except Exception as exc:
                    err = EngineError(f"reader ({where(stage, chunk)}) failed: "
                                      f"{describe(exc)}")
                    err.remote_traceback = traceback.format_exc()  # type: ignore[attr-defined]
                    raise err from exc
                del arr
                self._data.put(("chunk", sid, chunk.index, first))
                first += 1
        return first

    def _slots(self, n_slots: int, size: int, sid: int) -> list[str]:
        """Names of ``n_slots`` segments of at least ``size`` bytes.

        Segments are kept for the whole run and reused by later stages that fit in them
        (creating and faulting in fresh shared memory is costly); they are replaced when a
        stage needs more or larger slots, or much smaller ones: every process maps and
        faults in the whole of each segment, so a stage's memory is its slots' sizes only
        when those are what it asked for (after a mask's detection pass, 3 x 423 MiB of
        slots kept for a merge pass sized for 3 x 64 MiB held 1.1 GiB too many).
        """
        have = self._segments
        if (len(have) < n_slots or min(seg.size for seg in have[:n_slots]) < size
                or sum(seg.size for seg in have) > SLOT_REUSE * n_slots * size):
            self._release()
            check_shm_space(n_slots * size)
            for k in range(n_slots):
                # unique in the process: several engines may run at once (threads)
                name = f"{SHM_PREFIX}{os.getpid()}-{next(_SEGMENT_SERIAL)}-{sid}-{k}"
                self._segments.append(shared_memory.SharedMemory(name=name, create=True,
                                                                 size=size))
        return [seg.name for seg in self._segments[:n_slots]]


def install_sigterm_handler() -> None:
    """Turn SIGTERM (a scheduler's stop) into ``KeyboardInterrupt``-style unwinding.

    The main process then runs its ``finally`` blocks: children are stopped and
    shared memory is released before the process exits.
    """
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def run_stage(stage: Stage, workers: int, slots: int,
              progress: ProgressCallback | None = None) -> list[Any]:
    """Run one stage with a temporary :class:`Engine` (convenience for tests)."""
    with Engine(workers) as engine:
        return engine.run(stage, slots, progress)


__all__ = ["SHM_PREFIX", "UNGUARDED_SCRIPT", "Chunk", "Engine", "EngineError", "Progress",
           "SlotSpec", "Stage", "WorkResult", "check_shm_space", "install_sigterm_handler",
           "row_chunks", "run_stage", "slot_bytes", "slot_views", "sweep_stale_segments",
           "tapered_chunks"]

if sys.platform != "linux":  # pragma: no cover
    raise ImportError("nsgen's engine needs Linux (POSIX shared memory, forkserver)")
