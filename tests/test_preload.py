"""nsgen.engine.preload: a mode's module brings its ENGINE_PRELOAD into the forkserver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nsgen
import nsgen.engine.pipeline
import nsgen.modes.raw
import nsgen.modes.real
from nsgen.engine.preload import listed


def test_listed_is_every_mode_modules_engine_preload_in_order():
    assert listed([nsgen.modes.raw, nsgen.modes.real]) == list(nsgen.modes.raw.ENGINE_PRELOAD)
    assert listed([nsgen.modes.real, nsgen.modes.raw]) == list(dict.fromkeys(
        [*nsgen.modes.real.ENGINE_PRELOAD, *nsgen.modes.raw.ENGINE_PRELOAD]))
    assert listed([nsgen.engine.pipeline]) == []   # not a mode: ignored


def script_output(tmp_path: Path, source: str) -> str:
    """The standard output of the script ``source`` (dedented), run in a process of its
    own with this tree's nsgen (the forkserver's preload is that of a process's first
    engine)."""
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(Path(nsgen.__file__).parents[1])}  # this tree
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          check=True, cwd=tmp_path, env=env).stdout


def test_an_engine_started_with_the_mode_module_preloads_its_list(tmp_path):
    """A worker of an engine whose preload names only ``nsgen.modes.raw`` (what
    :func:`nsgen.runner.generate` passes) starts with every module of raw mode's
    ``ENGINE_PRELOAD`` imported (in a process of its own: the forkserver's preload is that
    of the process's first engine)."""
    out = script_output(tmp_path, """
        import sys
        from dataclasses import dataclass
        from nsgen.engine.pipeline import Engine, Stage, WorkResult, row_chunks

        @dataclass
        class Probe(Stage):
            names: tuple

            def chunks(self):
                return row_chunks(1, 1)

            def work(self, chunk, data):
                return WorkResult([n for n in self.names if n not in sys.modules])

        if __name__ == "__main__":
            import nsgen.modes.raw
            with Engine(1, preload=["nsgen.modes.raw"]) as engine:
                print(engine.run(Probe(tuple(nsgen.modes.raw.ENGINE_PRELOAD)), 1))
    """)
    assert out.strip() == "[[]]"


def test_the_forkserver_children_collect_garbage_with_the_preload_frozen(tmp_path):
    """The forkserver imports its preload with the garbage collector off
    (:mod:`nsgen.engine.gcpause`) and turns it on again once the imports are done: a
    worker starts with the collector on and the preloaded objects (NumPy's, ...) in the
    permanent generation."""
    out = script_output(tmp_path, """
        import gc
        from nsgen.engine.pipeline import Engine, Stage, WorkResult, row_chunks

        class Probe(Stage):
            def chunks(self):
                return row_chunks(1, 1)

            def work(self, chunk, data):
                return WorkResult((gc.isenabled(), gc.get_freeze_count() > 10000))

        if __name__ == "__main__":
            with Engine(1, preload=["nsgen.modes.raw"]) as engine:
                print(engine.run(Probe(), 1), gc.isenabled(), gc.get_freeze_count())
    """)
    assert out.split() == ["[(True,", "True)]", "True", "0"]   # (the main process untouched)
