"""The robust detector's forkserver preload (nsgen/prep/_robust_preload.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    assert _robust_preload.load()
    assert _robust_preload._cached()   # loaded, so cached: a new import loads them


def test_no_preload_without_a_cache(monkeypatch):
    """On an outdated or empty cache the forkserver loads no kernel (the workers compile)."""
    import importlib

    from nsgen.stages import robust

    monkeypatch.setattr(robust, "kernels_cached", lambda cache_dir=None: False)
    assert not _robust_preload._cached()
    assert importlib.reload(_robust_preload).LOADED is False


def test_passes_after_the_preload_load_no_kernel():
    """Everything the passes call on a uint16 scan of another size is loaded already."""
    out = python_output(AFTER_PRELOAD.format(modules=ROBUST_PRELOAD))
    assert out == "0"


#: a fresh process: the three passes compiled apart, in turn, then the whole warm-up;
#: prints the passes and the signatures the warm-up added (none: the passes' stand-in
#: inputs compile what the real passes need)
IN_TURN = """
import gc
from numba.core.registry import CPUDispatcher
def signatures():
    return sum(len(d.signatures) for d in gc.get_objects() if isinstance(d, CPUDispatcher))
from nsgen.prep import _robust_preload as p
print(" ".join(p.compile_in_turn()))
before = signatures()
assert p.load()
print(signatures() - before)
"""


def test_the_passes_compiled_in_turn_leave_no_kernel_to_the_workers():
    out = python_output(IN_TURN).splitlines()
    assert out == ["robust-features robust-offsets robust-decide", "0"]


def test_a_pass_that_fails_to_compile_is_left_to_the_workers(monkeypatch):
    from nsgen.prep import robust_features

    def broken(*args):
        raise RuntimeError("no kernel")
    monkeypatch.setattr(robust_features, "raw_feature_parts", broken)
    assert _robust_preload.compile_in_turn() == ["robust-features", "robust-offsets",
                                                 "robust-decide"]


def test_pass_one_prepares_by_taking_turns_only_where_nothing_is_loaded(monkeypatch):
    from nsgen.stages.robust import RobustFeatureStage
    ran = []
    monkeypatch.setattr(_robust_preload, "compile_in_turn", lambda: ran.append(1))
    for loaded in (True, False):
        monkeypatch.setattr(_robust_preload, "LOADED", loaded)
        RobustFeatureStage.prepare(RobustFeatureStage(None, (1, 1, 4), "<u2", 1))
    assert ran == [1]


def test_a_failure_is_left_to_the_workers(monkeypatch):
    from nsgen.prep import robust_features

    def broken(*args):
        raise RuntimeError("no kernel")
    monkeypatch.setattr(robust_features, "raw_feature_parts", broken)
    assert _robust_preload.load() is False


def _index(path, stamp, overloads=None):
    """A Numba cache index at ``path`` for the source stamp ``stamp`` (as Numba writes one)."""
    from numba.core.caching import IndexDataCacheFile

    path.parent.mkdir(parents=True, exist_ok=True)
    IndexDataCacheFile(str(path.parent), path.name[:-len(".nbi")], stamp)._save_index(
        {"entry": "x.1.nbc"} if overloads is None else overloads)


def _kernel_source(tmp_path: Path, monkeypatch) -> tuple[Path, object]:
    """A stand-in for ``_robust_jit.py`` under ``tmp_path`` (with its ``__pycache__``), the
    module's ``__file__`` pointing there and no NUMBA_CACHE_DIR: the source and the stamp
    Numba's cache index of its kernels would hold."""
    from nsgen.prep import _robust_jit
    from nsgen.prep._jit import cache_stamp

    source = tmp_path / "pkg" / "_robust_jit.py"
    (source.parent / "__pycache__").mkdir(parents=True)
    source.write_text("# the kernels\n")
    monkeypatch.setattr(_robust_jit, "__file__", str(source))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    stamp = cache_stamp(_robust_jit.bin_means.py_func, source)
    assert stamp is not None
    return source, stamp


def test_the_preload_waits_for_a_kernel_cache(tmp_path, monkeypatch):
    """nsgen mask preloads the robust kernels only when Numba's cache holds them: beside
    the source, or under NUMBA_CACHE_DIR (an empty cache compiles in every process)."""
    from nsgen.stages.robust import kernels_cached

    source, stamp = _kernel_source(tmp_path, monkeypatch)
    cache = tmp_path / "numba-cache"
    (cache / "deep" / "dir").mkdir(parents=True)
    assert not kernels_cached()
    assert not kernels_cached(str(cache))
    _index(cache / "deep" / "dir" / "_robust_jit.ranked-12.py311.nbi", stamp)
    assert kernels_cached(str(cache))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    assert kernels_cached()
    _index(source.parent / "__pycache__" / "_robust_jit.ranked-12.py311.nbi", stamp)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty"))   # Numba looks only there
    assert not kernels_cached()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert kernels_cached()


def test_the_user_cache_of_a_read_only_package_counts(tmp_path, monkeypatch):
    """Where the package is read-only, nsgen.prep._jit gives Numba a user cache directory
    (numba.config.CACHE_DIR, no NUMBA_CACHE_DIR): Numba caches there, and an index there
    counts; the __pycache__ beside the source then does not."""
    import numba

    from nsgen.stages.robust import kernels_cached

    source, stamp = _kernel_source(tmp_path, monkeypatch)
    _index(source.parent / "__pycache__" / "_robust_jit.ranked-12.py311.nbi", stamp)
    assert kernels_cached()
    cache = tmp_path / "user-cache"
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(cache), raising=False)
    assert not kernels_cached()
    _index(cache / "pkg" / "_robust_jit.ranked-12.py311.nbi", stamp)
    assert kernels_cached()


def test_an_outdated_kernel_cache_is_not_cached(tmp_path, monkeypatch):
    """An index Numba would not load counts as no cache: another source stamp (an edited
    source), no entry, another Numba, not an index."""
    from nsgen.prep import _robust_jit
    from nsgen.prep._jit import cache_stamp
    from nsgen.stages.robust import kernels_cached

    source, stamp = _kernel_source(tmp_path, monkeypatch)
    index = source.parent / "__pycache__" / "_robust_jit.ranked-12.py311.nbi"
    _index(index, stamp)
    assert kernels_cached()
    source.write_text("# the kernels, edited\n")
    assert cache_stamp(_robust_jit.bin_means.py_func, source) != stamp
    assert not kernels_cached()
    _index(index, cache_stamp(_robust_jit.bin_means.py_func, source), overloads={})
    assert not kernels_cached()
    index.write_bytes(b"not an index")
    assert not kernels_cached()


def test_the_kernels_cache_agrees_with_numba():
    """The real kernels: cached once Numba has loaded or compiled one of them (with
    nsgen's locator: the stamp holds every kernel source's digest)."""
    from nsgen.prep.robust_features import bin_means
    from nsgen.stages.robust import kernels_cached

    bin_means(np.zeros((4, 1, 3), np.float32))   # a kernel of _robust_jit.py
    assert kernels_cached()
