"""What the synthetic modes share: the scratch volume kept in memory, and removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import MethodType, SimpleNamespace

import pytest

from nsgen.modes import synthetic
from nsgen.modes.synthetic import project_sample
from nsgen.runner import StageRunner

SMALL = ("-N", "16", "-o", "3", "--no-preview", "-v")


@pytest.mark.parametrize("mode", ["simple", "complex"])
def test_a_run_keeps_its_scratch_in_memory_and_removes_it(tmp_path, mode):
    # the file is named after the run's process (other tests' runs may have theirs now)
    env = {**os.environ, "NSGEN_NO_PROGRESS": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "nsgen", "-m", mode, *SMALL,
                             "-r", str(tmp_path)], stderr=subprocess.PIPE, text=True, env=env)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "scratch: 16 of 16 rows in memory" in err
    assert not list(Path("/dev/shm").glob(f"nsgen-{proc.pid}-projection-*"))


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
    run.with_memory_scratch = MethodType(StageRunner.with_memory_scratch, run)
    with pytest.raises(RuntimeError, match="the pass failed"):
        with project_sample(run, work_factor=6):   # type: ignore[arg-type]
            pass
    assert not made[0].memory.exists() and not made[0].path.exists()
