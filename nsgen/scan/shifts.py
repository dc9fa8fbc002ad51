"""The files of a scan's vertical shifts (the seed's numbering rule)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nsgen.errors import NsgenError


def shift_files(first: str | os.PathLike[str], n_shifts: int) -> list[str]:
    """File names of the vertical shifts of a scan (seed rule, SCIENCE A.6).

    ``1000.nxs`` -> ``1000.nxs, 1001.nxs, ...``: the numeric file stem is
    incremented by the shift index, keeping its zero padding (``0007.nxs`` ->
    ``0008.nxs``) and its directory.

    Parameters
    ----------
    first : str or os.PathLike
        The file of shift 0.
    n_shifts : int
        Number of shifts (>= 1).

    Returns
    -------
    list of str
        One existing file per shift.

    Raises
    ------
    NsgenError
        ``n_shifts < 1``, a missing file, or a non-numeric stem with
        ``n_shifts > 1``.

    Examples
    --------
    >>> shift_files("0007.nxs", 2)  # doctest: +SKIP
    ['0007.nxs', '0008.nxs']
    """
    if int(n_shifts) != n_shifts or n_shifts < 1:
        raise NsgenError(f"the number of shifts must be a positive integer, got {n_shifts}; set --shifts >= 1")
    p = Path(first)
    text = os.fspath(first)
    if not p.is_file():
        raise NsgenError(f"scan file '{text}' (shift 0) does not exist; check the file name and directory")
    if n_shifts == 1:
        return [text]
    stem, suffix = p.stem, p.suffix
    if not re.fullmatch(r"[0-9]+", stem):
        raise NsgenError(
            f"cannot number {n_shifts} shift files from '{p.name}': its name before '{suffix}' is not a "
            f"number; list the shift files explicitly, one per shift"
        )
    width = len(stem)
    names = [text] + [str(p.with_name(f"{int(stem) + s:0{width}d}{suffix}")) for s in range(1, int(n_shifts))]
    for s, name in enumerate(names):
        if not os.path.isfile(name):
            raise NsgenError(
                f"shift {s} file '{name}' does not exist (shift files are numbered on from '{p.name}'); "
                f"use --shifts {s} or list the shift files explicitly"
            )
    return names
