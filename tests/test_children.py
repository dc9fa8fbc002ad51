"""The reader's and workers' shared helpers (nsgen.engine.children)."""

from __future__ import annotations

import multiprocessing as mp
import queue

import pytest

from nsgen.engine.children import describe, exit_if_orphaned, get, send_error, where
from nsgen.engine.stage import Chunk, Stage
from nsgen.errors import NsgenError


class Alive:
    def __init__(self, alive: bool) -> None:
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


def test_describe_is_one_line_with_the_type():
    assert describe(ValueError("bad\nvalue")) == "ValueError: bad\nvalue"
    assert describe(NsgenError("x")) == "nsgen.errors.NsgenError: x"


def test_where_names_the_part_in_the_stages_unit():
    class Frames(Stage):
        unit = "frames"
    assert where(Frames(), Chunk(0, 5, 6)) == "frames 5-5"
    assert where(Stage(), Chunk(1, 0, 3)) == "rows 0-2"


def test_get_returns_what_is_queued_while_the_parent_lives():
    q: queue.Queue = queue.Queue()
    q.put(("chunk", 1))
    assert get(q, Alive(True)) == ("chunk", 1)


def test_get_on_an_empty_queue_exits_once_the_parent_is_gone():
    ctx = mp.get_context("fork")
    p = ctx.Process(target=get, args=(queue.Queue(), Alive(False)))
    p.start()
    p.join(30)
    assert p.exitcode == 3


def test_an_orphan_exits_with_status_3():
    ctx = mp.get_context("fork")
    p = ctx.Process(target=exit_if_orphaned, args=(Alive(False),))
    p.start()
    p.join(30)
    assert p.exitcode == 3
    exit_if_orphaned(Alive(True))       # a living parent: returns
    exit_if_orphaned(None)


def test_send_error_carries_the_exception_when_it_pickles():
    q: queue.Queue = queue.Queue()
    try:
        raise NsgenError("no flats")
    except NsgenError as exc:
        send_error(q, "worker 1", exc)
    kind, who, payload, text, tb = q.get_nowait()
    assert (kind, who, text) == ("error", "worker 1", "nsgen.errors.NsgenError: no flats")
    assert isinstance(payload, NsgenError) and "Traceback" in tb


def test_send_error_sends_the_text_of_an_exception_that_does_not_pickle():
    class Local(Exception):      # a local class cannot be pickled
        pass
    q: queue.Queue = queue.Queue()
    send_error(q, "reader", Local("gone"))
    kind, who, payload, text, _ = q.get_nowait()
    assert payload is None and text.endswith("Local: gone")


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("r")])
def test_send_error_takes_any_exception(exc):
    q: queue.Queue = queue.Queue()
    send_error(q, "w", exc)
    assert q.get_nowait()[0] == "error"
