"""Detector pixels whose normalised values carry no information: found per scan from the
flat and dark means and a few projections, before anything is written.

A pixel is

* **dead** when its mean flat is not above its mean dark (``F <= D``: no response to the
  beam; a pixel reading 0 in flat, dark and data is one), or when every probed projection
  reads it at most :data:`DEAD_TRANSMISSION` of its flat above its dark (or not finite)
  while its neighbours let more than :data:`NEIGHBOUR_TRANSMISSION` through at one of them
  at least: no photons, only the dark's read noise, so ``-log`` is a full-scale stripe (a
  dense object dark at every probed angle darkens its neighbours too: not dead);
* **saturated** when its mean flat is at the detector's saturation level (every flat
  frame clipped there: the flat underestimates the beam, so the pixel's ``-log`` is
  biased), or when it is at saturation in every probed projection (the counts are lost).

The probed projections are :data:`PROBE_PROJECTIONS` evenly spread over the scan's angles:
a real object does not hold one detector pixel at the dark level, or at saturation, at
every one of them.

Such pixels are flagged as stripes in the paired/patch masks, left out of the scaling
bounds, listed in the manifest and reported in one warning line. When every pixel is
saturated (a flat taken with too much beam, or a constant placeholder flat) the problem is
the flats, not single pixels: a warning says so and no pixel is singled out. When no pixel
responds at all, normalisation is impossible and the scan is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from nsgen.errors import NsgenError

#: projections, evenly spread over the angles, in which a pixel is tested for data at the
#: dark level or at saturation (a whole frame each is read once per scan)
PROBE_PROJECTIONS = 16
#: a pixel is dead in the data when ``(P - D) / (F - D)`` is at most this in every probed
#: projection: a dead pixel reads its dark plus read noise (a few counts against thousands
#: of flat counts), while a real object lets more than 2 % through at some of the probed
#: angles spread over the scan (``-log`` below 3.9)
DEAD_TRANSMISSION = 0.02
#: ... while the median of its neighbours (the columns :data:`RING` away on either side,
#: beyond a dead cluster of up to 5 columns) lets more than this through in one of them
NEIGHBOUR_TRANSMISSION = 0.1
RING = (3, 8)

__all__ = ["DEAD_TRANSMISSION", "NEIGHBOUR_TRANSMISSION", "RING", "BadPixels",
           "excluded_outputs", "find_bad_pixels", "probe_frames", "saturation_level"]


def saturation_level(dtype: Any) -> float | None:
    """The value a saturated pixel reads: the maximum of an integer dtype, else None.

    Examples
    --------
    >>> saturation_level("uint16"), saturation_level("float32")
    (65535.0, None)
    """
    dt = np.dtype(dtype)
    return float(np.iinfo(dt).max) if np.issubdtype(dt, np.integer) else None


@dataclass(frozen=True)
class BadPixels:
    """Dead and saturated pixels of a scan's detector, ``(rows, columns)`` bool each."""

    dead: np.ndarray
    saturated: np.ndarray
    #: one-line description of a problem of the flats as a whole (None if they are fine)
    flats_problem: str | None = None

    @property
    def mask(self) -> np.ndarray:
        """Every bad pixel."""
        return self.dead | self.saturated

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def rows(self) -> np.ndarray:
        """Per detector row: does it hold a bad pixel (its sinogram has a stripe)?"""
        return np.asarray(self.mask.any(axis=1))

    def record(self) -> dict[str, Any]:
        """Manifest form: ``[row, column]`` lists per kind, and the flats problem if any."""
        out: dict[str, Any] = {kind: np.argwhere(getattr(self, kind)).tolist()
                               for kind in ("dead", "saturated")}
        if self.flats_problem:
            out["flats"] = self.flats_problem
        return out

    def warning(self, name: str) -> str | None:
        """The one warning line for this scan, or None when every pixel is fine.

        Examples
        --------
        >>> dead = np.zeros((2, 3), bool); dead[1, 2] = True
        >>> BadPixels(dead, np.zeros((2, 3), bool)).warning("s.nxs")  # doctest: +ELLIPSIS
        's.nxs: 1 dead pixel (no signal above dark) at (row, column) (1, 2): flagged as ...'
        """
        parts = []
        for kind, why in (("dead", "no signal above dark"), ("saturated", "at saturation")):
            where = np.argwhere(getattr(self, kind))
            if len(where):
                shown = " ".join(f"({r}, {c})" for r, c in where[:5].tolist())
                more = f" and {len(where) - 5} more" if len(where) > 5 else ""
                parts.append(f"{len(where)} {kind} pixel{'s' if len(where) > 1 else ''} "
                             f"({why}) at (row, column) {shown}{more}")
        if parts:
            parts[-1] += (": flagged as stripes, left out of the scaling bounds, listed in "
                          "the manifest")
        if self.flats_problem:
            parts.append(self.flats_problem)
        return f"{name}: {'; '.join(parts)}" if parts else None


