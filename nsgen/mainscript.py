"""Can nsgen's child processes start from the calling program?

nsgen's engine and ``make-scan`` start their processes with multiprocessing's
*forkserver* method. Each child first imports the main module of the program that
started it, by its file name. A script read from standard input (``python - <<EOF``)
has the file name ``<stdin>``: the child cannot find it and dies before doing any work.
:func:`check_main_importable` says so before any child is started.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from types import ModuleType

from nsgen.errors import NsgenError

__all__ = ["STDIN_SCRIPT", "UNGUARDED_EXIT", "UNGUARDED_SCRIPT", "check_main_importable", "exit_if_importing_main"]

STDIN_SCRIPT = (
    "the script that runs nsgen was read from standard input ({name!r}), but nsgen's worker "
    "processes import the main script from its file (multiprocessing forkserver) and cannot "
    "read it again; save the script to a file and run `python script.py` (with the code that "
    "runs nsgen under `if __name__ == \"__main__\":`)")

#: exit status of a child that found itself starting nsgen's processes while it imported
#: the user's main script (a script without an ``if __name__ == "__main__":`` guard)
UNGUARDED_EXIT = 86
UNGUARDED_SCRIPT = (
    "the script that runs nsgen has no `if __name__ == \"__main__\":` guard: nsgen's "
    "child processes import the main script (multiprocessing forkserver), so unguarded "
    "code would start nsgen again in each of them; put the code that runs nsgen under "
    "`if __name__ == \"__main__\":`")


def exit_if_importing_main() -> None:
    """End this process at once, with status :data:`UNGUARDED_EXIT`, if it is a
    multiprocessing child still importing the main script.

    A script without an ``if __name__ == "__main__":`` guard runs nsgen again in every
    child that imports it; multiprocessing would then raise its "bootstrapping phase"
    error, with a traceback, in each child. Called before nsgen starts processes, this
    ends such a child silently; the parent sees the status and reports the missing guard
    in one line.

    Examples
    --------
    >>> exit_if_importing_main()  # the main process: returns
    """
    if getattr(mp.current_process(), "_inheriting", False):
        os._exit(UNGUARDED_EXIT)


def check_main_importable(main: ModuleType | None = None) -> None:
    """Raise :class:`~nsgen.errors.NsgenError` if child processes cannot import ``main``.

    Parameters
    ----------
    main : module, optional
        The main module (default ``sys.modules["__main__"]``).

    A child process still importing an unguarded main script ends here, silently
    (:func:`exit_if_importing_main`), before it writes anything.

    Raises
    ------
    NsgenError
        ``main`` names a file that does not exist (a script read from standard input).
        A main module without a file (``python -c``, an interactive session) or imported
        by name (``python -m``) is fine: the children do not import it.

    Examples
    --------
    >>> import types
    >>> check_main_importable(types.ModuleType("__main__"))  # python -c: no file
    >>> stdin = types.ModuleType("__main__")
    >>> stdin.__file__ = "<stdin>"
    >>> check_main_importable(stdin)
    Traceback (most recent call last):
    ...
    nsgen.errors.NsgenError: the script that runs nsgen was read from standard input ('<stdin>'), ...
    """
    exit_if_importing_main()
    if main is None:
        main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None) is not None:
        return
    path = getattr(main, "__file__", None)
    if path is None or os.path.isfile(path):
        return
    raise NsgenError(STDIN_SCRIPT.format(name=path))
