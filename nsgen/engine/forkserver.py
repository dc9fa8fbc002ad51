"""What the engine's forkserver imports (its ``preload``), and starting it before an engine.

The :class:`~nsgen.engine.pipeline.Engine` starts its reader and workers through
multiprocessing's *forkserver*, an interpreter that imports the run's preload
(:func:`forkserver_preload`) once before it forks the first process; a process has one
forkserver, whose preload is set by whoever starts it. The engine starts it with its first
process; the command line starts it earlier, before its own imports
(:func:`nsgen.prestart.start_early` calls :func:`start`). Both take the list from
:func:`forkserver_preload`, and a run of a mode gives its mode's :func:`mode_preload`
(:func:`nsgen.runner.generate`, the command line): the early forkserver imports what the
engine's own would have.

This module has no import-time effect and imports only the standard library: the command
line imports it first of all, and the forkserver (through :mod:`nsgen.engine.pipeline`)
before the run's modes. :mod:`nsgen.engine.preload`, which acts when the forkserver imports
it, must come after them: it is in the list, not imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LARIX_OPTIONS", "MODE_PACKAGE", "ROBUST_PRELOAD", "forkserver_preload",
           "mask_preload", "mode_preload", "start"]

#: the package of the mode modules, whose ``ENGINE_PRELOAD`` :mod:`nsgen.engine.preload`
#: imports in the forkserver
MODE_PACKAGE = "nsgen.modes"


#: what ``nsgen mask`` with the robust detector gives its engine: the stages and the compiled
#: kernels of its three passes (:mod:`nsgen.prep._robust_preload`, which loads them when
#: Numba's cache holds them: :func:`nsgen.stages.robust.kernels_cached`)
ROBUST_PRELOAD = ("nsgen.stages.robust", "nsgen.prep._robust_preload")
#: the options of ``nsgen mask`` that select Larix's detector when none is named (here, where
#: the command line reads them before importing NumPy; :data:`nsgen.prep.detect.LARIX_OPTIONS`)
LARIX_OPTIONS = ("--median-size", "--radius", "--threshold", "--min-stripe-length",
                 "--min-stripe-width", "--sensitivity", "--weights")


def mask_preload(detector: str) -> list[str]:
    """The ``preload`` ``nsgen mask`` gives its engine for ``detector``.

    Examples
    --------
    >>> mask_preload("larix"), mask_preload("robust")[0]
    ([], 'nsgen.stages.robust')
    """
    return [] if detector == "larix" else list(ROBUST_PRELOAD)


def guess_mask_detector(argv: Sequence[str]) -> str | None:
    """The detector ``nsgen mask ARGV`` runs, as its parser will find it (``--detector``,
    else ``larix`` when one of :data:`LARIX_OPTIONS` is given, else the default, called
    ``robust`` here: any detector but Larix has the same preload); None for help.

    Examples
    --------
    >>> guess_mask_detector(["--h5", "s.nxs", "-a", "m.npz"])
    'robust'
    >>> guess_mask_detector(["--threshold=0.5"]), guess_mask_detector(["--detector", "larix"])
    ('larix', 'larix')
    >>> guess_mask_detector(["--detector=larix"]), guess_mask_detector(["-h"]) is None
    ('larix', True)
    """
    larix = False
    args = list(argv)
    for i, arg in enumerate(args):
        if arg in ("-h", "--help"):
            return None
        name, eq, value = arg.partition("=")
        if name == "--detector":
            if eq:
                return value
            return args[i + 1] if i + 1 < len(args) else None
        larix = larix or name in LARIX_OPTIONS
    return "larix" if larix else "robust"


def mode_preload(mode: str) -> list[str]:
    """The ``preload`` a run of ``mode`` gives its engine: the mode's module, whose
    ``ENGINE_PRELOAD`` the forkserver imports after it (:mod:`nsgen.engine.preload`).

    Examples
    --------
    >>> mode_preload("simple")
    ['nsgen.modes.simple']
    """
    return [f"{MODE_PACKAGE}.{mode}"]


def forkserver_preload(preload: Sequence[str]) -> list[str]:
    """The modules the engine's forkserver imports, in order: first :mod:`nsgen.engine.gcpause`
    (no garbage collection during the imports), what every child needs, the run's
    ``preload``, :mod:`nsgen.engine.preload` (what the modes among them list in
    ``ENGINE_PRELOAD``) and last :mod:`nsgen.engine.fastexit` (the forkserver then ends
    without tearing its interpreter down).

    Examples
    --------
    >>> forkserver_preload(["nsgen.modes.raw"])  # doctest: +NORMALIZE_WHITESPACE
    ['nsgen.engine.gcpause', 'nsgen.engine.pipeline', 'numpy', 'nsgen.modes.raw',
     'nsgen.engine.preload', 'nsgen.engine.fastexit']
    """
    return ["nsgen.engine.gcpause", "nsgen.engine.pipeline", "numpy", *preload,
            "nsgen.engine.preload", "nsgen.engine.fastexit"]


def start(preload: Sequence[str]) -> int | None:
    """Start this process's forkserver now, importing :func:`forkserver_preload`
    ``(preload)``, without waiting for its imports; return its process id (None if
    multiprocessing does not tell). An engine started later with the same ``preload``
    uses it. Errors are the caller's (an optimisation: it may ignore them)."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    mp.get_context("forkserver").set_forkserver_preload(forkserver_preload(preload))
    forkserver.ensure_running()
    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    return pid if isinstance(pid, int) else None
