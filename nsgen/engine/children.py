"""Main functions of the engine's reader and worker processes, and what they share:
waiting on queues while watching the main process, and reporting errors to it."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from multiprocessing import shared_memory
from typing import Any, Sequence

from nsgen.engine import profile, scratch
from nsgen.engine.shm import Attached
from nsgen.engine.stage import Chunk, Stage, slot_views
from nsgen.errors import NsgenError

POLL = 0.2
def describe(exc: BaseException) -> str:
    """``exc`` as one line: its type and message."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def exit_if_orphaned(parent: Any) -> None:
    """Exit at once if the main process has gone away (``kill -9``): checked before every
    chunk too, since a busy pipeline never waits long enough to notice it otherwise."""
    if parent is not None and not parent.is_alive():
        os._exit(3)


def watch_parent(parent: Any) -> None:
    """Start a daemon thread that ends this child when the main process is gone. The checks
    in :func:`get` and before each chunk cannot see it while a queue read blocks inside
    multiprocessing: a main process killed (``kill -9``) in the middle of putting a large
    message leaves the child reading the rest of it forever."""
    def watch() -> None:
        while True:
            time.sleep(POLL * 2)
            exit_if_orphaned(parent)
    threading.Thread(target=watch, name="nsgen-parent-watch", daemon=True).start()


def where(stage: Stage, chunk: Chunk) -> str:
    """The part of the input ``chunk`` is, in the stage's unit, for error messages.

    Examples
    --------
    >>> where(Stage(), Chunk(2, 10, 15))
    'rows 10-14'
    """
    return f"{stage.unit} {chunk.start}-{chunk.stop - 1}"


def get(q: Any, parent: Any) -> Any:
    """Blocking get that gives up when the main process has gone away."""
    while True:
        try:
            return q.get(timeout=POLL * 2)
        except queue.Empty:
            exit_if_orphaned(parent)


def send_error(results: Any, who: str, exc: BaseException) -> None:
    try:
        payload: Any = exc
        import pickle
        pickle.dumps(exc)
    except Exception:
        payload = None
    results.put(("error", who, payload, describe(exc), traceback.format_exc()))


def worker_main(ident: int, control: Any, data: Any, free: Any, results: Any) -> None:
    """Worker ``ident``: run :meth:`Stage.work` on each chunk the reader put in a slot."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = mp.parent_process()
    watch_parent(parent)
    who = f"worker {ident}"
    stage: Stage | None = None
    stage_id = -1
    attached = Attached()
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
            send_error(results, who, exc)
            return
        try:
            with profile.phase("prepare"):
                stage.prepare()
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            send_error(results, who, exc)

    while True:
        msg = None
        try:
            msg = control.get_nowait()
        except queue.Empty:
            pass
        if msg is None:
            t0 = time.perf_counter()
            try:
                msg = data.get(timeout=POLL)
            except queue.Empty:
                exit_if_orphaned(parent)
                continue
            finally:
                profile.add("idle", time.perf_counter() - t0)
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
        exit_if_orphaned(parent)
        while sid > stage_id:
            ctrl = newest(get(control, parent))
            if ctrl[0] == "stop":
                return
            start(ctrl)
        try:
            assert stage is not None and sid == stage_id, "chunk for an unknown stage"
            arr = slot_views(attached.buffer(segments[slot]), stage.slot_spec(chunks[index]))
            with profile.phase("work"):
                res = stage.work(chunks[index], arr)
            del arr
            scratch.trim()
            results.put(("done", sid, index, res))
            profile.flush("worker", stage.label)
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            send_error(results, f"{who} ({where(stage, chunks[index])})"
                       if stage is not None and index < len(chunks) else who, exc)
        finally:
            free.put(slot)


def reader_main(control: Any, data: Any, free: Any, results: Any) -> None:
    """The reader: fill a free slot with each chunk of each stage (:meth:`Stage.read`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = mp.parent_process()
    watch_parent(parent)
    attached = Attached()
    while True:
        msg = get(control, parent)
        if msg[0] == "stop":
            return
        _, sid, stage, names, first = msg   # the main process read chunks before first
        chunk: Chunk | None = None
        try:
            segments = attached.use(names)
            for chunk in list(stage.chunks())[first:]:
                with profile.phase("wait for a slot"):
                    slot = get(free, parent)
                exit_if_orphaned(parent)
                arr = slot_views(attached.buffer(segments[slot]), stage.slot_spec(chunk))
                with profile.phase("read"):
                    stage.read(chunk, arr)
                del arr
                data.put(("chunk", sid, chunk.index, slot))
            profile.flush("reader", stage.label)
        except BaseException as exc:  # noqa: BLE001 - reported to the main process
            if chunk is None:
                send_error(results, "reader", exc)
            else:   # say where in the input: an unreadable (corrupted) part names its rows
                part = where(stage, chunk)
                send_error(results, f"reader ({part})",
                           NsgenError(f"reading {part}: {exc}")
                           if isinstance(exc, NsgenError) else exc)

