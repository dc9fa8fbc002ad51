"""The stripe detectors by name: ``robust`` (the default) and ``larix`` (the reference).

* ``robust``: decisions from each sinogram's own noise (:mod:`nsgen.prep.stripe_robust`).
* ``larix``: Larix generation 2 (:mod:`nsgen.prep.stripe_detect`), bit-exact with the
  reference and kept so; the seed's detector. It over-detects on realistic scans (its
  fixed weight threshold sits inside the background's weight distribution), see
  ``docs/detection.md``. Larix's own parameters (:data:`LARIX_OPTIONS`) or its weights
  select it when no detector is named (:func:`choose_detector`).

Both run exactly on row chunks with halos: :func:`halo` rows on each side of a chunk make
the chunk's mask identical to the whole volume's.

Examples
--------
>>> check_detector("larix")
'larix'
>>> check_detector("vo")
Traceback (most recent call last):
...
nsgen.errors.NsgenError: unknown --detector 'vo'; choose one of: robust, larix
>>> choose_detector(None), choose_detector(None, ["--threshold"]), choose_detector("robust")
('robust', 'larix', 'robust')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nsgen.engine import forkserver
from nsgen.errors import NsgenError
from nsgen.prep.detect_params import DetectParams

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "LARIX_OPTIONS", "check_detector",
           "choose_detector", "detect_rows", "detect_volume", "halo"]

#: detector names, the default first (docs/detection.md: why robust)
DETECTORS = ("robust", "larix")
DEFAULT_DETECTOR = DETECTORS[0]

#: options only Larix has (``nsgen mask``): given without ``--detector``, they select it
#: (kept in :mod:`nsgen.engine.forkserver`, which the command line reads before NumPy)
LARIX_OPTIONS = forkserver.LARIX_OPTIONS


def check_detector(name: str) -> str:
    """``name`` if it is a detector, else one line naming the choices."""
    if name not in DETECTORS:
        raise NsgenError(f"unknown --detector {name!r}; choose one of: {', '.join(DETECTORS)}")
    return name


def choose_detector(name: str | None, larix_options: Sequence[str] = ()) -> str:
    """The detector to run: ``name`` when given (checked), else ``larix`` when any of
    Larix's own options (:data:`LARIX_OPTIONS`) was given (the seed's commands keep their
    meaning), else :data:`DEFAULT_DETECTOR`.

    A named detector that is not Larix refuses Larix's options (one line naming them):
    silently ignoring a parameter the user gave would be worse.
    """
    if name is None:
        return "larix" if larix_options else DEFAULT_DETECTOR
    check_detector(name)
    if name != "larix" and larix_options:
        raise NsgenError(f"{', '.join(larix_options)}: option(s) of --detector larix; "
                         f"--detector {name} has none (use --detector larix, or leave them "
                         f"out)")
    return name


def halo(name: str, params: DetectParams, n_rows_total: int) -> int:
    """Rows of context each side of a row chunk for an exact chunked mask."""
    if check_detector(name) == "larix":
        return params.halo
    from nsgen.prep.robust_stack import DECIDE_REACH as REACH
    from nsgen.prep.stripe_robust import HALO, depth_rule
    return HALO * depth_rule(n_rows_total, params.min_stripe_depth) + REACH


def detect_rows(block: np.ndarray, block_start: int, rows: tuple[int, int], n_rows_total: int,
                name: str, params: DetectParams, mass: np.ndarray | None = None
                ) -> np.ndarray:
    """Mask ``(angles, stop - start, columns)`` uint8 of volume rows ``rows`` from a block
    holding them plus :func:`halo` rows each side (clipped at the volume's edges).
    ``mass`` (robust): the volume's :func:`~nsgen.prep.robust_mass.volume_mass`, which a
    block of part of the volume needs for its mask to equal the volume's
    (:func:`~nsgen.prep.stripe_robust.robust_mask_rows`)."""
    if check_detector(name) == "larix":
        from nsgen.prep.stripe_detect import detect_stripe_mask_rows
        return detect_stripe_mask_rows(block, block_start, rows, n_rows_total,  # type: ignore
                                       params)
    from nsgen.prep.stripe_robust import robust_mask_rows
    return robust_mask_rows(block, block_start, rows, n_rows_total,
                            depth=params.min_stripe_depth, mass=mass)


def detect_volume(x: np.ndarray, name: str, params: DetectParams) -> np.ndarray:
    """Mask of a whole normalised volume ``(angles, rows, columns)`` (uint8 0/1)."""
    return detect_rows(x, 0, (0, x.shape[1]), x.shape[1], name, params)
