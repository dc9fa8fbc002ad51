"""Whether a real sample's bounds leave its files little of the 16-bit range.

The seed's bounds are the min/max of the interior rows. One extreme reading is enough to
set them: a pixel reading zero (or at saturation) in a single projection, a zinger, a
frame of the dark level. Every sinogram is then scaled into a small part of the 16-bit
range, and nothing says why. :func:`low_range_warning` tells the user after the sample is
made, from the ``range_used`` its manifest records per file, with the option that leaves
such values out (``--bounds-percentile``, exact percentiles of the interior rows).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["LOW_RANGE", "low_range_warning"]

#: a sample made with min/max bounds is warned about when half of its files use less than
#: this fraction of the 16-bit range (a scan whose extremes are real sample values fills
#: most of the range in most of its sinograms)
LOW_RANGE = 0.25


def low_range_warning(tag: str, files: list[dict[str, Any]], percentile: float) -> str | None:
    """The warning for a sample whose files use little of the 16-bit range, or None.

    Parameters
    ----------
    tag : str
        The sample's name (``0000``).
    files : list of dict
        The sample's manifest file entries (``range_used``, ``bounds``).
    percentile : float
        The run's ``--bounds-percentile`` (0: the seed's min/max; percentile bounds are
        not warned about: they already leave the extremes out).

    Returns
    -------
    str or None
        One line naming the problem and the fix, or None when the median file uses at
        least :data:`LOW_RANGE` of the range.

    Examples
    --------
    >>> files = [{"range_used": u, "bounds": [-0.03, 11.78]} for u in (0.15, 0.16, 0.99)]
    >>> print(low_range_warning("0000", files, 0.0))  # doctest: +NORMALIZE_WHITESPACE
    sample 0000: half of its files use at most 16 % of the 16-bit range: a few extreme values
    set its min/max bounds (-0.03 to 11.8); --bounds-percentile 0.01 leaves them out
    >>> low_range_warning("0000", files, 0.01) is None
    True
    >>> low_range_warning("0000", [{"range_used": 0.6, "bounds": [0, 1]}], 0.0) is None
    True
    """
    used = [float(f["range_used"]) for f in files if "range_used" in f]
    if percentile != 0 or not used:
        return None
    median = float(np.median(used))
    if median >= LOW_RANGE:
        return None
    low, high = next(f["bounds"] for f in files if "range_used" in f)
    return (f"sample {tag}: half of its files use at most {math.ceil(100 * median)} % of "
            f"the 16-bit range: a few extreme values set its min/max bounds ({low:.3g} to "
            f"{high:.3g}); --bounds-percentile 0.01 leaves them out")
