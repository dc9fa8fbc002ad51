"""Kernel modules imported when first used.

The robust detector's modules (:mod:`nsgen.prep.stripe_robust` and the ``robust_*`` beside
it) hold the layout the main process plans a run with (:func:`~nsgen.prep.stripe_robust.
feature_layout`, :func:`~nsgen.prep.robust_scores.depth_rule`, ...) and the steps the
workers run with compiled kernels. They take their kernel modules (``_robust_jit`` and the
other ``_*_jit`` modules, which import Numba) through :func:`kernels`: the module is
imported the first time one of its attributes is read. The main process, which never calls
a kernel of theirs, then does not import Numba (0.14 s, plus 0.02 s of kernel definitions),
while the engine's forkserver, which loads the kernels, starts beside it
(``tests/test_lazy.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["kernels"]


class _Kernels:
    """The module ``name``, imported by the first attribute read (``importlib``'s import
    locks make that safe from any thread); every read is the module's attribute as it is
    then (a test's ``monkeypatch`` of the module shows)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<kernels of {self._name!r}, imported when used>"


def kernels(name: str) -> Any:
    """The module ``name`` as an object whose attributes are the module's, the module
    imported when the first of them is read.

    Examples
    --------
    >>> import sys
    >>> mod = kernels("nsgen.prep._robust_plan")
    >>> mod.COLUMN_WINDOW, "nsgen.prep._robust_plan" in sys.modules
    (17, True)
    """
    return _Kernels(name)
