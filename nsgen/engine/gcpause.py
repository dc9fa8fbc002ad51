"""The forkserver's garbage collector: off while it imports its preload, then its objects
frozen for the processes it forks.

The engine's forkserver imports NumPy, SciPy, Numba and the run's kernels before its first
child (:func:`~nsgen.engine.forkserver.forkserver_preload`): some 200,000 new container
objects, and Python's collector ran every few hundred of them (py-spy of ``nsgen mask``: 15 %
of the forkserver's preload in collections, which freed nothing that mattered). Imported
first of that preload, this module turns the collector off; :mod:`nsgen.engine.preload`,
imported after the others, calls :func:`resume`: every object then alive moves to the collector's
permanent generation (``gc.freeze``, as Python's documentation advises before forking: the
children's collections never walk, or write to, the pages of what they inherited) and the
collector is on again, in the forkserver and so in its children. Imported anywhere else it
does nothing.
"""

from __future__ import annotations

import gc

from nsgen.engine.fastexit import in_forkserver

__all__ = ["resume"]


def resume() -> None:
    """Freeze every object now alive (``gc.freeze``) and turn the collector on.

    Examples
    --------
    >>> import gc
    >>> resume()
    >>> gc.isenabled(), gc.get_freeze_count() > 0
    (True, True)
    >>> gc.unfreeze()
    """
    gc.freeze()
    gc.enable()


if in_forkserver():   # pragma: no cover - runs in the forkserver only
    gc.disable()
