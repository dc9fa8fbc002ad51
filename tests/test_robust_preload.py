"""The robust detector's forkserver preload (nsgen/prep/_robust_preload.py)."""

from __future__ import annotations

from helpers import python_output

from nsgen.prep import _robust_preload
from nsgen.stages.robust import ROBUST_PRELOAD

#: a fresh process: the preload's modules, then pass one's prepare and the three passes on
#: another small uint16 scan; prints the compiled signatures they added (none: all were
#: loaded in the preload)
AFTER_PRELOAD = """
import importlib
import numpy as np
from numba.core.registry import CPUDispatcher
import gc
for name in {modules!r}:
    importlib.import_module(name)
def signatures():
    return sum(len(d.signatures) for d in gc.get_objects() if isinstance(d, CPUDispatcher))
before = signatures()
from nsgen.prep import _robust_preload as p
from nsgen.stages.robust import RobustFeatureStage
RobustFeatureStage.prepare(RobustFeatureStage(None, (1, 1, 4), "<u2", 1))
p.SHAPE = (361, 40, 70)
assert p.load()
print(signatures() - before)
"""


def test_preload_runs_the_passes():
    assert _robust_preload.LOADED and _robust_preload.load()


def test_passes_after_the_preload_load_no_kernel():
    """Everything the passes call on a uint16 scan of another size is loaded already."""
    out = python_output(AFTER_PRELOAD.format(modules=ROBUST_PRELOAD))
    assert out == "0"


def test_a_failure_is_left_to_the_workers(monkeypatch):
    from nsgen.prep import stripe_robust

    def broken(*args):
        raise RuntimeError("no kernel")
    monkeypatch.setattr(stripe_robust, "raw_feature_parts", broken)
    assert _robust_preload.load() is False


def test_the_preload_waits_for_a_kernel_cache(tmp_path, monkeypatch):
    """nsgen mask preloads the robust kernels only when Numba's cache holds them: beside
    the source, or under NUMBA_CACHE_DIR (an empty cache compiles in every process)."""
    from nsgen.prep import _robust_jit
    from nsgen.stages.robust import kernels_cached

    source = tmp_path / "pkg" / "_robust_jit.py"
    (source.parent / "__pycache__").mkdir(parents=True)
    monkeypatch.setattr(_robust_jit, "__file__", str(source))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    cache = tmp_path / "numba-cache"
    (cache / "deep" / "dir").mkdir(parents=True)
    assert not kernels_cached()
    assert not kernels_cached(str(cache))
    (cache / "deep" / "dir" / "_robust_jit.ranked-12.py311.nbi").write_bytes(b"")
    assert kernels_cached(str(cache))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    assert kernels_cached()
    (source.parent / "__pycache__" / "_robust_jit.ranked-12.py311.nbi").write_bytes(b"")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty"))   # Numba looks only there
    assert not kernels_cached()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert kernels_cached()
