"""Opt-in per-process phase timings (nsgen.engine.profile)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsgen.engine import profile


@pytest.fixture
def recording(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    profile.enable(str(path))
    yield path
    profile.enable(None)


def test_off_records_nothing(tmp_path: Path):
    profile.enable(None)
    with profile.phase("x"):
        pass
    profile.add("y", 1.0)
    profile.flush("main", "s")
    assert not profile.enabled() and profile.load(tmp_path / "none.jsonl") == []


def test_phases_add_up_and_flush_resets_them(recording: Path):
    assert profile.enabled()
    profile.add("read", 0.5, 0.25)
    profile.add("read", 1.0, 0.5)
    with profile.phase("work"):
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.02:   # busy: CPU time of this thread
            pass
    profile.flush("worker", "stage one")
    profile.flush("worker", "stage two")          # nothing since: no line
    profile.add("write", 2.0)
    profile.flush("reader", "stage two")
    first, second = profile.load(recording)
    assert (first["role"], first["stage"], first["pid"]) == ("worker", "stage one", os.getpid())
    assert first["seconds"]["read"] == 1.5 and first["cpu"]["read"] == 0.75
    assert first["cpu"]["work"] >= 0.02 and first["seconds"]["work"] >= first["cpu"]["work"]
    assert first["cpu"]["process"] > 0
    assert (second["role"], second["stage"]) == ("reader", "stage two")
    assert second["seconds"] == {"write": 2.0} and "write" not in second["cpu"]


def test_child_processes_append_to_the_same_file(recording: Path):
    code = ("from nsgen.engine import profile; profile.add('child', 1.0); "
            "profile.flush('worker', 'x')")
    env = {**os.environ, profile.ENV: str(recording)}
    for _ in range(3):
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    lines = profile.load(recording)
    assert len(lines) == 3 and len({line["pid"] for line in lines}) == 3
    assert all(line["seconds"] == {"child": 1.0} for line in lines)
