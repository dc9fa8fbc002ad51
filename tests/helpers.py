"""Shared helpers of the test-suite (not tests)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import tifffile

#: the repository root (the folder holding ``nsgen/`` and ``tests/``)
REPO = Path(__file__).resolve().parents[1]
#: the project's shared folder, beside the repository root (real scans in ``data/``)
SHARED = REPO.parent / "shared"
#: seconds an event wait may take before the test is declared hung: generous, since it only
#: catches hangs (a busy machine makes everything slower, never wrong)
HANG = 300.0


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``), where nothing may be skipped."""
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip the test with ``reason``; under ``CI=true`` fail it instead (CI must run it)."""
    if in_ci():
        pytest.fail(f"CI must run this test, but {reason}")
    pytest.skip(reason)


def shared_path(relative: str) -> Path:
    """``relative`` inside the shared folder; skips (fails under CI) when it is missing."""
    path = SHARED / relative
    if not path.exists():
        unavailable(f"{path} is missing: the tests read the project's shared data from "
                    f"../shared beside the repository root ({REPO})")
    return path


def wait_for(condition: Callable[[], Any], what: str, proc: subprocess.Popen | None = None,
             timeout: float = HANG) -> None:
    """Wait until ``condition()`` is true (an event: a file written, a process gone).

    Fails naming ``what`` if ``proc`` exits first, or if nothing happened for ``timeout``
    seconds (a hang, not slowness: the timeout is generous).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited first (status {proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s (hung?)")
        time.sleep(0.01)


def tree_digest(root: Path, pattern: str = "*.tif") -> dict[str, str]:
    """Relative path -> md5 of every file matching ``pattern`` below ``root``."""
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob(pattern))}


def all_files(root: Path) -> list[str]:
    """Every file below ``root`` (relative paths), hidden ones included."""
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def nsgen(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m nsgen`` in a subprocess."""
    env = {**os.environ, "NSGEN_NO_PROGRESS": "true", **kw.pop("env", {})}
    r = subprocess.run([sys.executable, "-m", "nsgen", *args], capture_output=True, text=True,
                       env=env, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"nsgen {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


#: code for :func:`python_output`: ``g``, the geometry of an N=64 sample, and ``p3``, the
#: projection of a 5-sphere foam (the work a synthetic mode's worker is given)
FOAM_PROJECTION = (
    "from nsgen.sim.phantom import random_foam\n"
    "from nsgen.sim.projection import Geometry, project\n"
    "from nsgen.rng import generator\n"
    "g = Geometry.for_size(64)\n"
    "p3 = project(random_foam(generator(4, 'phantom', 0), 5), g)\n")


def python_output(code: str) -> str:
    """Run ``python -c code`` in a fresh interpreter; its standard output, stripped."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def read(path: Path) -> np.ndarray:
    """Read a TIFF as float64."""
    return tifffile.imread(path).astype(np.float64)


def normalised(path: Path | str, rows: tuple[int, int] | None = None) -> np.ndarray:
    """The scan at ``path`` flat-field corrected and logged, ``(angles, rows, columns)``
    float32: its detector rows ``[start, stop)`` (every row when None)."""
    from nsgen.prep.normalise import flat_field_log
    from nsgen.scan import open_scan

    with open_scan(str(path)) as s:
        r = slice(0, s.shape[1]) if rows is None else slice(*rows)
        return flat_field_log(s.read_projections(r), s.flat_mean(r), s.dark_mean(r),
                              sinograms_first=False)
