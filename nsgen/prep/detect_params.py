"""Stripe-detection parameters: one frozen, validated record with its defaults and derivation.

The seed's values (NoStripesNet's mask script: ``size 250, radius 3, threshold 0.63,
min_stripe_length 600, min_stripe_depth 30, min_stripe_width 22, sensitivity 85``) were
chosen for full-size Diamond i12 scans (1801 angles x 2560 columns). :meth:`DetectParams.for_scan`
keeps every value the user gave and derives the others from the scan's size, so that a
parameter the user never gave can never be the reason for a refusal; :meth:`DetectParams.problems`
lists *every* way the parameters do not fit a scan, for one error message.

Examples
--------
>>> DetectParams.for_scan((1801, 256, 2560)) == DetectParams()  # the seed's values
True
>>> p = DetectParams.for_scan((181, 8, 256))
>>> p.size, p.radius, p.min_stripe_length, p.min_stripe_depth, p.min_stripe_width
(25, 3, 60, 7, 2)
>>> DetectParams.for_scan((181, 8, 256), {"size": 100})
Traceback (most recent call last):
...
ValueError: size must be in 1..90 (half the 181 angles), got 100
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = ["DETECT_FIELDS", "MERGE_FIELDS", "REFERENCE_SHAPE", "DetectParams", "ScanTooSmall"]

#: (angles, columns) of the full-size i12 scans the seed's values were chosen for
REFERENCE_SHAPE = (1801, 2560)

_INTS = ("size", "radius", "min_stripe_length", "min_stripe_depth", "min_stripe_width")
#: fields of each Larix stage (STRIPES_DETECT, STRIPES_MERGE)
DETECT_FIELDS = ("size", "radius")
MERGE_FIELDS = ("threshold", "min_stripe_length", "min_stripe_depth", "min_stripe_width",
                "sensitivity_perc")


class ScanTooSmall(ValueError):
    """The scan itself is too small for a detector, whatever its parameters."""


@dataclass(frozen=True)
class DetectParams:
    """Parameters of the Larix generation-2 detector (SCIENCE B 5.2), seed defaults.

    Attributes
    ----------
    size : int
        Half window of the order statistic along angles (``0 < size <= angles // 2``).
    radius : int
        Radius of the plate and side means (``>= 1``; needs ``2 radius`` angles and rows and
        ``max(4, 2 radius)`` columns).
    threshold : float
        Weights ``<= float32(threshold)`` are candidates (``0 <= threshold <= 1``).
    min_stripe_length : int
        ``0 < length < angles``.
    min_stripe_depth : int
        ``0 <= depth < rows`` (0 skips the depth pass).
    min_stripe_width : int
        Merge distance, ``0 < width < columns``.
    sensitivity_perc : float
        ``0 < sens <= 100``.

    Integers are checked on construction (``TypeError`` naming the field); fit to a scan by
    :meth:`problems` / :meth:`check`.
    """

    size: int = 250
    radius: int = 3
    threshold: float = 0.63
    min_stripe_length: int = 600
    min_stripe_depth: int = 30
    min_stripe_width: int = 22
    sensitivity_perc: float = 85.0

    def __post_init__(self) -> None:
        for name in _INTS:
            value = getattr(self, name)
            if isinstance(value, bool):
                raise TypeError(f"{name} must be an integer; got {value!r}")
            try:
                object.__setattr__(self, name, operator.index(value))
            except TypeError:
                raise TypeError(f"{name} must be an integer; got {value!r}") from None
        for name in ("threshold", "sensitivity_perc"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def halo(self) -> int:
        """Rows of halo per chunk side for the two chained stages: ``radius + depth // 2``."""
        return self.radius + max(self.min_stripe_depth, 0) // 2

    @classmethod
    def for_scan(cls, shape: tuple[int, int, int],
                 given: Mapping[str, object] | None = None,
                 name: Callable[[str], str] = str, detector: str = "larix") -> DetectParams:
        """Parameters for a scan of ``shape`` (angles, rows, columns), for ``detector``.

        Values in ``given`` (a field name -> value mapping holding only what the user set)
        are kept; the others are derived from the scan's size:

        * ``size`` and ``min_stripe_length``: the seed's 250 and 600 scaled by
          ``angles / 1801``, within their bounds;
        * ``min_stripe_width``: the seed's 22 scaled by ``columns / 2560``, within bounds;
        * ``radius``: 3, or less where the scan is too small for it;
        * ``min_stripe_depth``: 30, or ``rows - 1`` on scans of 30 rows or fewer;
        * ``threshold`` and ``sensitivity_perc``: the seed's 0.63 and 85.

        The robust detector (any ``detector`` but ``"larix"``) reads only
        ``min_stripe_depth`` (its row window), so only that is checked; it handles scans of
        one row, and needs 2 angles. Larix needs 2 angles, 2 rows and 4 columns.

        Raises
        ------
        ValueError
            Listing every problem of the given values (``name`` formats a field's name, e.g.
            as a command-line option); :class:`ScanTooSmall` where the scan itself is too
            small for the detector.

        Examples
        --------
        >>> DetectParams.for_scan((181, 1, 256), detector="robust").min_stripe_depth
        0
        >>> DetectParams.for_scan((181, 1, 256))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nsgen.prep.detect_params.ScanTooSmall: the scan (181 angles x 1 rows x 256 columns) ...
        """
        given = dict(given or {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown detection parameter(s): {', '.join(unknown)}")
        a, v, c = (int(x) for x in shape)
        seed = cls()
        top = min(a // 2, v // 2, c // 2)
        larix = detector == "larix"
        if a < 2 or c < 1 or v < 1:
            raise ScanTooSmall(f"the scan ({a} angles x {v} rows x {c} columns) is too small for "
                             f"stripe detection, which needs at least 2 angles")
        if larix and (top < 1 or c < 4):
            raise ScanTooSmall(
                f"the scan ({a} angles x {v} rows x {c} columns) is too small for Larix stripe "
                f"detection, which needs at least 2 angles, 2 detector rows and 4 columns "
                f"(the robust detector, the default, needs 2 angles)")
        derived = {
            "size": _clip(round(seed.size * a / REFERENCE_SHAPE[0]), 1, a // 2),
            "radius": max(min(seed.radius, top), 1),
            "min_stripe_length": _clip(round(seed.min_stripe_length * a / REFERENCE_SHAPE[0]),
                                       1, a - 1),
            "min_stripe_depth": min(seed.min_stripe_depth, v - 1),
            "min_stripe_width": _clip(round(seed.min_stripe_width * c / REFERENCE_SHAPE[1]), 1,
                                      c - 1),
        }
        params = replace(seed, **{**derived, **given})  # type: ignore[arg-type]
        params.check(shape, name, only=None if larix else ("min_stripe_depth",))
        return params

    def problems(self, shape: tuple[int, int, int], name: Callable[[str], str] = str,
                 only: tuple[str, ...] | None = None) -> list[str]:
        """Every way these parameters do not fit a scan of ``shape`` (angles, rows, columns).

        ``only``: check just these fields (e.g. :data:`DETECT_FIELDS` for one stage).

        Examples
        --------
        >>> DetectParams().problems((400, 20, 64))  # doctest: +NORMALIZE_WHITESPACE
        ['size must be in 1..200 (half the 400 angles), got 250',
         'min_stripe_length must be in 1..399 (fewer than the 400 angles), got 600',
         'min_stripe_depth must be in 0..19 (fewer than the 20 rows), got 30']
        """
        a, v, c = (int(x) for x in shape)
        out: list[tuple[str, str]] = []
        if not 0 < self.size <= a // 2:
            out.append(("size", (f"{name('size')} must be in 1..{a // 2} (half the {a} angles), "
                        f"got {self.size}")))
        r = self.radius
        if r < 1:
            out.append(("radius", f"{name('radius')} must be >= 1, got {r}"))
        else:
            for need, have, what in ((2 * r, a, "angles"), (2 * r, v, "detector rows"),
                                     (max(4, 2 * r), c, "detector columns")):
                if have < need:
                    out.append(("radius", (f"{name('radius')} {r} needs at least {need} "
                                            f"{what}; the scan has {have}")))
        if not (math.isfinite(self.threshold) and 0 <= self.threshold <= 1):
            out.append(("threshold", (f"{name('threshold')} must be in [0, 1] (weights are "
                                      f"ratios), got {self.threshold}")))
        for field, lo, n, what in (("min_stripe_length", 1, a, "angles"),
                                   ("min_stripe_depth", 0, v, "rows"),
                                   ("min_stripe_width", 1, c, "columns")):
            value = getattr(self, field)
            if not lo <= value < n:
                out.append((field, (f"{name(field)} must be in {lo}..{n - 1} (fewer than the "
                                    f"{n} {what}), got {value}")))
        if not 0 < self.sensitivity_perc <= 100:
            out.append(("sensitivity_perc", (f"{name('sensitivity_perc')} must be in (0, 100], "
                                             f"got {self.sensitivity_perc}")))
        return [m for f, m in out if only is None or f in only]

    def check(self, shape: tuple[int, ...], name: Callable[[str], str] = str,
              only: tuple[str, ...] | None = None) -> None:
        """Raise one ``ValueError`` listing every problem of :meth:`problems` (if any)."""
        if len(shape) != 3:
            raise ValueError(f"stripe detection needs a 3D array (angles, detector rows, "
                             f"detector columns); got shape {tuple(shape)}")
        found = self.problems(shape, name, only)
        if found:
            raise ValueError("; ".join(found))

    def merge_counts(self) -> tuple[int, int, int, int]:
        """``(hl, Tv, hd, Td)`` of the merge passes in Larix's float32 arithmetic.

        ``s = 0.01f * sens``, ``Tv = (int)(s * length)``, ``Td = (int)(s * depth)`` with each
        product rounded to float32 before truncation (``0.01 * sens`` rounded in float64
        first would give ``Tv = 510`` instead of Larix's 509 at the seed's values).

        Examples
        --------
        >>> DetectParams().merge_counts()
        (300, 509, 15, 25)
        """
        s = np.float32(0.01) * np.float32(self.sensitivity_perc)  # float32 arithmetic
        return (self.min_stripe_length // 2, int(s * np.float32(self.min_stripe_length)),
                self.min_stripe_depth // 2, int(s * np.float32(self.min_stripe_depth)))


def _clip(value: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(value)))
