"""The files of a scan's vertical shifts (the seed's numbering rule)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nsgen.errors import NsgenError

#: shifts of a scan when ``--shifts`` is not given (the seed's default)
DEFAULT_SHIFTS = 5


def shift_files(first: str | os.PathLike[str], n_shifts: int | None) -> list[str]:
    """File names of the vertical shifts of a scan (seed rule, SCIENCE A.6).

    ``1000.nxs`` -> ``1000.nxs, 1001.nxs, ...``: the numeric file stem is
    incremented by the shift index, keeping its zero padding (``0007.nxs`` ->
    ``0008.nxs``) and its directory.

    Parameters
    ----------
    first : str or os.PathLike
        The file (or TIFF folder) of shift 0.
    n_shifts : int or None
        Number of shifts (>= 1), given by the user: every one of their files must
        exist. ``None`` (``--shifts`` not given): the numbered files that exist, from
        ``first`` on, at most :data:`DEFAULT_SHIFTS` (one scan alone is one shift).

    Returns
    -------
    list of str
        One existing file per shift.

    Raises
    ------
    NsgenError
        ``n_shifts < 1``, a missing file (all missing files are named), or a
        non-numeric stem with ``n_shifts > 1``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("0007.nxs", "0008.nxs"):
    ...     (d / name).touch()
    >>> [pathlib.Path(p).name for p in shift_files(d / "0007.nxs", None)]
    ['0007.nxs', '0008.nxs']
    >>> [pathlib.Path(p).name for p in shift_files(d / "0007.nxs", 1)]
    ['0007.nxs']
    """
    if n_shifts is not None and (int(n_shifts) != n_shifts or n_shifts < 1):
        raise NsgenError(f"the number of shifts must be a positive integer, got {n_shifts}; set --shifts >= 1")
    p = Path(first)
    text = os.fspath(first)
    if not p.exists():
        raise NsgenError(f"scan file '{text}' (shift 0) does not exist; check the file name and directory")
    if n_shifts == 1:
        return [text]
    stem, suffix = (p.name, "") if p.is_dir() else (p.stem, p.suffix)
    if not re.fullmatch(r"[0-9]+", stem):
        if n_shifts is None:
            return [text]
        raise NsgenError(
            f"cannot number {n_shifts} shift files from '{p.name}': its name before '{suffix}' is not a "
            f"number; list the shift files explicitly, one per shift"
        )
    width = len(stem)
    count = DEFAULT_SHIFTS if n_shifts is None else int(n_shifts)
    names = [text] + [str(p.with_name(f"{int(stem) + s:0{width}d}{suffix}")) for s in range(1, count)]
    exists = [os.path.exists(name) for name in names]
    if n_shifts is None:
        return names[:exists.index(False)] if False in exists else names
    if not all(exists):
        found = exists.index(False)
        missing = [Path(n).name for n, e in zip(names, exists) if not e]
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise NsgenError(
            f"--shifts {n_shifts}: shift file{'s' if len(missing) > 1 else ''} {listed} "
            f"(numbered on from '{p.name}' in {p.parent}) {'do' if len(missing) > 1 else 'does'} not "
            f"exist; use --shifts {found} for the files that exist, leave out --shifts to use "
            f"them all, or list the shift files explicitly"
        )
    return names


def shift_note(files: list[str]) -> str:
    """What :func:`shift_files` found without ``--shifts``, for a message.

    Examples
    --------
    >>> shift_note(["/d/1000.nxs"])
    '1 shift (1000.nxs; no numbered shift files after it; --shifts N requires N)'
    >>> shift_note(["/d/1000.nxs", "/d/1001.nxs"])
    '2 shifts (1000.nxs .. 1001.nxs, the numbered files that exist; --shifts N requires N)'
    """
    first = Path(files[0]).name
    if len(files) == 1:
        return f"1 shift ({first}; no numbered shift files after it; --shifts N requires N)"
    return (f"{len(files)} shifts ({first} .. {Path(files[-1]).name}, the numbered files that "
            f"exist; --shifts N requires N)")
