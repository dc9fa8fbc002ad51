"""The forkserver imports what the run's modes list in their ``ENGINE_PRELOAD``.

The engine's forkserver imports the run's ``preload`` before its first child starts
(:class:`~nsgen.engine.pipeline.Engine`), and this module after them: it imports, in turn,
every module that a mode module already imported there (``nsgen.modes.*``) names in its
``ENGINE_PRELOAD``. So the main process can start the engine with the mode's module name
alone (:func:`nsgen.runner.generate`), before it has imported the mode itself: importing a
real mode took the main process 0.09 s, during which the forkserver, the longest start-up
step (~1 s of imports), could not begin. Then it turns the garbage collector, off during the
forkserver's imports, on again (:func:`nsgen.engine.gcpause.resume`). Imported anywhere else,
it does nothing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType

from nsgen.engine.fastexit import in_forkserver
from nsgen.engine.forkserver import MODE_PACKAGE
from nsgen.engine.gcpause import resume

__all__ = ["listed"]


def listed(modules: Iterable[ModuleType]) -> list[str]:
    """The ``ENGINE_PRELOAD`` of every mode module of ``modules`` (``nsgen.modes.*``), in
    order, without repeats.

    Examples
    --------
    >>> import nsgen.modes.raw
    >>> names = listed([nsgen.modes.raw])
    >>> names[0], "nsgen.prep._resize_jit" in names
    ('nsgen.modes.raw', True)
    """
    out: dict[str, None] = {}
    for mod in modules:
        if mod.__name__.startswith(f"{MODE_PACKAGE}."):
            out.update(dict.fromkeys(getattr(mod, "ENGINE_PRELOAD", ())))
    return list(out)


def _import_listed() -> None:   # pragma: no cover - runs in the forkserver only
    for name in listed([m for m in list(sys.modules.values()) if isinstance(m, ModuleType)]):
        try:
            importlib.import_module(name)
        except ImportError:   # as the forkserver treats a preload: the workers report it
            pass


if in_forkserver():   # pragma: no cover - runs in the forkserver only
    _import_listed()
    resume()   # (the imports done: the garbage collector on again, their objects frozen)
