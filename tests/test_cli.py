"""The ``nsgen`` command itself: help, -v tracebacks, Ctrl-C, and options end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import HANG, all_files, nsgen, tree_digest, wait_for
from nsgen.cli import COMMANDS, main

SIMPLE = ["-m", "simple", "-N", "16", "-o", "3", "-S", "2", "--workers", "2"]


def test_help_lists_options_and_subcommands():
    r = nsgen("--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: ")
    for option in ("--config", "--mode", "--object-type", "--workers", "--samples"):
        assert option in r.stdout
    for name in COMMANDS:
        assert f"  nsgen {name} " in r.stdout


def _blocked_output(root):
    """A directory where the run's fourth clean TIFF must go: its worker fails."""
    (root / "0000" / "clean" / "0000_clean_0003.tif").mkdir(parents=True)


def test_engine_failure_is_one_line_and_minus_v_adds_the_workers_traceback(tmp_path):
    _blocked_output(tmp_path)
    r = nsgen(*SIMPLE, "-r", str(tmp_path), check=False)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nsgen: error: worker ")
    assert "failed: IsADirectoryError" in lines[0] and "0000_clean_0003.tif" in lines[0]
    v = nsgen(*SIMPLE, "-r", str(tmp_path), "-v", check=False)
    assert v.returncode == 1
    assert "Traceback (most recent call last)" in v.stderr
    assert 'in write_tiff' in v.stderr                   # the worker's own frames
    last = v.stderr.strip().splitlines()[-1]     # the same one line closes it
    assert last.startswith("nsgen: error: worker ") and "IsADirectoryError" in last


def test_ctrl_c_exits_130_and_a_rerun_completes(tmp_path):
    ref = tmp_path / "ref"
    nsgen(*SIMPLE, "-r", str(ref))
    root = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "nsgen", *SIMPLE, "-r", str(root),
                             "--no-progress"], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(root.rglob("*.tif")), "a TIFF written", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG)
    if proc.returncode == 0:      # it finished first: nothing to interrupt
        assert tree_digest(root) == tree_digest(ref)
        return
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == \
        "nsgen: interrupted; rerun the same command to resume"
    nsgen(*SIMPLE, "-r", str(root))
    assert tree_digest(root) == tree_digest(ref)
    assert all_files(root) == all_files(ref)


def test_ellipsoid_objects_end_to_end(tmp_path):
    args = ["-m", "complex", "-N", "32", "-o", "8", "-s", "2", "-f", "4"]
    nsgen(*args, "--object-type", "ellipsoid", "-r", str(tmp_path / "e1"), "--workers", "1")
    nsgen(*args, "--object-type", "ellipsoid", "-r", str(tmp_path / "e2"), "--workers", "2",
          "-C", "5")
    nsgen(*args, "-r", str(tmp_path / "s"))
    m = json.loads((tmp_path / "e1" / "0000" / "manifest.json").read_text())
    assert m["config"]["object-type"] == "ellipsoid"
    axes = np.array([[o["a"], o["b"], o["c"]] for o in m["objects"]])
    assert len(axes) == 8 and np.all(axes.max(axis=1) > axes.min(axis=1))   # not spheres
    assert any(o["phi"] != 0 for o in m["objects"])
    assert tree_digest(tmp_path / "e1") == tree_digest(tmp_path / "e2")
    spheres = json.loads((tmp_path / "s" / "0000" / "manifest.json").read_text())
    assert all(o["a"] == o["b"] == o["c"] for o in spheres["objects"])
    assert tree_digest(tmp_path / "e1") != tree_digest(tmp_path / "s")


#: ``nsgen ARGV`` as its console script runs it (``main()`` reads ``sys.argv``), with an exit
#: handler that prints "teardown" if the interpreter is torn down
_COMMAND = ("import atexit, sys\n"
            "atexit.register(lambda: print('teardown', flush=True))\n"
            "from nsgen.cli import main\n"
            "sys.argv[1:] = {argv!r}\n"
            "sys.exit(main())\n")


def _command(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NSGEN_NO_PROGRESS": "true"}
    return subprocess.run([sys.executable, "-c", _COMMAND.format(argv=list(argv))],
                          capture_output=True, text=True, env=env, timeout=HANG)


def _simple_config(tmp_path: Path) -> Path:
    """A config file naming the run of :data:`SIMPLE` (its mode too: no early forkserver)."""
    ini = tmp_path / "run.ini"
    ini.write_text("[nsgen]\nmode = simple\nsize = 16\nobjects = 3\nsamples = 2\nworkers = 2\n")
    return ini


@pytest.mark.parametrize("how", ["options", "config file"])
def test_a_generation_that_succeeds_ends_without_teardown_its_outputs_complete(tmp_path, how):
    """With or without the early forkserver (a config file may name the mode: none), a
    successful generation skips the interpreter's teardown (no exit handler ran), after its
    summary, with every file and manifest written: ``nsgen check`` passes and the images
    are those of an in-process call."""
    root = tmp_path / "cli"
    args = (SIMPLE if how == "options" else ["-c", str(_simple_config(tmp_path))])
    r = _command(*args, "-r", str(root), "--no-preview")
    assert r.returncode == 0, r.stderr
    assert "teardown" not in r.stdout
    assert r.stderr.startswith("nsgen: made 2 samples (0000..0001): "), r.stderr
    assert "leaked" not in r.stderr
    assert nsgen("check", str(root)).returncode == 0
    assert main([*SIMPLE, "-r", str(tmp_path / "call"), "--no-preview"]) == 0
    assert all_files(root) == all_files(tmp_path / "call")
    assert tree_digest(root) == tree_digest(tmp_path / "call")


@pytest.mark.parametrize("how", ["options", "config file"])
def test_a_generation_that_fails_exits_with_its_status_and_message(tmp_path, how):
    """Bad input (status 2) and an engine failure (status 1) end as any Python program
    does: the exit handlers run, after the one-line message."""
    config = [] if how == "options" else ["-c", str(_simple_config(tmp_path))]
    bad = _command(*config, *SIMPLE, "-N", "-3", "-r", str(tmp_path / "bad"))
    assert bad.returncode == 2 and bad.stdout == "teardown\n"
    assert bad.stderr.startswith("nsgen: error: "), bad.stderr
    _blocked_output(tmp_path / "blocked")
    failed = _command(*config, *SIMPLE, "-r", str(tmp_path / "blocked"))
    assert failed.returncode == 1 and failed.stdout == "teardown\n"
    assert failed.stderr.strip().splitlines()[-1].startswith("nsgen: error: worker ")
