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
* returns the workers' results in chunk order, so reductions are independent of
  the order in which chunks finished;
* stops promptly on the first error of any process (its message is re-raised in
  the main process) or on the death of any process, and always releases shared
  memory (also on Ctrl-C and SIGTERM; after ``kill -9`` of the main process the
  children notice before their next chunk and exit, and multiprocessing's resource
  tracker, the last process of the run, unlinks the segments; stale segments of a run
  whose tracker was killed too are swept at the next start).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nsgen.engine import scratch
from nsgen.errors import NsgenError
from nsgen.mainscript import check_main_importable

SHM_PREFIX = "nsgen-"
_POLL = 0.2
#: exit status of a child that found itself starting an engine while it imported the
#: user's main script (a script without a ``if __name__ == "__main__":`` guard)
_UNGUARDED_EXIT = 86
UNGUARDED_SCRIPT = (
    "the script that runs nsgen has no `if __name__ == \"__main__\":` guard: nsgen's "
    "reader and worker processes import the main script (multiprocessing forkserver), so "
    "unguarded code would start nsgen again in each of them; put the code that runs nsgen "
    "under `if __name__ == \"__main__\":`")


@dataclass(frozen=True)
class Chunk:
    """Rows ``[start, stop)`` of a volume; ``index`` orders results."""

    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        """Number of rows."""
        return self.stop - self.start


def row_chunks(n_rows: int, chunk_rows: int) -> list[Chunk]:
    """Split ``n_rows`` rows into consecutive chunks of at most ``chunk_rows``.

    Examples
    --------
    >>> [(c.start, c.stop) for c in row_chunks(10, 4)]
    [(0, 4), (4, 8), (8, 10)]
    """
    if n_rows < 0 or chunk_rows < 1:
        raise ValueError(f"bad chunking: {n_rows} rows, {chunk_rows} per chunk")
    return [Chunk(i, s, min(s + chunk_rows, n_rows))
            for i, s in enumerate(range(0, n_rows, chunk_rows))]


@dataclass
class WorkResult:
    """What a worker returns for one chunk: a small value plus output accounting
    (files and bytes written, and a checksum of each file by path)."""

    value: Any = None
    files: int = 0
    nbytes: int = 0
    checksums: dict[str, str] = field(default_factory=dict)


SlotSpec = Any  # (shape, dtype) or a list of (shape, dtype)
_ALIGN = 64


