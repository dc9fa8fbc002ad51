"""The robust detector's forkserver preload (nsgen/prep/_robust_preload.py)."""

from __future__ import annotations

import subprocess
import sys

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
    out = subprocess.run([sys.executable, "-c", AFTER_PRELOAD.format(modules=ROBUST_PRELOAD)],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0"


def test_a_failure_is_left_to_the_workers(monkeypatch):
    from nsgen.prep import stripe_robust

    def broken(*args):
        raise RuntimeError("no kernel")
    monkeypatch.setattr(stripe_robust, "raw_feature_parts", broken)
    assert _robust_preload.load() is False
