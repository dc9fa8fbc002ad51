"""nsgen.prep._jit: loaders taken in turn by processes sharing a kernel cache; kernels
compiled again when any module they hold code of changes."""

from __future__ import annotations

import ast
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np
import pytest

from nsgen.prep import _jit


def lock_path(directory: Path, name: str) -> Path:
    where = str(getattr(numba.config, "CACHE_DIR", "") or Path(_jit.__file__).parent)
    return directory / f"nsgen-jit-{hashlib.sha1(where.encode()).hexdigest()[:12]}-{name}.lock"


def test_a_loader_held_elsewhere_is_left_for_later(tmp_path):
    """Another holder of "a" (its own open file: flock conflicts like another process's):
    "b" runs first, "a" once it is released; each runs exactly once."""
    fd = os.open(lock_path(tmp_path, "a"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ran: list[str] = []
    b_done = threading.Event()

    def load_b() -> None:
        ran.append("b")
        b_done.set()

    order: list[list[str]] = []
    t = threading.Thread(target=lambda: order.append(
        _jit.load_in_turn([("a", lambda: ran.append("a")), ("b", load_b)], tmp_path)))
    t.start()
    assert b_done.wait(60)
    assert ran == ["b"]                 # "a" waits for its lock
    os.close(fd)                        # released
    t.join(60)
    assert ran == ["b", "a"] and order == [["b", "a"]]


def test_free_loaders_run_in_order_and_a_failing_one_raises(tmp_path):
    ran: list[str] = []
    assert _jit.load_in_turn([("x", lambda: ran.append("x")), ("y", lambda: ran.append("y"))],
                             tmp_path) == ["x", "y"]

    def boom() -> None:
        raise RuntimeError("compile failed")

    try:
        _jit.load_in_turn([("z", boom)], tmp_path)
    except RuntimeError as exc:
        assert "compile failed" in str(exc)
    else:
        raise AssertionError("the loader's error must reach the caller")
    # its lock was released: the next call takes it at once
    assert _jit.load_in_turn([("z", lambda: None)], tmp_path) == ["z"]


def _nsgen_imports(path: Path) -> set[str]:
    """The nsgen modules a module's source imports (``from nsgen.x import y``, ``from
    nsgen.x import module``, ``import nsgen.x``), as paths under the package."""
    package = Path(_jit.__file__).resolve().parents[1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nsgen."):
            names.add(node.module or "")
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("nsgen."))
    rels = {name.removeprefix("nsgen.").replace(".", "/") + ".py" for name in names}
    return {rel for rel in rels if (package / rel).is_file()}


def test_the_jit_sources_are_every_kernel_module_and_what_they_import():
    """Every module that compiles a kernel is in JIT_SOURCES, and so is every nsgen module
    such a module imports (its functions and constants are compiled into the kernels)."""
    package = Path(_jit.__file__).resolve().parents[1]
    kernels = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if re.search(r"\bn(?:umba|b)?\.?njit\b|@njit\b", p.read_text())}
    assert kernels and kernels <= set(_jit.JIT_SOURCES)
    for rel in _jit.JIT_SOURCES:
        assert _nsgen_imports(package / rel) <= set(_jit.JIT_SOURCES), rel


def test_no_kernel_source_calls_what_numba_computes_with_blas():
    """The forkserver sets Numba up without its BLAS check (_jit.without_blas_probe): no
    kernel may call what then computes otherwise (np.correlate, np.convolve) or fails
    (np.dot, np.vdot, np.inner, np.linalg, the @ operator)."""
    package = Path(_jit.__file__).resolve().parents[1]
    blas = {"correlate", "convolve", "dot", "vdot", "inner", "linalg", "matmul"}
    for rel in _jit.JIT_SOURCES:
        for node in ast.walk(ast.parse((package / rel).read_text())):
            assert not (isinstance(node, ast.Attribute) and node.attr in blas
                        and isinstance(node.value, ast.Name) and node.value.id == "np"), rel
            assert not isinstance(node, ast.MatMult), rel


_NO_BLAS = """
import sys
from nsgen.prep import _jit
with _jit.without_blas_probe():
    from nsgen.prep._scaling_preload import LOADED
import numba.np.arraymath as am
print(LOADED, am._HAVE_BLAS, "scipy.linalg" in sys.modules, _jit.BLAS_PROBE in sys.modules)
import scipy.linalg.cython_blas
print("imports", _jit.BLAS_PROBE in sys.modules)
"""


def test_numba_is_set_up_without_its_blas_check_and_the_block_is_lifted():
    out = subprocess.run([sys.executable, "-P", "-c", _NO_BLAS], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "False", "False", "False", "imports", "True"]


#: calls a kernel of _patches_jit that compiles _normalise_jit's normalise_row into itself
#: (the patches are left alone: r0 is past the last angle); prints the first value
_PROBE = """
import numpy as np
from nsgen.prep._patches_jit import normalise_column_extremes
raw = np.full((2, 1, 8), 100, np.uint16)
row = np.zeros(8, np.float32)
dark, lo_px, hi_px, ln_den = row, row + 1, row + 1e6, row + 10
sino = np.zeros((2, 8), np.float32)
lo = np.zeros((1, 1), np.float32)
normalise_column_extremes(raw, 0, dark, lo_px, hi_px, ln_den, sino, 5, 0, 1, 1, 1, 1, lo, lo)
print("value", repr(float(sino[0, 0])))
"""


def test_a_kernel_is_compiled_again_when_a_function_it_inlines_changes(tmp_path):
    """In a copy of the package, with its kernels cached beside it (Numba's default): a run
    compiles the kernel and caches it, a second loads it from the cache, and after an edit
    of ``normalise_row`` (another module than the kernel's) the next run computes with
    the edited function (Numba alone loaded the stale kernel: its cache checked the
    kernel's own file only)."""
    shutil.copytree(Path(_jit.__file__).resolve().parents[1], tmp_path / "nsgen",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(tmp_path), NUMBA_DEBUG_CACHE="1")

    def run() -> tuple[float, str]:
        out = subprocess.run([sys.executable, "-P", "-c", _PROBE], capture_output=True,
                             text=True, env=env, cwd=tmp_path, check=True).stdout
        value = [line for line in out.splitlines() if line.startswith("value ")]
        return float(value[0].split()[1]), out

    first, out = run()
    assert first == pytest.approx(10 - np.log(100), abs=1e-5)
    assert "normalise_column_extremes" in out and "data saved" in out
    again, out = run()
    assert again == first and "data loaded" in out and "data saved" not in out
    source = tmp_path / "nsgen" / "prep" / "_normalise_jit.py"
    text = source.read_text()
    call = "        out[c] = neg_log(src[c], dark[c], lo[c], hi[c], ln_den[c])\n"
    assert text.count(call) == 1
    source.write_text(text.replace(call, call.rstrip("\n") + " + np.float32(1)\n"))
    edited, out = run()
    assert edited == float(np.float32(first) + np.float32(1))
    assert "data saved" in out
