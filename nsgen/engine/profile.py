"""Opt-in timing of a run's phases, per process and stage (``NSGEN_PROFILE=<file>``).

Off (the default) every call here is a no-op. With the environment variable
:data:`ENV` naming a file, every process of a run (main, reader, workers: they inherit
the environment) adds the seconds it spends in each named :func:`phase` (wall-clock, and
CPU time of the calling thread: on a machine shared with other work, the CPU seconds are
the steadier figure) and appends them, when a stage's part in that process ends
(:func:`flush`), as one JSON line ``{"pid", "role", "stage", "seconds": {phase: s},
"cpu": {phase: s}}`` to that file (``cpu["process"]``: the CPU seconds of all the
process's threads since its previous line, or since it started) (appends of one short line are atomic, so processes
need no lock). ``scripts/bench_engine.py`` reads the lines
back (:func:`load`) into its per-stage breakdown.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "profile.jsonl"
>>> enable(str(path))
>>> with phase("bounds"):
...     pass
>>> add("read", 0.5, 0.25)
>>> flush("worker", "normalise")
>>> rows = load(path)
>>> rows[0]["role"], rows[0]["stage"], sorted(rows[0]["seconds"]), rows[0]["cpu"]["read"]
('worker', 'normalise', ['bounds', 'read'], 0.25)
>>> sorted(rows[0]["cpu"])
['bounds', 'process', 'read']
>>> enable(None)
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["ENV", "add", "enable", "enabled", "flush", "load", "phase"]

#: environment variable naming the file profile lines are appended to
ENV = "NSGEN_PROFILE"

_PATH: str | None = os.environ.get(ENV) or None
_SECONDS: defaultdict[str, float] = defaultdict(float)
_CPU: defaultdict[str, float] = defaultdict(float)
_FLUSHED = [0.0]    # this process's CPU seconds (all threads) at its last flush


def enable(path: str | None) -> None:
    """Record to ``path`` from now on in this process (None: stop recording)."""
    global _PATH
    _PATH = path or None
    _SECONDS.clear()
    _CPU.clear()


def enabled() -> bool:
    """True when this process records its phases."""
    return _PATH is not None


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the seconds spent in the ``with`` block to phase ``name`` (when enabled)."""
    if _PATH is None:
        yield
        return
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        add(name, time.perf_counter() - t0, time.thread_time() - c0)


def add(name: str, seconds: float, cpu: float | None = None) -> None:
    """Add ``seconds`` (wall) and ``cpu`` seconds (when known) to phase ``name``."""
    if _PATH is not None:
        _SECONDS[name] += seconds
        if cpu is not None:
            _CPU[name] += cpu


def flush(role: str, stage: str) -> None:
    """Append this process's phases since the last flush as one line, then reset them."""
    if _PATH is None or not _SECONDS:
        return
    now = time.process_time()
    _CPU["process"] += now - _FLUSHED[0]
    _FLUSHED[0] = now
    line = json.dumps({"pid": os.getpid(), "role": role, "stage": stage,
                       "seconds": dict(_SECONDS), "cpu": dict(_CPU)}) + "\n"
    _SECONDS.clear()
    _CPU.clear()
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def load(path: Path) -> list[dict[str, Any]]:
    """The lines of a profile file (none when it does not exist)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
