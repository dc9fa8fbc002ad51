"""nsgen.prestart: the command line starts the engine's forkserver before its imports, with
the preload the mode's engine would have given it."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nsgen import prestart
from nsgen.options import build_parser
from nsgen.prestart import DEFAULT_MODE, MODES, guess_mode

from helpers import python_output


def test_the_modes_are_the_configs():
    from nsgen import config
    assert sorted(MODES) == sorted(config.MODES)
    for name in MODES:
        assert importlib.import_module(f"nsgen.modes.{name}").ENGINE_PRELOAD


def test_the_default_mode_is_the_parsers():
    assert build_parser().parse_args(["-r", "x"]).mode == DEFAULT_MODE


@pytest.mark.parametrize("argv, env, mode", [
    (["-m", "simple", "-N", "64"], {}, "simple"),
    (["--mode", "raw"], {}, "raw"),
    (["-msimple"], {}, "simple"),
    (["--mode=simple", "-m", "complex"], {}, "complex"),      # the last one counts
    (["-m", "simple"], {"NSGEN_MODE": "raw"}, "simple"),      # the command line first
    ([], {"NSGEN_MODE": "raw"}, "raw"),
    (["-r", "out", "--workers", "1"], {}, DEFAULT_MODE),
    (["-c", "run.ini"], {}, None),                            # the file may name it
    (["--config=run.ini"], {}, None),
    (["-r", "out"], {"NSGEN_CONFIG": "run.ini"}, None),
    (["-c", "run.ini", "-m", "simple"], {}, "simple"),
    (["-m"], {}, None),
    (["-r", "out", "--help"], {}, None),
])
def test_guess_mode_reads_what_the_parser_will(argv, env, mode):
    assert guess_mode(argv, env) == mode


def test_no_forkserver_for_an_unknown_mode_or_a_config_file():
    assert prestart.start_early(["-m", "bogus"], {}) is None
    assert prestart.start_early(["-c", "run.ini"], {}) is None



def test_the_forkserver_starts_before_the_imports_and_the_engine_uses_it():
    out = python_output(
        "import sys\n"
        "from nsgen.prestart import start_early, stop_early\n"
        "pid = start_early(['-m', 'complex'], {})\n"
        "print(pid is not None, 'numpy' in sys.modules, 'nsgen.config' in sys.modules)\n"
        "import tempfile\n"
        "from multiprocessing import forkserver\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from nsgen.engine.pipeline import Engine\n"
        "from nsgen.io.spill import Spill\n"
        "from nsgen.modes.synthetic import ProjectStage\n"
        "from nsgen.sim.phantom import random_foam\n"
        "from nsgen.sim.projection import Geometry\n"
        "g = Geometry.for_size(16)\n"
        "spill = Spill.create(Path(tempfile.mkdtemp()) / 'p.f32', g.shape)\n"
        "stage = ProjectStage(random_foam(np.random.default_rng(0), 3), g, spill, 4)\n"
        "with Engine(2, preload=['nsgen.modes.complex']) as engine:\n"
        "    print(len(engine.run(stage, 2)) == 4)\n"
        "print(forkserver._forkserver._forkserver_pid == pid)\n")
    assert out.split() == ["True", "False", "False", "True", "True"]


def test_stop_early_ends_the_forkserver():
    pid = python_output(
        "import os, signal\n"
        "from nsgen.prestart import start_early, stop_early\n"
        "pid = start_early(['-m', 'simple'], {})\n"
        "stop_early(pid)\n"
        "print(os.waitpid(pid, 0)[1] == signal.SIGTERM)\n")
    assert pid == "True"


def test_the_command_line_writes_the_same_files_as_a_call(tmp_path: Path):
    args = ["-m", "complex", "-N", "16", "-o", "3", "-s", "2", "-f", "2", "--no-preview",
            "--no-progress", "--workers", "2"]
    # a short temporary directory (the forkserver's socket path there must stay under the
    # 108 bytes of AF_UNIX: tmp_path under pytest-xdist is too long)
    temp = Path(tempfile.mkdtemp(prefix="p"))
    env = {**os.environ, "PYTHONPATH": str(Path(prestart.__file__).parents[1]),
           "TMPDIR": str(temp)}
    cli = subprocess.run([sys.executable, "-P", "-m", "nsgen", *args, "-r", str(tmp_path / "cli")],
                         check=True, capture_output=True, text=True, env=env)
    # ended by exit_now: the summary is out, and nothing was left for the resource tracker
    assert cli.stderr.startswith("nsgen: made 1 sample (0000): 48 files"), cli.stderr
    assert "leaked" not in cli.stderr
    # nor in the temporary directory (multiprocessing's pymp-* with the forkserver's socket)
    left = list(temp.iterdir())
    shutil.rmtree(temp)
    assert left == []
    from nsgen.cli import main
    assert main([*args, "-r", str(tmp_path / "call")]) == 0
    files = sorted(p.relative_to(tmp_path / "call")
                   for p in (tmp_path / "call").rglob("*.tif"))
    assert len(files) == 16 * 3
    for rel in files:
        assert (tmp_path / "cli" / rel).read_bytes() == (tmp_path / "call" / rel).read_bytes()


def test_exit_now_flushes_the_streams_and_ends_with_the_status():
    code = ("import logging, sys\n"
            "from nsgen.prestart import exit_now\n"
            "logging.basicConfig(stream=sys.stderr, format='%(message)s')\n"
            "print('out', end='')\n"
            "sys.stderr.write('err ')\n"
            "logging.getLogger('x').warning('logged')\n"
            "exit_now(3)\n"
            "print('never')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out", "err logged\n")


def test_nsgen_mask_starts_its_forkserver_with_the_detectors_preload():
    """The command line's ``nsgen mask``: the forkserver with the robust detector's stages
    and kernels in its preload, started before the command's imports (none for help)."""
    out = python_output(
        "import sys\n"
        "from multiprocessing import forkserver\n"
        "from nsgen.prestart import start_mask_early, stop_early\n"
        "assert start_mask_early(['-h']) is None\n"
        "pid = start_mask_early(['--h5', 's.nxs', '-a', 'm.npz'])\n"
        "print(pid is not None, 'numpy' in sys.modules)\n"
        "print(forkserver._forkserver._preload_modules[3])\n"
        "stop_early(pid)\n")
    assert out.split() == ["True", "False", "nsgen.stages.robust"]