def _layout(spec: SlotSpec) -> list[tuple[int, tuple[int, ...], np.dtype]]:
    """Byte offset, shape and dtype of each array of a slot specification."""
    many = isinstance(spec, list)
    items = spec if many else [spec]
    out, off = [], 0
    for shape, dtype in items:
        dt = np.dtype(dtype)
        out.append((off, tuple(int(x) for x in shape), dt))
        off += -(-int(np.prod(shape)) * dt.itemsize // _ALIGN) * _ALIGN
    return out


def slot_bytes(spec: SlotSpec) -> int:
    """Bytes a slot needs for ``spec``."""
    lay = _layout(spec)
    off, shape, dt = lay[-1]
    return off + int(np.prod(shape)) * dt.itemsize


def slot_views(buf: Any, spec: SlotSpec) -> Any:
    """The arrays of ``spec`` laid out in ``buf`` (one array, or a list)."""
    views = [np.ndarray(shape, dtype=dt, buffer=buf, offset=off) for off, shape, dt in
             _layout(spec)]
    return views if isinstance(spec, list) else views[0]


class Stage:
    """One pass over the rows of a volume. Subclass and override.

    Instances are pickled to the reader and every worker once per stage, so keep
    them small (configuration, object lists, 2D maps), never whole volumes.
    """

    #: label of the progress bar
    label: str = "stage"

    def chunks(self) -> Sequence[Chunk]:
        """The chunks of this stage, in result order."""
        raise NotImplementedError

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        """Shape and dtype of the data the reader delivers for ``chunk``.

        Either one ``(shape, dtype)`` pair, or a list of them when a chunk is several
        arrays (then :meth:`read` and :meth:`work` receive a list of arrays). The
        default is an empty array: a compute-only stage whose workers make their own
        data (for example by simulation).
        """
        return (0,), "uint8"

    def read(self, chunk: Chunk, out: Any) -> None:
        """Fill ``out`` with the data of ``chunk`` (runs in the reader process)."""

    def work(self, chunk: Chunk, data: Any) -> WorkResult:
        """Process one chunk (runs in a worker process)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Run once in every worker as the stage starts, while the reader reads the first
        chunks (for example to load compiled kernels). The default does nothing."""

    def prefetch(self) -> None:
        """Begin slow input early (for example ask the OS to read ahead). Runs on a thread
        of the main process as the stage is submitted, while the reader process receives
        it; it must not change the stage, and its errors are ignored (the reader reports
        real ones). The default does nothing."""


class EngineError(RuntimeError):
    """A reader or worker process failed or died; the message says which and why."""


# --------------------------------------------------------------------------- children

class _Terminated(BaseException):
    pass


def _raise_terminated(signum: int, frame: Any) -> None:  # pragma: no cover - signal path
    raise _Terminated()


_MADV_POPULATE_WRITE = 23   # Linux >= 5.14; not exported by Python's mmap module


def _populate(seg: shared_memory.SharedMemory) -> None:
    """Fault a segment's pages in with one call (page faults are costly in some sandboxes)."""
    try:
        seg._mmap.madvise(_MADV_POPULATE_WRITE)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        pass


def _attach(name: str) -> shared_memory.SharedMemory:
    """Map an existing segment without registering it with the resource tracker.

    Before Python 3.13 attaching registers the segment as if this process owned it; the
    registration can reach the tracker after the main process unlinked and unregistered
    the segment (a stopped run), which then warns of "leaked" segments at shutdown. The
    main process alone registers (and, killed, has the tracker unlink) its segments.
    """
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    from multiprocessing import resource_tracker
    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


class _Attached:
    """A child's mappings of the run's segments, kept while their names stay in use.

    A segment is faulted in (:func:`_populate`) the first time this process uses it, not
    when it is created: the reader faults each slot in just before it first writes it,
    in parallel with the workers' :meth:`Stage.prepare`, instead of the main process
    faulting every slot in before the stage may start (first touch of fresh memory is
    the largest fixed cost of a run in some virtual machines); a worker then only maps
    pages that exist already.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, shared_memory.SharedMemory] = {}
        self.faulted: set[str] = set()

    def use(self, names: Sequence[str]) -> list[shared_memory.SharedMemory]:
        for name in list(self.by_name):
            if name not in names:
                self.by_name.pop(name).close()
                self.faulted.discard(name)
        for name in names:
            if name not in self.by_name:
                self.by_name[name] = _attach(name)
        return [self.by_name[n] for n in names]

    def buffer(self, seg: shared_memory.SharedMemory) -> Any:
        """``seg.buf``, faulted in on this process's first use of the segment."""
        if seg.name not in self.faulted:
            _populate(seg)
            self.faulted.add(seg.name)
        return seg.buf


def _quietly(fn: Callable[[], None]) -> None:
    """``fn()``, ignoring any error (for hints that cannot fail a run)."""
    try:
        fn()
    except Exception:  # noqa: BLE001 - a hint only
        pass


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _exit_if_orphaned(parent: Any) -> None:
    """Exit at once if the main process has gone away (``kill -9``): checked before every
    chunk too, since a busy pipeline never waits long enough to notice it otherwise."""
    if parent is not None and not parent.is_alive():
        os._exit(3)


def _watch_parent(parent: Any) -> None:
    """Start a daemon thread that ends this child when the main process is gone. The checks
    in :func:`_get` and before each chunk cannot see it while a queue read blocks inside
    multiprocessing: a main process killed (``kill -9``) in the middle of putting a large
    message leaves the child reading the rest of it forever."""
    def watch() -> None:
        while True:
            time.sleep(_POLL * 2)
            _exit_if_orphaned(parent)
    threading.Thread(target=watch, name="nsgen-parent-watch", daemon=True).start()


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


def _get(q: Any, parent: Any) -> Any:
    """Blocking get that gives up when the main process has gone away."""
    while True:
        try:
            return q.get(timeout=_POLL * 2)
        except queue.Empty:
            _exit_if_orphaned(parent)


def _send_error(results: Any, who: str, exc: BaseException) -> None:
    try:
        payload: Any = exc
        import pickle
        pickle.dumps(exc)
    except Exception:
        payload = None
    results.put(("error", who, payload, _describe(exc), traceback.format_exc()))


def _worker_main(ident: int, control: Any, data: Any, free: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = mp.parent_process()
    _watch_parent(parent)
    who = f"worker {ident}"
    stage: Stage | None = None
    stage_id = -1
    attached = _Attached()
    segments: list[shared_memory.SharedMemory] = []
    chunks: Sequence[Chunk] = ()

    def newest(msg: tuple) -> tuple:
        """The last of the control messages already queued after ``msg``: a stage that
        finished without this worker (the others took all its chunks) is skipped."""
        while msg[0] != "stop":
            try:
                msg = control.get_nowait()
            except queue.Empty:
                break
        return msg

    def start(msg: tuple) -> None:
        nonlocal stage_id, stage, segments, chunks
        stage_id, stage, names = msg[1], msg[2], msg[3]
        scratch.retire()  # the previous stage's buffers: spares for this one
        try:
            segments = attached.use(names)
            chunks = list(stage.chunks())
        except FileNotFoundError:
            # its segments are gone: that stage is over, it ran without this worker
            stage = None
            return
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            _send_error(results, who, exc)
            return
        try:
            stage.prepare()
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            _send_error(results, who, exc)

    while True:
        msg = None
        try:
            msg = control.get_nowait()
        except queue.Empty:
            pass
        if msg is None:
            try:
                msg = data.get(timeout=_POLL)
            except queue.Empty:
                _exit_if_orphaned(parent)
                continue
        kind = msg[0]
        if kind == "stage":
            msg = newest(msg)
            kind = msg[0]
        if kind == "stop":
            return
        if kind == "stage":
            start(msg)
            continue
        # ("chunk", stage_id, chunk_index, slot); the reader starts with the workers, so
        # a chunk of a new stage may come before that stage's control message
        _, sid, index, slot = msg
        _exit_if_orphaned(parent)
        while sid > stage_id:
            ctrl = newest(_get(control, parent))
            if ctrl[0] == "stop":
                return
            start(ctrl)
        try:
            assert stage is not None and sid == stage_id, "chunk for an unknown stage"
            arr = slot_views(attached.buffer(segments[slot]), stage.slot_spec(chunks[index]))
            res = stage.work(chunks[index], arr)
            del arr
            scratch.trim()
            results.put(("done", sid, index, res))
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            _send_error(results, f"{who} (rows {chunks[index].start}-{chunks[index].stop - 1})"
                        if index < len(chunks) else who, exc)
        finally:
            free.put(slot)


def _reader_main(control: Any, data: Any, free: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = mp.parent_process()
    _watch_parent(parent)
    attached = _Attached()
    while True:
        msg = _get(control, parent)
        if msg[0] == "stop":
            return
        _, sid, stage, names = msg
        chunk: Chunk | None = None
        try:
            segments = attached.use(names)
            for chunk in stage.chunks():
                slot = _get(free, parent)
                _exit_if_orphaned(parent)
                arr = slot_views(attached.buffer(segments[slot]), stage.slot_spec(chunk))
                stage.read(chunk, arr)
                del arr
                data.put(("chunk", sid, chunk.index, slot))
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            if chunk is None:
                _send_error(results, "reader", exc)
            else:   # say where in the input: an unreadable (corrupted) part names its rows
                rows = f"rows {chunk.start}-{chunk.stop - 1}"
                _send_error(results, f"reader ({rows})",
                            NsgenError(f"reading {rows}: {exc}")
                            if isinstance(exc, NsgenError) else exc)


# --------------------------------------------------------------------------- engine

def sweep_stale_segments(shm_dir: Path = Path("/dev/shm")) -> int:
    """Unlink ``nsgen-<pid>-*`` segments whose creating process no longer exists."""
    n = 0
    try:
        entries = list(shm_dir.iterdir())
    except OSError:
        return 0
    for p in entries:
        if not p.name.startswith(SHM_PREFIX):
            continue
        try:
            pid = int(p.name[len(SHM_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


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
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if getattr(mp.current_process(), "_inheriting", False):
            # a child of an engine importing an unguarded main script: stop at once, with a
            # status the parent engine turns into UNGUARDED_SCRIPT (instead of a storm of
            # multiprocessing's "bootstrapping phase" errors)
            os._exit(_UNGUARDED_EXIT)
        self.workers = workers
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
        """Start the reader and the workers."""
        check_main_importable()   # a script read from stdin: one clear error, not a dead child
        sweep_stale_segments()
        ctx = self._ctx
        try:
            # only what every child needs: the forkserver imports its preloads serially
            # before the first child starts (SciPy alone took 0.3 s), and each worker
            # imports the rest of what its stages need in parallel
            ctx.set_forkserver_preload(["nsgen.engine.pipeline", "numpy"])
        except Exception:  # pragma: no cover - preload is an optimisation only
            pass
        self._data = ctx.Queue()
        self._free = ctx.Queue()
        self._results = ctx.Queue()
        rc = ctx.Queue()
        self._controls.append(rc)
        reader = ctx.Process(target=_reader_main, args=(rc, self._data, self._free,
                                                        self._results),
                             name="nsgen-reader", daemon=True)
        self._procs.append(reader)
        for i in range(self.workers):
            wc = ctx.Queue()
            self._controls.append(wc)
            self._procs.append(ctx.Process(target=_worker_main,
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
                              f"{_describe(self._start_error)}")
        for p in self._procs:
            if p.exitcode == _UNGUARDED_EXIT:
                raise NsgenError(UNGUARDED_SCRIPT)
            if p.exitcode is not None:
                how = (f"was killed by signal {-p.exitcode}" if p.exitcode < 0
                       else f"exited with status {p.exitcode}")
                raise EngineError(f"{p.name} {how}; the run was stopped (rerun to resume)")

    def _wait(self) -> tuple:
        while True:
            try:
                return self._results.get(timeout=_POLL)
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
        chunks = list(stage.chunks())
        self._stage_counter += 1
        sid = self._stage_counter
        size = max([1] + [slot_bytes(stage.slot_spec(c)) for c in chunks])
        n_slots = max(1, min(slots, len(chunks) or 1))
        names = self._slots(n_slots, size, sid)
        try:
            threading.Thread(target=_quietly, args=(stage.prefetch,), daemon=True,
                             name="nsgen-prefetch").start()
            # the reader starts at once: the workers load their stage (and run its
            # prepare) while the first chunks are read
            for k in range(n_slots):
                self._free.put(k)
            for c in self._controls:
                c.put(("stage", sid, stage, names))
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
                        self._free.get(timeout=_POLL)
                        break
                    except queue.Empty:
                        self._check_alive()
        except BaseException:
            self.close(abort=True)
            raise
        return [values[c.index] for c in chunks]

    def _slots(self, n_slots: int, size: int, sid: int) -> list[str]:
        """Names of ``n_slots`` segments of at least ``size`` bytes.

        Segments are kept for the whole run and reused by later stages that fit in them
        (creating and faulting in fresh shared memory is costly); they are replaced only
        when a stage needs more or larger slots.
        """
        have = self._segments
        if len(have) < n_slots or min(seg.size for seg in have[:n_slots]) < size:
            self._release()
            check_shm_space(n_slots * size)
            for k in range(n_slots):
                name = f"{SHM_PREFIX}{os.getpid()}-{sid}-{k}"
                self._segments.append(shared_memory.SharedMemory(name=name, create=True,
                                                                 size=size))
        return [seg.name for seg in self._segments[:n_slots]]


def check_shm_space(nbytes: int, shm_dir: Path = Path("/dev/shm")) -> None:
    """Refuse to start a stage whose slots do not fit in the shared-memory file system.

    Slots are faulted in lazily, so a ``/dev/shm`` that is too small (64 MB in a default
    Docker container) would otherwise kill the reader with SIGBUS mid-run.
    """
    try:
        st = os.statvfs(shm_dir)
    except OSError:  # pragma: no cover - no /dev/shm to ask: let shared_memory decide
        return
    free = st.f_bavail * st.f_frsize
    if nbytes > free:
        raise NsgenError(
            f"shared memory {shm_dir} has {free / 2**20:.0f} MiB free but this stage needs "
            f"{nbytes / 2**20:.0f} MiB of slots; lower --memory-limit or --chunk-size, or "
            f"give {shm_dir} more space (docker run --shm-size=...)")


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


__all__ = ["Chunk", "Engine", "EngineError", "Progress", "Stage", "WorkResult",
           "install_sigterm_handler", "row_chunks", "run_stage", "sweep_stale_segments"]

if sys.platform != "linux":  # pragma: no cover
    raise ImportError("nsgen's engine needs Linux (POSIX shared memory, forkserver)")
