"""nsgen.prep._jit: loaders taken in turn by processes sharing a kernel cache."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

import numba

from nsgen.prep import _jit


def lock_path(directory: Path, name: str) -> Path:
    where = str(getattr(numba.config, "CACHE_DIR", "") or Path(_jit.__file__).parent)
    return directory / f"nsgen-jit-{hashlib.sha1(where.encode()).hexdigest()[:12]}-{name}.lock"


def test_a_loader_held_elsewhere_is_left_for_later(tmp_path):
    """Another holder of "a" (its own open file: flock conflicts like another process's):
    "b" runs first, "a" once it is released; each runs exactly once."""
    fd = os.open(lock_path(tmp_path, "a"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ran: list[str] = []
    b_done = threading.Event()

    def load_b() -> None:
        ran.append("b")
        b_done.set()

    order: list[list[str]] = []
    t = threading.Thread(target=lambda: order.append(
        _jit.load_in_turn([("a", lambda: ran.append("a")), ("b", load_b)], tmp_path)))
    t.start()
    assert b_done.wait(60)
    assert ran == ["b"]                 # "a" waits for its lock
    os.close(fd)                        # released
    t.join(60)
    assert ran == ["b", "a"] and order == [["b", "a"]]


def test_free_loaders_run_in_order_and_a_failing_one_raises(tmp_path):
    ran: list[str] = []
    assert _jit.load_in_turn([("x", lambda: ran.append("x")), ("y", lambda: ran.append("y"))],
                             tmp_path) == ["x", "y"]

    def boom() -> None:
        raise RuntimeError("compile failed")

    try:
        _jit.load_in_turn([("z", boom)], tmp_path)
    except RuntimeError as exc:
        assert "compile failed" in str(exc)
    else:
        raise AssertionError("the loader's error must reach the caller")
    # its lock was released: the next call takes it at once
    assert _jit.load_in_turn([("z", lambda: None)], tmp_path) == ["z"]
