"""The ``nsgen`` command itself: help, -v tracebacks, Ctrl-C, and options end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np

from helpers import HANG, all_files, nsgen, tree_digest, wait_for
from nsgen.cli import COMMANDS

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
