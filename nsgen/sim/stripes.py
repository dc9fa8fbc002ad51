"""Synthetic stripe artefacts on sinograms (docs/science.md B 3.1 with the fixes of A.4).

A stripe is a band of ``2h + 1`` adjacent detector columns whose values are shifted by one
random offset (plus, optionally, a per-column random walk along the angles). Full stripes
cover every angle; partial stripes cover a non-empty, sorted range of angles. Overlapping
stripes add.

Differences from the reference (docs/science.md A.4):

* ``kind="mix"`` makes each stripe independently partial or full (50:50); the reference
  silently treats anything but ``"partial"`` as full.
* A partial stripe always covers a non-empty range ``[a1, a2)`` with ``a1 < a2``; the
  reference draws ``a1, a2`` unsorted and drops about half of the partial stripes.
* Every random number comes from the explicit generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["StripeParams", "SIMPLE", "PAIRED", "PATCH", "add_stripes", "stripe_spans"]

_KINDS = frozenset({"full", "partial", "mix"})
_COLUMN_TRIES = 20
#: stripes drawn on when all ``n_s`` fell on the edge and were dropped (rule 5 of
#: :func:`add_stripes`): a pair without stripes teaches nothing
_REDRAWS = 100


@dataclass(frozen=True)
class StripeParams:
    """Parameters of the stripe generator.

    Parameters
    ----------
    percentage : float
        Stripes per sinogram as a percentage of the detector width:
        ``n_s = max(1, int(Dh * percentage / 100))``. ``0 < percentage <= 100``.
    max_thickness : int
        Largest half thickness ``h``; a stripe is ``2h + 1`` columns wide with ``h`` drawn
        uniformly from ``0..max_thickness``. ``0 <= max_thickness <= 10``.
    intensity : float
        Offset scale: offset ``= vmax * u * intensity`` with ``u ~ U[-1, 0.5]``.
    kind : {"full", "partial", "mix"}
        Angular extent of each stripe; ``"mix"`` chooses full or partial per stripe (50:50).
    variability : float
        Step of the per-column random walk along the angles, relative to ``vmax``
        (0 gives constant stripes). ``variability >= 0``.

    Raises
    ------
    ValueError
        If a value is outside its range.

    Examples
    --------
    >>> StripeParams(1.0, 2, 0.2, "partial", 0.0).kind
    'partial'
    >>> StripeParams(0.0, 2, 0.2, "full", 0.0)
    Traceback (most recent call last):
    ...
    ValueError: stripe percentage must be in (0, 100], got 0.0
    """

    percentage: float
    max_thickness: int
    intensity: float
    kind: str
    variability: float

    def __post_init__(self) -> None:
        if not (0.0 < self.percentage <= 100.0):
            raise ValueError(f"stripe percentage must be in (0, 100], got {self.percentage}")
        if (
            isinstance(self.max_thickness, bool)
            or not float(self.max_thickness).is_integer()
            or not (0 <= self.max_thickness <= 10)
        ):
            raise ValueError(
                f"stripe max_thickness must be an integer in 0..10, got {self.max_thickness}"
            )
        if self.kind not in _KINDS:
            raise ValueError(
                f"stripe kind must be one of {sorted(_KINDS)}, got {self.kind!r}"
            )
        if not (self.variability >= 0.0) or not math.isfinite(self.variability):
            raise ValueError(f"stripe variability must be >= 0, got {self.variability}")
        if not math.isfinite(self.intensity):
            raise ValueError(f"stripe intensity must be finite, got {self.intensity}")


#: 'simple' mode (docs/science.md B 4.6 / 7), with 'mix' as defined by A.4.
SIMPLE = StripeParams(1.2, 3, 0.25, "mix", 0.0)
#: 'paired' real-data mode (docs/science.md B 7).
PAIRED = StripeParams(1.0, 2, 0.2, "mix", 0.005)
#: 'patch' real-data mode (docs/science.md B 7).
PATCH = StripeParams(0.4, 6, 0.2, "full", 0.0)


def stripe_count(n_columns: int, percentage: float) -> int:
    """Stripes per sinogram: ``int(n_columns * percentage / 100)``, but at least one.

    The reference truncates to zero for narrow sinograms (fewer than 84 columns in simple
    mode, patches narrower than 250 columns in patch mode), which makes input and target
    identical: a pair that teaches nothing. nsgen always adds at least one stripe.

    Examples
    --------
    >>> stripe_count(362, 1.2), stripe_count(256, 0.4), stripe_count(64, 0.4)
    (4, 1, 1)
    """
    return max(1, int(n_columns * percentage / 100.0))


def add_stripes(
    sino: np.ndarray,
    rng: np.random.Generator,
    params: StripeParams,
    vmax: float | None = None,
) -> np.ndarray:
    """Return a copy of one sinogram with random stripes added.

    For each of ``n_s = max(1, int(Dh * percentage / 100))`` stripes (:func:`stripe_count`):

    1. column ``c`` uniform in ``0..Dh-1``, redrawn up to 20 times in total until the input's
       first-angle value at ``c`` is non-zero (the last draw is kept if all fail);
    2. angular extent: full ``[0, P)``; partial ``[a1, a2)`` with ``a1 < a2`` two distinct
       values of ``0..P`` sorted; ``"mix"`` picks full or partial with probability 1/2;
    3. half thickness ``h`` uniform in ``0..max_thickness`` (width ``2h + 1``);
    4. offset ``= vmax * u * intensity`` with ``u ~ U[-1, 0.5]``;
    5. applied only if ``h < c < Dh - h``, to columns ``c-h .. c+h``: every column gets
       ``offset + w_k`` at the ``k``-th angle of the extent, where ``w`` is its own random
       walk starting at ``variability * vmax`` with steps ``±variability * vmax``;
    6. overlapping stripes add;
    7. when rule 5 dropped all ``n_s``, stripes are drawn on (the same steps, up to 100
       more) until one is applied, so the result differs from ``sino`` (a sinogram with at
       least 2 columns; any draw sequence with an applied stripe is unchanged).

    Parameters
    ----------
    sino : numpy.ndarray
        One sinogram, shape ``(P, Dh)`` = (angle, detector column). Not modified.
    rng : numpy.random.Generator
        Source of every random draw.
    params : StripeParams
        Stripe parameters (see the presets ``SIMPLE``, ``PAIRED``, ``PATCH``).
    vmax : float, optional
        The value the offsets are relative to. Defaults to ``sino.max()``; callers should pass
        the maximum of the whole 3D sample, as the reference does.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(P, Dh)``. Pixels no stripe touches equal the input
        (bit-identical for a float32 input).

    Raises
    ------
    ValueError
        If ``sino`` is not 2D or ``vmax`` is not finite.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sino = np.ones((4, 50), dtype=np.float32)
    >>> out = add_stripes(sino, rng, StripeParams(4.0, 1, 0.5, "full", 0.0))
    >>> out.shape, out.dtype.name
    ((4, 50), 'float32')
    >>> bool(np.all(out[:, 0] == 1))
    True
    """
    sino = _as_float(sino)
    out = sino.astype(np.float32)
    for left, block in stripe_spans(sino, rng, params, vmax):
        out[:, left:left + block.shape[1]] = block
    return out


def _as_float(sino: np.ndarray) -> np.ndarray:
    """A 2D sinogram as float32 or float64 (integers: float64, exact for a detector's)."""
    sino = np.asarray(sino)
    if sino.ndim != 2:
        raise ValueError(f"add_stripes needs one 2D sinogram (P, Dh), got shape {sino.shape}")
    return sino if sino.dtype in (np.float32, np.float64) else sino.astype(np.float64)


def stripe_spans(sino: np.ndarray, rng: np.random.Generator, params: StripeParams,
                 vmax: float | None = None) -> list[tuple[int, np.ndarray]]:
    """What :func:`add_stripes` changes: ``(first column, float32 columns)`` of every
    span of adjacent columns that stripes touch, left to right; every other pixel of its
    result is ``sino`` as float32. The same draws and the same numbers as
    :func:`add_stripes` (which pastes these spans onto ``sino``), for callers that need
    only the bounds of the striped sinogram, or that paste the spans onto an image of it.

    Examples
    --------
    >>> x = np.ones((3, 40), np.float32)
    >>> spans = stripe_spans(x, np.random.default_rng(1), StripeParams(5.0, 1, 0.5, "full", 0))
    >>> y = add_stripes(x, np.random.default_rng(1), StripeParams(5.0, 1, 0.5, "full", 0))
    >>> all(np.array_equal(y[:, c:c + b.shape[1]], b) for c, b in spans)
    True
    """
    sino = _as_float(sino)
    n_angles, n_cols = sino.shape
    if sino.size == 0:
        return []
    m = float(sino.max()) if vmax is None else float(vmax)
    if not math.isfinite(m):
        raise ValueError(f"vmax must be finite, got {m}")

    n_stripes = stripe_count(n_cols, params.percentage)
    first_row = sino[0]
    h_max = int(params.max_thickness)
    step = params.variability * m
    adds: list[tuple[int, int, int, int, np.ndarray | float]] = []  # a1, a2, lo, hi, add

    drawn = 0
    # the stripes drawn: n_stripes, then on (the same draws) while none has been applied
    while drawn < n_stripes or (not adds and drawn < n_stripes + _REDRAWS):
        drawn += 1
        # 1. column: prefer columns where the object is present at the first angle.
        for _try in range(_COLUMN_TRIES):
            c = int(rng.integers(0, n_cols))
            if first_row[c] != 0:
                break
        # 2. angular extent.
        if params.kind == "mix":
            partial = bool(rng.random() < 0.5)
        else:
            partial = params.kind == "partial"
        if partial:
            a1, a2 = np.sort(rng.choice(n_angles + 1, size=2, replace=False))
            a1, a2 = int(a1), int(a2)
        else:
            a1, a2 = 0, n_angles
        # 3. half thickness, 4. offset.
        h = int(rng.integers(0, h_max + 1))
        offset = m * rng.uniform(-1.0, 0.5) * params.intensity
        # 5. edge rule: silently dropped unless strictly inside.
        if not (h < c < n_cols - h):
            continue
        width = 2 * h + 1
        length = a2 - a1
        if params.variability > 0:
            # walk value at the k-th angle = step * (1 + sum of the first k signs)
            signs = 2 * rng.integers(0, 2, size=(length - 1, width)) - 1
            walk = np.empty((length, width), dtype=np.float64)
            walk[0] = 0.0
            np.cumsum(signs, axis=0, out=walk[1:])
            walk += 1.0
            walk *= step
            adds.append((a1, a2, c - h, c + h + 1, offset + walk))
        else:
            adds.append((a1, a2, c - h, c + h + 1, offset))
    return _spans(sino, adds)


def _spans(sino: np.ndarray, adds: list[tuple[int, int, int, int, np.ndarray | float]]
           ) -> list[tuple[int, np.ndarray]]:
    """``(first column, float32 columns)`` of ``sino`` with each ``add`` added to its
    ``[a1:a2, lo:hi]`` in float64, in order (so overlapping stripes add as one float64
    sum), rounded once to float32, per span of adjacent touched columns.

    Only the columns a stripe touches go through float64: every other pixel's float32
    value is the same as a float64 round trip would give (exactly the input's, for a
    float32 sinogram), at a fraction of the cost (two whole-sinogram conversions took
    three quarters of patch mode's stripes).

    Examples
    --------
    >>> x = np.zeros((2, 6), np.float32)
    >>> [(c, b.tolist()) for c, b in _spans(x, [(0, 2, 1, 3, 0.5), (1, 2, 2, 4, 0.25)])]
    [(1, [[0.5, 0.5, 0.0], [0.5, 0.75, 0.25]])]
    """
    spans: list[list[int]] = []                 # touched column ranges, merged
    for lo, hi in sorted((lo, hi) for _, _, lo, hi, _ in adds):
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    out = []
    for left, right in spans:
        block = sino[:, left:right].astype(np.float64)
        for a1, a2, lo, hi, add in adds:
            if left <= lo < right:
                block[a1:a2, lo - left:hi - left] += add
        out.append((left, block.astype(np.float32)))
    return out
