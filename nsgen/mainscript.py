"""Can nsgen's child processes start from the calling program?

nsgen's engine and ``make-scan`` start their processes with multiprocessing's
*forkserver* method. Each child first imports the main module of the program that
started it, by its file name. A script read from standard input (``python - <<EOF``)
has the file name ``<stdin>``: the child cannot find it and dies before doing any work.
:func:`check_main_importable` says so before any child is started.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

from nsgen.errors import NsgenError

__all__ = ["STDIN_SCRIPT", "check_main_importable"]

STDIN_SCRIPT = (
    "the script that runs nsgen was read from standard input ({name!r}), but nsgen's worker "
    "processes import the main script from its file (multiprocessing forkserver) and cannot "
    "read it again; save the script to a file and run `python script.py` (with the code that "
    "runs nsgen under `if __name__ == \"__main__\":`)")


def check_main_importable(main: ModuleType | None = None) -> None:
    """Raise :class:`~nsgen.errors.NsgenError` if child processes cannot import ``main``.

    Parameters
    ----------
    main : module, optional
        The main module (default ``sys.modules["__main__"]``).

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
    if main is None:
        main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None) is not None:
        return
    path = getattr(main, "__file__", None)
    if path is None or os.path.isfile(path):
        return
    raise NsgenError(STDIN_SCRIPT.format(name=path))
