"""Kernel modules imported when first used.

The robust detector's modules (:mod:`nsgen.prep.stripe_robust` and the ``robust_*`` beside
it) hold the layout the main process plans a run with (:func:`~nsgen.prep.stripe_robust.
feature_layout`, :func:`~nsgen.prep.robust_scores.depth_rule`, ...) and the steps the
workers run with compiled kernels. They take their kernel modules (``_robust_jit`` and the
other ``_*_jit`` modules, which import Numba) through :func:`kernels`: a module that runs
the first time one of its attributes is read. The main process, which never calls a kernel
of theirs, then does not import Numba (0.14 s, plus 0.02 s of kernel definitions), while
the engine's forkserver, which loads the kernels, starts beside it (``tests/test_lazy.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["kernels"]


def kernels(name: str) -> ModuleType:
    """The module ``name``, run when one of its attributes is first read (at once when it
    is imported already).

    Examples
    --------
    >>> mod = kernels("nsgen.prep._robust_plan")
    >>> mod.__name__, mod.COLUMN_WINDOW
    ('nsgen.prep._robust_plan', 17)
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
