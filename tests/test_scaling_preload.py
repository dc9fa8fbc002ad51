"""nsgen.prep._scaling_preload: importing it loads the uint16 kernel, never raises, and
the real modes' forkservers preload it (so their workers start with Numba set up; complex
and simple mode need no Numba: tests/test_modes_complex.py, tests/test_modes_simple.py)."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import nsgen.prep._scaling_jit as scaling_jit
from nsgen.prep import _scaling_preload

from helpers import python_output


def test_import_loads_the_kernel_in_a_fresh_process():
    out = python_output(
        "import sys; import nsgen.prep._scaling_preload as p; "
        "from nsgen.prep._scaling_jit import scale_rows; "
        "print(p.LOADED, len(scale_rows.signatures) > 0)")
    assert out == "True True"


def test_a_failing_kernel_is_left_to_the_workers(monkeypatch):
    def broken(*args):
        raise RuntimeError("no kernel")

    monkeypatch.setattr(scaling_jit, "scale_rows", broken)
    assert _scaling_preload.load() is False          # the forkserver would survive it
    monkeypatch.undo()
    assert _scaling_preload.load() is True


def test_forked_child_scales_with_the_loaded_kernel():
    """A child forked after the import (as the engine's workers are) gets NumPy's integers."""
    from nsgen.prep.scaling import Bounds, to_uint16
    x = np.random.default_rng(5).uniform(-0.5, 1.5, (64, 96))
    expected = np.rint(np.clip((x + 0.25) * (65535 / 1.5), 0, 65535)).astype(np.uint16)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child
        try:
            os.write(w, to_uint16(x, Bounds(-0.25, 1.25)).tobytes())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        got = f.read()
    os.waitpid(pid, 0)
    assert got == expected.tobytes()


@pytest.mark.parametrize("mode", ["raw", "paired", "dynamic", "patch"])
def test_real_modes_preload_numba_and_the_resize_operators_modules(mode):
    """A real mode's forkserver sets Numba up once (the workers' first stage then only loads
    its kernels) and imports the SciPy modules that build the resize operators."""
    names = importlib.import_module(f"nsgen.modes.{mode}").ENGINE_PRELOAD
    assert {"nsgen.prep._scaling_preload", "scipy.sparse", "scipy.ndimage"} <= set(names)
    # the property is about a filled kernel cache: fill it first (on an empty one, compiling
    # imports more of Numba, as it would in any worker; another test may be writing it now)
    python_output("import nsgen.prep._scaling_preload; from nsgen.prep.resize import "
                  "prepare_downsample; prepare_downsample((60, 80), (12, 10))")
    out = python_output("import importlib, sys; " + "; ".join(
        f"importlib.import_module({n!r})" for n in names)
        + "; before = set(sys.modules)"
        + "; from nsgen.prep.resize import prepare_downsample"
        + "; prepare_downsample((60, 80), (12, 10))"
        + "; print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
          "('scipy', 'numba', 'llvmlite')))")
    assert out == "[]"