def find_bad_pixels(flat_mean: np.ndarray, dark_mean: np.ndarray,
                    saturation: float | None, name: str = "scan",
                    probes: np.ndarray | None = None) -> BadPixels:
    """Dead and saturated pixels from a scan's mean flat and dark and probed projections.

    Parameters
    ----------
    flat_mean, dark_mean : numpy.ndarray
        ``(rows, columns)`` means over the flat and dark frames.
    saturation : float or None
        Saturation level of the detector (:func:`saturation_level`); None: no saturation
        test.
    name : str
        The scan, for messages.
    probes : numpy.ndarray, optional
        ``(k, rows, columns)`` raw projections (:data:`PROBE_PROJECTIONS` of them, spread
        over the angles); a pixel at most :data:`DEAD_TRANSMISSION` of its flat above its
        dark (or not finite) in all of them is dead, one at saturation in all of them
        saturated.

    Returns
    -------
    BadPixels

    Raises
    ------
    NsgenError
        When no pixel responds (every flat at or below its dark, or not finite):
        normalisation is impossible.

    Examples
    --------
    >>> flat = np.full((2, 4), 1000.0); flat[0, 1] = 0.0; flat[1, 3] = 65535.0
    >>> bad = find_bad_pixels(flat, np.full((2, 4), 100.0), 65535.0)
    >>> np.argwhere(bad.dead).tolist(), np.argwhere(bad.saturated).tolist()
    ([[0, 1]], [[1, 3]])
    >>> find_bad_pixels(np.full((2, 4), 65535.0), np.zeros((2, 4)), 65535.0).flats_problem
    'every flat pixel is saturated (65535): normalised values are biased low; use flats taken below saturation'
    """
    flat = np.asarray(flat_mean, dtype=np.float64)
    dark = np.asarray(dark_mean, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        dead = ~(np.isfinite(flat) & np.isfinite(dark) & (flat > dark))
    if dead.all():
        raise NsgenError(f"{name}: no detector pixel has a flat above its dark (flat "
                         f"{_span(flat)}, dark {_span(dark)}), so the projections cannot be "
                         f"normalised; give the right flats and darks (--flats, --darks)")
    saturated = np.zeros_like(dead)
    problem = None
    if probes is not None and len(probes):
        data_dead = _no_signal(np.asarray(probes), flat, dark)
    if saturation is not None:
        saturated = ~dead & (flat >= saturation)
        if saturated.sum() == (~dead).sum():
            problem = (f"every flat pixel is saturated ({saturation:g}): normalised values "
                       f"are biased low; use flats taken below saturation")
            saturated = np.zeros_like(dead)
    if probes is not None and len(probes):
        dead |= data_dead
        if saturation is not None:
            saturated |= ~dead & (np.asarray(probes) >= saturation).all(axis=0)
    live = flat[~dead]
    if problem is None and live.size > 1 and live.min() == live.max():
        problem = (f"the flats are constant ({live.min():g} at every pixel), so they correct "
                   f"no beam or detector pattern; check that they are real flat fields")
    return BadPixels(dead, saturated, problem)


def probe_frames(scan: Any) -> np.ndarray:
    """:data:`PROBE_PROJECTIONS` raw projections of an open scan (``nsgen.scan.open_scan``),
    evenly spread over its angles: ``(k, rows, columns)`` in the scan's dtype."""
    picks = np.unique(np.linspace(0, scan.shape[0] - 1, PROBE_PROJECTIONS).round())
    probes = np.empty((len(picks), *scan.shape[1:]), scan.dtype)
    for k, i in enumerate(scan.projection_indices[picks.astype(int)]):
        scan.read_frames(slice(int(i), int(i) + 1), probes[k:k + 1])
    return probes


def _no_signal(probes: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Pixels whose every probe is at most :data:`DEAD_TRANSMISSION` of the flat above
    the dark, or not finite, and whose neighbours' median lets more than
    :data:`NEIGHBOUR_TRANSMISSION` through in one probe at least: ``(rows, columns)`` bool.

    Examples
    --------
    >>> probes = np.full((2, 1, 20), 20100.0)           # dark 100, flat 30100: 2/3 through
    >>> probes[:, 0, 3] = [100, 103]                     # the dark's read noise: dead
    >>> probes[:, 0, 9] = [98, 20000]                    # light at one angle: alive
    >>> probes[:, 0, 15] = np.nan                        # never a finite value: dead
    >>> np.flatnonzero(_no_signal(probes, np.full((1, 20), 30100.0), np.full((1, 20), 100.0)))
    array([ 3, 15])
    >>> probes[:, 0, :] = 150.0                          # a dense object, dark everywhere
    >>> bool(_no_signal(probes, np.full((1, 20), 30100.0), np.full((1, 20), 100.0)).any())
    False
    """
    response = np.maximum(np.asarray(flat, np.float64) - dark, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = np.asarray(probes, dtype=np.float64) - dark
        signal[~np.isfinite(signal)] = -np.inf
        low = np.asarray((signal <= DEAD_TRANSMISSION * response).all(axis=0))
        rows, cols = np.nonzero(low)
        steps = np.arange(RING[0], RING[1] + 1)
        offsets = np.concatenate([-steps, steps])
        batch = max(1, 2**22 // (len(signal) * len(offsets)))   # about 32 MiB at a time
        for b in range(0, rows.size, batch):
            r, c = rows[b:b + batch, None], cols[b:b + batch, None]
            near = c + offsets
            inside = (near >= 0) & (near < low.shape[-1])
            near = np.clip(near, 0, low.shape[-1] - 1)
            through = signal[:, r, near] / response[r, near]      # (probes, pixels, ring)
            through[:, ~inside] = np.nan                          # beyond the detector
            through[~np.isfinite(through)] = np.nan               # dead flats, no value
            known = np.isfinite(through).any(axis=(0, 2))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # a ring with no value
                ring = np.nanmedian(through, axis=2)
            # dark around it: not dead (no neighbour known, e.g. a detector of a few
            # columns: dead by its own probes)
            dark_around = known & ~(ring > NEIGHBOUR_TRANSMISSION).any(axis=0)
            low[r[dark_around, 0], c[dark_around, 0]] = False
    return low


def excluded_outputs(bad: np.ndarray, n_out: int) -> np.ndarray:
    """Output columns of a column resize (:func:`~nsgen.prep.resize.axis_operator`) that
    any bad input column reaches, per row.

    Parameters
    ----------
    bad : numpy.ndarray
        ``(rows, columns)`` bool, bad pixels at full resolution.
    n_out : int
        Columns after resizing.

    Returns
    -------
    numpy.ndarray
        ``(rows, n_out)`` bool.

    Examples
    --------
    >>> bad = np.zeros((1, 40), bool); bad[0, 20] = True
    >>> np.flatnonzero(excluded_outputs(bad, 10)[0]).tolist()
    [3, 4, 5, 6]
    """
    from nsgen.prep.resize import axis_operator

    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return np.zeros((bad.shape[0], n_out), bool)
    op = axis_operator(bad.shape[1], n_out)
    reach = (abs(op) @ bad.T.astype(np.float32)).T    # (rows, n_out)
    return np.asarray(reach > 0)


def _span(a: np.ndarray) -> str:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return "not finite"
    return f"{finite.min():g}..{finite.max():g}"
