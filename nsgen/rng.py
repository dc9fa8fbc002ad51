"""Explicit, reproducible random streams (docs/science.md A.1).

Every random draw in nsgen comes from a generator derived from the run seed and a
key naming what the numbers are for, e.g. ``("photons", sample, row)``. The
stream therefore depends only on *what* is drawn, never on which process draws
it, in which order, or how the work was chunked.
"""

from __future__ import annotations

import zlib

# NumPy 2 imports numpy.random lazily, on the first ``np.random``; two threads doing that at
# once (complex mode draws its detector on a thread while the phantom is drawn) can recurse
# in NumPy's lazy import.  Importing the names here does it once, at import time.
from numpy.random import PCG64, Generator, SeedSequence


def _word(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    part = int(part)
    if part < 0:
        raise ValueError(f"random-stream keys must be non-negative, got {part}")
    return part


def generator(seed: int, *key: int | str) -> Generator:
    """Return the generator for ``key`` under run seed ``seed``.

    Parameters
    ----------
    seed : int
        The run seed (``--seed``), non-negative.
    *key : int or str
        What the stream is for; strings are hashed with CRC-32, integers are used
        as they are.

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator seeded by ``SeedSequence([seed, *key])``.

    Examples
    --------
    >>> a = generator(0, "photons", 3, 17).random(2)
    >>> b = generator(0, "photons", 3, 17).random(2)
    >>> bool((a == b).all())
    True
    """
    words = [_word(seed)] + [_word(k) for k in key]
    return Generator(PCG64(SeedSequence(words)))
