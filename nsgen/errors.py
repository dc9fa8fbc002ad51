"""The one exception type that means "the user asked for something impossible"."""

from __future__ import annotations

import os
from typing import Any, Callable


class NsgenError(ValueError):
    """Bad input or impossible option value.

    The message is one line that names the problem and the fix. The command line
    prints it as ``nsgen: error: <message>`` and exits with status 2, having
    written nothing. It is a :class:`ValueError`, so library callers can catch either.

    Examples
    --------
    >>> issubclass(NsgenError, ValueError)
    True
    """


def attempt(problems: list[str], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None with its :class:`NsgenError` line added to ``problems`` (to
    report every invalid option in one line).

    Examples
    --------
    >>> def positive(v):
    ...     if v <= 0:
    ...         raise NsgenError(f"--n must be positive, got {v}")
    ...     return v
    >>> problems = []
    >>> attempt(problems, positive, 3), attempt(problems, positive, -1), problems
    (3, None, ['--n must be positive, got -1'])
    """
    try:
        return fn(*args)
    except NsgenError as exc:
        problems.append(str(exc))
        return None


def disk_full(path: str | os.PathLike[str]) -> NsgenError:
    """The error for a write to ``path`` that found its file system full (``ENOSPC``):
    names the mount point and its free space, and the fix (free space, rerun to resume).

    Examples
    --------
    >>> str(disk_full("/proc/x")).startswith("no space left on /proc (")
    True
    """
    where = os.path.abspath(path)
    mount = where
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    try:
        st = os.statvfs(mount)
        free = f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB free of " \
               f"{st.f_blocks * st.f_frsize / 2**20:.1f} MiB"
    except OSError:
        free = "free space unknown"
    return NsgenError(f"no space left on {mount} ({free}) while writing {where}; free space "
                      f"there (or choose another --root) and rerun the same command: it "
                      f"resumes where it stopped")
