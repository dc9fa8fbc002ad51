"""The ``nsgen`` command: generation by default, plus a few subcommands.

``nsgen [--config FILE] [options]``   generate a dataset (see ``nsgen --help``)
``nsgen <command> ...``                one of :data:`COMMANDS`

Bad input ends with one line ``nsgen: error: <problem>; <fix>`` and exit status 2,
before anything is written.
"""

from __future__ import annotations

import errno
import importlib
import logging
import signal
import sys
import time
from typing import Callable, Sequence

from nsgen.errors import NsgenError, disk_full

#: subcommand -> "module:function"; each function takes argv (without the command name)
COMMANDS: dict[str, tuple[str, str]] = {
    "mask": ("nsgen.mask:main", "detect stripes in a scan, append the mask to an .npz archive"),
    "make-scan": ("nsgen.io.scan_writer:main", "write a synthetic NeXus scan (tests, benchmarks)"),
    "check": ("nsgen.check:main", "verify a dataset against its manifests"),
    "preview": ("nsgen.preview:main", "draw a PNG contact sheet of a sample's pairs"),
    "submit": ("nsgen.slurm:main", "submit an array job, one sample per task"),
    "inspect": ("nsgen.inspect:main", "show what nsgen finds in a scan (writes nothing)"),
}

USAGE_TAIL = "\n".join(f"  nsgen {name:<10} {help_}" for name, (_, help_) in COMMANDS.items())


def _resolve(target: str) -> Callable[[Sequence[str]], int | None]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


class _StderrHandler(logging.Handler):
    """``nsgen: <message>`` lines on the current ``sys.stderr`` (looked up per message)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"nsgen: {record.getMessage()}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # pragma: no cover - stderr closed
            self.handleError(record)


def quiet_stderr() -> None:
    """Remove what :func:`log_to_stderr` added (the command is done)."""
    logger = logging.getLogger("nsgen")
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(h)


def log_to_stderr(verbose: bool) -> None:
    """Show the ``nsgen`` logger on stderr, one line per message: the command's format.

    NOTICE and above always, INFO (stage messages) only when ``verbose``.
    """
    from nsgen.runner import NOTICE, logger
    quiet_stderr()
    level = logging.INFO if verbose else NOTICE
    handler = _StderrHandler(level)
    logger.addHandler(handler)
    logger.setLevel(level)


def generate_main(argv: Sequence[str]) -> int:
    """Parse options and generate the dataset (the only place that installs a signal
    handler: SIGTERM from a scheduler unwinds like Ctrl-C)."""
    from nsgen.config import parse_config
    from nsgen.engine.pipeline import install_sigterm_handler
    from nsgen.runner import generate

    config = parse_config(argv)
    log_to_stderr(config.verbose)
    install_sigterm_handler()
    t0 = time.monotonic()
    try:
        done = generate(config)
    except OSError as exc:      # manifests, previews, state records of the main process
        if exc.errno == errno.ENOSPC:
            raise disk_full(exc.filename or config.root) from exc
        raise
    if not config.quiet:
        from nsgen.summary import summary_line
        print(summary_line(config, done, time.monotonic() - t0), file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nsgen`` console script and ``python -m nsgen``."""
    command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        from nsgen import __version__
        print(f"nsgen {__version__}")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        from nsgen.config import build_parser
        build_parser().print_help()
        print(f"\nsubcommands:\n{USAGE_TAIL}")
        return 0
    generation = command_line and not (argv and argv[0] in COMMANDS)
    # from the command line, a generation's forkserver starts first: it imports while this
    # process does (nsgen.prestart; not when a config file may name the mode)
    early = None
    if generation:
        from nsgen.prestart import start_early
        early = start_early(argv)
    elif command_line and argv[0] == "mask":   # its engine's forkserver too
        from nsgen.prestart import start_mask_early
        early = start_mask_early(argv[1:])
    try:
        code = _main(argv)
    finally:
        quiet_stderr()   # an in-process caller keeps its own logging set-up
        if early is not None:
            from nsgen.prestart import stop_early
            stop_early(early)
    if generation and code == 0:
        # a generation from the command line succeeded: its engine has stopped (every
        # output written and closed by its processes), its manifests are written (closed,
        # fsynced), its finishing thread joined and the summary printed; the process ends
        # without tearing its interpreter down (exit_now flushes the streams and logging).
        # A failure (an exception, a status but 0) ends as any Python program does.
        from nsgen.prestart import exit_now
        exit_now(code)
    return code


def _main(argv: list[str]) -> int:
    try:
        if argv and argv[0] in COMMANDS:
            code = _resolve(COMMANDS[argv[0]][0])(argv[1:])
        else:
            code = generate_main(argv)
    except NsgenError as exc:
        print(f"nsgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nsgen: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:   # a scheduler's stop (install_sigterm_handler)
            print("nsgen: stopped by SIGTERM; rerun the same command to resume",
                  file=sys.stderr)
        raise
    except Exception as exc:  # engine failures: one line, traceback only with -v
        from nsgen.engine.pipeline import EngineError
        if isinstance(exc, EngineError):
            tb = getattr(exc, "remote_traceback", "")
            if tb and ("-v" in argv or "--verbose" in argv):
                print(tb, file=sys.stderr)
            print(f"nsgen: error: {exc}", file=sys.stderr)
            return 1
        raise
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
