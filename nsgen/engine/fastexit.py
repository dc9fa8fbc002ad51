"""The engine's forkserver ends at once when the run is over.

The forkserver (:class:`~nsgen.engine.pipeline.Engine`) imports this module last of its
``preload``. When every process of the run has gone, it exits; tearing down an interpreter
that holds NumPy, SciPy and Numba then took 0.2-0.6 s, for nothing (it holds no data and
writes no file), while whatever waits for the run's output streams (a pipe, a scheduler,
a benchmark) waited for it too. Imported in that process, this module registers an exit
handler that flushes the standard streams and ends the process (``os._exit(0)``); it
registers nothing anywhere else (the main process, a test collecting every module), and the
forkserver's children never run exit handlers (multiprocessing ends them with ``os._exit``).
"""

from __future__ import annotations

import atexit
import os
import sys
from types import FrameType

__all__ = ["in_forkserver"]


def in_forkserver(frame: FrameType | None = None) -> bool:
    """Whether ``frame`` (default: the caller's) runs inside multiprocessing's forkserver
    loop (``multiprocessing.forkserver.main``): in the forkserver, while it imports its
    ``preload``.

    Examples
    --------
    >>> in_forkserver()
    False
    """
    frame = sys._getframe(1) if frame is None else frame
    while frame is not None:
        if (frame.f_code.co_name == "main"
                and frame.f_globals.get("__name__") == "multiprocessing.forkserver"):
            return True
        frame = frame.f_back
    return False


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
            pass
    os._exit(0)


if in_forkserver():   # pragma: no cover - runs in the forkserver only
    atexit.register(_exit_now)
