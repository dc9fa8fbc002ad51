"""What the synthetic modes share: the scratch volume kept in memory, and removed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import nsgen
from nsgen.modes import synthetic
from nsgen.modes.synthetic import MEMORY_SCRATCH_SHARE, memory_rows, project_sample

SMALL = ("-N", "16", "-o", "3", "--no-preview", "-v")


def projection_files() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("nsgen-*-projection-*")}


def test_memory_rows_is_half_the_limit_where_the_file_system_has_room(tmp_path):
    # tmp_path's file system has far more than 3 x 10 MB free
    assert memory_rows(10 * 10**6, 10**5, 1000, tmp_path) == int(MEMORY_SCRATCH_SHARE * 100)
    assert memory_rows(10 * 10**6, 10**5, 30, tmp_path) == 30
    assert memory_rows(10 * 10**6, 10**5, 30, tmp_path / "missing") == 0


@pytest.mark.parametrize("mode", ["simple", "complex"])
def test_a_run_keeps_its_scratch_in_memory_and_removes_it(tmp_path, mode):
    before = projection_files()
    r = nsgen("-m", mode, *SMALL, "-r", str(tmp_path))
    assert "scratch: 16 of 16 rows in memory" in r.stderr
    assert projection_files() <= before


def test_the_memory_file_is_removed_when_the_projection_fails(tmp_path, monkeypatch):
    made = []
    create = synthetic.Spill.create

    def spy(*args, **kw):
        made.append(create(*args, **kw))
        return made[-1]

    def fail(stage, sizing):
        assert made[0].memory is not None and made[0].memory.exists()
        raise RuntimeError("the pass failed")

    monkeypatch.setattr(synthetic.Spill, "create", spy)
    config = SimpleNamespace(size=16, seed=0, objects=3, object_type="sphere")
    run = SimpleNamespace(config=config, sample=0, log=lambda msg: None, tag="0000",
                          work=tmp_path / ".work", memory_limit=2**30, workers=1,
                          chunk_size=None, engine=None, run=fail)
    with pytest.raises(RuntimeError, match="the pass failed"):
        with project_sample(run, work_factor=6):   # type: ignore[arg-type]
            pass
    assert not made[0].memory.exists() and not made[0].path.exists()
