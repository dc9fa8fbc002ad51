"""The engine's shared-memory segments (nsgen.engine.shm)."""

from __future__ import annotations

import os
import subprocess
import sys
from multiprocessing import shared_memory
from pathlib import Path

import pytest

from nsgen.engine.shm import SHM_PREFIX, Attached, attach, check_shm_space, sweep_stale_segments
from nsgen.errors import NsgenError


@pytest.fixture
def segment():
    seg = shared_memory.SharedMemory(name=f"{SHM_PREFIX}{os.getpid()}-test-{id(object())}",
                                     create=True, size=4096)
    yield seg
    seg.close()
    try:
        seg.unlink()
    except FileNotFoundError:
        pass


def test_attach_sees_the_creators_bytes(segment):
    segment.buf[:3] = b"abc"
    other = attach(segment.name)
    try:
        assert bytes(other.buf[:3]) == b"abc"
        other.buf[3] = ord("d")
        assert bytes(segment.buf[:4]) == b"abcd"
    finally:
        other.close()


def test_attached_maps_each_name_once_and_drops_names_no_longer_used(segment):
    attached = Attached()
    first = attached.use([segment.name])
    assert attached.use([segment.name])[0] is first[0]
    buf = attached.buffer(first[0])
    buf[0] = 42
    assert segment.buf[0] == 42 and segment.name in attached.faulted
    assert attached.use([]) == [] and attached.by_name == {} and attached.faulted == set()


def test_sweep_removes_segments_of_dead_runs_only(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)       # exited: no process has this id now
    stale = tmp_path / f"{SHM_PREFIX}{dead_pid}-1-0"
    mine = tmp_path / f"{SHM_PREFIX}{os.getpid()}-1-0"
    other = tmp_path / "someone-else-1"
    odd = tmp_path / f"{SHM_PREFIX}notapid-1"
    for p in (stale, mine, other, odd):
        p.write_bytes(b"x")
    assert sweep_stale_segments(tmp_path) == 1
    assert not stale.exists() and mine.exists() and other.exists() and odd.exists()


def test_sweep_of_a_missing_directory_removes_nothing(tmp_path: Path):
    assert sweep_stale_segments(tmp_path / "absent") == 0


def test_space_check_names_the_free_space_and_the_fixes(tmp_path: Path):
    check_shm_space(1, tmp_path)
    st = os.statvfs(tmp_path)
    with pytest.raises(NsgenError) as err:
        check_shm_space(st.f_bavail * st.f_frsize + 2**30, tmp_path)
    msg = str(err.value)
    assert "MiB free" in msg and "--memory-limit" in msg and "--shm-size" in msg
