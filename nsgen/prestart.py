"""Start the engine's forkserver as the command's first step, before its imports.

A run's :class:`~nsgen.engine.pipeline.Engine` starts its reader and workers through
multiprocessing's *forkserver*: a fresh interpreter that imports the run's preload
(:func:`~nsgen.engine.forkserver.forkserver_preload`: NumPy, the engine, the mode's stages;
~0.15-0.2 CPU-s) before it forks the first process. Started by
:meth:`Engine.start <nsgen.engine.pipeline.Engine.start>`, it began only once the main
process had imported the command's modules (options, runner, mode: ~0.2 s), and the first
stage waited for both, one after the other. The command line (:func:`nsgen.cli.main`)
calls :func:`start_early` first instead: the forkserver imports while the main process
does, and the engine, when it starts, finds it running (a process has one forkserver; its
preload is set by whoever starts it).

The mode's preload must be known before the options are parsed (parsing imports most of
what the forkserver would overlap): :func:`guess_mode` reads ``--mode`` from the
arguments or ``NSGEN_MODE`` from the environment, the default otherwise, and gives up
when a ``--config`` file may name the mode; the forkserver then starts with the engine,
as before. Its preload is the mode's module
(:func:`~nsgen.engine.forkserver.mode_preload`, as :func:`nsgen.runner.generate` gives its
engine), whose ``ENGINE_PRELOAD`` the forkserver imports after it: both lists come from
:mod:`nsgen.engine.forkserver`, which imports only the standard library. A wrong guess
costs time only: the workers import what the forkserver did not.

At the other end, a successful generation run from the command line (:func:`nsgen.cli.main`,
whether or not its forkserver started early) ends with :func:`exit_now`: its engine has
stopped and its manifests are written, and tearing down an interpreter that holds NumPy
took the process ~50 ms more (for whoever waits for it: a shell, a scheduler).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_MODE", "MODES", "exit_now", "guess_mode", "start_early", "start_mask_early",
           "stop_early"]

#: the mode when neither the arguments, the environment nor a config file name one
#: (``--mode``'s default in :mod:`nsgen.options`)
DEFAULT_MODE = "complex"

#: the modes (:data:`nsgen.config.MODES`, known here without importing the configuration)
MODES = ("complex", "simple", "raw", "paired", "dynamic", "patch")


def guess_mode(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The mode a generation command with arguments ``argv`` runs, as its parser will find
    it (command line, then ``NSGEN_MODE``, then a config file, then the default); None when
    a config file may name it, or for help.

    Examples
    --------
    >>> guess_mode(["-m", "simple", "-N", "64"], {}), guess_mode(["--mode=raw"], {})
    ('simple', 'raw')
    >>> guess_mode([], {"NSGEN_MODE": "simple"}), guess_mode(["-r", "out"], {})
    ('simple', 'complex')
    >>> guess_mode(["--config", "run.ini"], {}) is None, guess_mode(["-h"], {}) is None
    (True, True)
    """
    mode = None
    config = "NSGEN_CONFIG" in env
    args = list(argv)
    for i, arg in enumerate(args):
        if arg in ("-h", "--help"):
            return None
        if arg in ("-m", "--mode"):
            if i + 1 == len(args):
                return None   # an error: no engine
            mode = args[i + 1]
        elif arg.startswith("--mode="):
            mode = arg.split("=", 1)[1]
        elif arg.startswith("-m") and not arg.startswith("--"):
            mode = arg[2:]
        elif arg == "--config" or arg.startswith("--config=") or (
                arg.startswith("-c") and not arg.startswith("--")):
            config = True
    if mode is not None:
        return mode
    if env.get("NSGEN_MODE"):
        return env["NSGEN_MODE"]
    return None if config else DEFAULT_MODE


def start_early(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int | None:
    """Start the forkserver with the preload of the mode ``argv`` runs
    (:func:`guess_mode`, :func:`~nsgen.engine.forkserver.mode_preload`) without waiting for
    it; return its process id, or None when nothing was started (no mode known, a config
    file, an error: an optimisation only, the engine starts it then)."""
    mode = guess_mode(argv, os.environ if env is None else env)
    if mode not in MODES:
        return None
    try:
        from nsgen.engine import forkserver
        return forkserver.start(forkserver.mode_preload(mode))
    except Exception:  # noqa: BLE001 - an optimisation only
        return None


def start_mask_early(argv: Sequence[str]) -> int | None:
    """:func:`start_early` for ``nsgen mask ARGV`` (``argv`` without the command's name):
    the forkserver with the preload of the detector it runs
    (:func:`~nsgen.engine.forkserver.guess_mask_detector`,
    :func:`~nsgen.engine.forkserver.mask_preload`: the robust detector's kernels). It
    started with the engine, once the main process had imported ``nsgen.mask``, opened
    the scan and found its bad pixels (~0.6 s of 2 cores' start, one of them idle), and
    the rows pass waited for its preload (~0.9 s) after that."""
    try:
        from nsgen.engine import forkserver
        detector = forkserver.guess_mask_detector(argv)
        if detector is None:
            return None
        return forkserver.start(forkserver.mask_preload(detector))
    except Exception:  # noqa: BLE001 - an optimisation only
        return None


def stop_early(pid: int | None) -> None:
    """End the forkserver :func:`start_early` started (the command is over: every process
    it forked has stopped), so that a command that started no engine (bad options, every
    sample finished) leaves no interpreter importing behind it for whoever reads its
    output streams. The process is left for multiprocessing to reap."""
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:   # gone already
        pass


def exit_now(code: int) -> None:
    """End the process with status ``code`` at once: flush the standard streams and the
    logging handlers, then ``os._exit`` (no interpreter teardown, no exit handlers: call it
    only when the command has released everything it holds). Of the exit handlers it
    skips, it does the one whose absence shows: multiprocessing's temporary directory
    (``pymp-*``, the forkserver's socket) is removed, or every command would leave one in
    the temporary directory (thousands on a node that runs an array job's tasks)."""
    import logging
    import multiprocessing.process
    import shutil
    import sys

    # where multiprocessing.util.get_temp_dir keeps it (its own exit handler reads it there)
    config = getattr(multiprocessing.process.current_process(), "_config", {})
    tempdir = config.get("tempdir")
    if tempdir:
        shutil.rmtree(tempdir, ignore_errors=True)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
            pass
    os._exit(code)
