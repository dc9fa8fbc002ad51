"""Shared helpers of the test-suite (not tests)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile


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


def read(path: Path) -> np.ndarray:
    """Read a TIFF as float64."""
    return tifffile.imread(path).astype(np.float64)
