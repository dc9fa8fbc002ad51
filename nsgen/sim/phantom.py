"""Random foam phantoms: object lists and their rasterisation (docs/science.md A.2, B 1).

An *object list* is a float64 array of shape ``(k, 8)`` whose columns are
:data:`OBJECT_FIELDS`: the attenuation ``C0``, the centre ``(x0, y0, z0)`` in the
``[-1, 1]^3`` object space, the semi-axes ``(a, b, c)`` and the rotation ``phi`` in
degrees about the z (rotation) axis. Axis mapping (B 1.3): volume axis 0 <-> ``z0``/``c``,
axis 1 <-> ``x0``/``b``, axis 2 <-> ``y0``/``a``.

Rotation convention: the body ``a`` axis points along ``(cos phi, sin phi)`` in the
(axis-2, axis-1) = (y, x) plane, i.e. a point at offset ``(Y, X)`` from the centre has body
coordinates ``Y' = Y cos phi + X sin phi`` and ``X' = -Y sin phi + X cos phi``. With this
convention the analytic projection (:mod:`nsgen.sim.projection`) of an ellipsoid rotated
by ``phi`` at angle ``theta`` is the unrotated ellipsoid's projection at ``theta - phi``
(about the same centre), and the rasteriser and projector agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "OBJECT_FIELDS",
    "FoamRanges",
    "random_foam",
    "rasterise",
    "validate_objects",
]

OBJECT_FIELDS: tuple[str, ...] = ("C0", "x0", "y0", "z0", "a", "b", "c", "phi")
"""Column names of an object list (phi in degrees)."""

_OBJECT_TYPES = ("sphere", "ellipsoid")

# Candidates are drawn in blocks of this many; the candidate *sequence* does not depend
# on it (see random_foam), only how far the generator is advanced past the last one used.
_BLOCK = 512
# First number of candidates tested together for one object; doubles on every miss.
_FIRST_BATCH = 4


@dataclass(frozen=True)
class FoamRanges:
    """Uniform sampling ranges of the foam generator (NoStripesNet values, B 1.1).

    Each field is a ``(low, high)`` pair; draws are uniform on ``[low, high)``.

    Attributes
    ----------
    x0, y0, z0 : tuple of float
        Ranges of the object centre coordinates.
    C0 : tuple of float
        Range of the attenuation value.
    radius : tuple of float
        Range of the sphere radius (or of each ellipsoid semi-axis). ``low`` must be > 0.
    """

    x0: tuple[float, float] = (-0.9, 0.9)
    y0: tuple[float, float] = (-0.9, 0.9)
    z0: tuple[float, float] = (-0.8, 0.8)
    C0: tuple[float, float] = (0.01, 1.0)
    radius: tuple[float, float] = (0.01, 0.25)

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "z0", "C0", "radius"):
            low, high = getattr(self, name)
            if not (np.isfinite(low) and np.isfinite(high) and low <= high):
                raise ValueError(f"FoamRanges.{name} must be finite with low <= high, "
                                 f"got {(low, high)}")
        if self.radius[0] <= 0:
            raise ValueError(f"FoamRanges.radius must be positive, got {self.radius}")


def validate_objects(objects: np.ndarray) -> np.ndarray:
    """Check an object list and return it as a C-contiguous float64 ``(k, 8)`` array.

    Parameters
    ----------
    objects : array_like
        Object list with columns :data:`OBJECT_FIELDS`.

    Returns
    -------
    numpy.ndarray
        The same values, float64, shape ``(k, 8)``.

    Raises
    ------
    ValueError
        If the shape is wrong, a value is not finite or a semi-axis is not positive.
    """
    arr = np.ascontiguousarray(objects, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(OBJECT_FIELDS):
        raise ValueError(f"an object list has shape (k, {len(OBJECT_FIELDS)}) with columns "
                         f"{OBJECT_FIELDS}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("object list contains non-finite values")
    if (arr[:, 4:7] <= 0).any():
        raise ValueError("object semi-axes (a, b, c) must be positive")
    return arr


def random_foam(
    rng: np.random.Generator,
    n_objects: int,
    object_type: str = "sphere",
    ranges: FoamRanges = FoamRanges(),
    max_attempts: int = 1000,
) -> np.ndarray:
    """Draw up to ``n_objects`` non-overlapping objects inside the unit ball.

    Candidates are tested one after another (docs/science.md B 1.2 with the fixes of A.2).
    A candidate with exclusion radius ``R`` (``r`` for a sphere, the largest semi-axis for
    an ellipsoid) and centre ``(x0, y0, z0)`` is rejected if

    (a) its centre is closer than ``R + R_l`` to the centre of any accepted object ``l``
        (strict ``<``), or
    (b) the corner of its bounding box lies outside the unit ball:
        ``(|x0| + R)**2 + (|y0| + R)**2 + (|z0| + R)**2 > 1``.

    Every candidate is tested, the first one included, and there is no degenerate
    placeholder object. Each requested object gets at most ``max_attempts`` candidates; if
    all are rejected the object is **dropped**, so the result may hold fewer than
    ``n_objects`` rows (``k <= n_objects``). Accepted objects keep their acceptance order.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all draws (``nsgen.rng.generator(seed, "phantom", sample)``).
    n_objects : int
        Number of objects requested, ``>= 0``.
    object_type : {"sphere", "ellipsoid"}
        ``"sphere"``: ``a = b = c = r``, ``phi = 0``. ``"ellipsoid"``: the three semi-axes
        are drawn independently from ``ranges.radius`` and ``phi`` uniformly from
        ``[0, 180)`` degrees.
    ranges : FoamRanges
        Sampling ranges.
    max_attempts : int
        Candidates tried per object before it is dropped, ``>= 1``.

    Returns
    -------
    numpy.ndarray
        float64 object list of shape ``(k, 8)``, columns :data:`OBJECT_FIELDS`.

    Notes
    -----
    A candidate is made of consecutive ``rng.random()`` doubles, in this order:
    x0, y0, z0, C0, r for spheres and x0, y0, z0, C0, a, b, c, phi for ellipsoids, each
    mapped to ``low + (high - low) * u``. The sequence of candidates is therefore fixed by
    the generator state alone; candidates are drawn ahead in blocks, so on return the
    generator has been advanced by an unspecified amount past the last candidate used
    (use a dedicated generator for the phantom, as nsgen's random-stream keys do).

    Examples
    --------
    >>> import numpy as np
    >>> objs = random_foam(np.random.default_rng(1), 50)
    >>> objs.shape[1], bool((objs[:, 4] == objs[:, 6]).all())
    (8, True)
    """
    if object_type not in _OBJECT_TYPES:
        raise ValueError(f"object_type must be one of {_OBJECT_TYPES}, got {object_type!r}")
    n_objects = int(n_objects)
    max_attempts = int(max_attempts)
    if n_objects < 0:
        raise ValueError(f"n_objects must be >= 0, got {n_objects}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")

    sphere = object_type == "sphere"
    lows = [ranges.x0[0], ranges.y0[0], ranges.z0[0], ranges.C0[0]]
    highs = [ranges.x0[1], ranges.y0[1], ranges.z0[1], ranges.C0[1]]
    n_axes = 1 if sphere else 3
    lows += [ranges.radius[0]] * n_axes
    highs += [ranges.radius[1]] * n_axes
    if not sphere:
        lows.append(0.0)
        highs.append(180.0)
    low = np.asarray(lows)
    span = np.asarray(highs) - low
    width = low.size

    out = np.zeros((n_objects, len(OBJECT_FIELDS)))
    centres = np.empty((3, n_objects))   # accepted centres, rows x0, y0, z0
    radii = np.empty(n_objects)          # accepted exclusion radii
    k = 0

    # Current block of candidates and derived quantities.
    block = np.empty((0, width))
    excl = np.empty(0)
    inside = np.empty(0, dtype=bool)
    pos = 0

    for _ in range(n_objects):
        attempts = 0
        batch = _FIRST_BATCH
        accepted = -1
        while attempts < max_attempts:
            if pos == block.shape[0]:
                block = low + span * rng.random((_BLOCK, width))
                excl = block[:, 4] if sphere else block[:, 4:7].max(axis=1)
                c = np.abs(block[:, :3]) + excl[:, None]
                inside = (c * c).sum(axis=1) <= 1.0          # condition (b) passes
                pos = 0
            m = min(batch, max_attempts - attempts, block.shape[0] - pos)
            sl = slice(pos, pos + m)
            ok = inside[sl].copy()
            if k and ok.any():
                idx = pos + np.flatnonzero(ok)
                dx = block[idx, 0:1] - centres[0, :k]                      # (m', k)
                dy = block[idx, 1:2] - centres[1, :k]
                dz = block[idx, 2:3] - centres[2, :k]
                dist = np.sqrt(dx * dx + dy * dy + dz * dz)
                overlap = (dist < excl[idx, None] + radii[:k]).any(axis=1)
                ok[idx[overlap] - pos] = False                              # condition (a)
            hit = np.flatnonzero(ok)
            if hit.size:
                accepted = pos + int(hit[0])
                pos = accepted + 1
                break
            pos += m
            attempts += m
            batch *= 2
        if accepted < 0:
            continue                                                      # object dropped
        cand = block[accepted]
        out[k, 0] = cand[3]
        out[k, 1:4] = cand[:3]
        if sphere:
            out[k, 4:7] = cand[4]
        else:
            out[k, 4:8] = cand[4:8]
        centres[:, k] = cand[:3]
        radii[k] = excl[accepted]
        k += 1
    return out[:k].copy()


def _half_extents(a: float, b: float, phi_rad: float) -> tuple[float, float]:
    """Half-extents along axis 2 (y) and axis 1 (x) of an ellipse rotated by phi."""
    cp, sp = np.cos(phi_rad), np.sin(phi_rad)
    ey = float(np.hypot(a * cp, b * sp))
    ex = float(np.hypot(a * sp, b * cp))
    return ey, ex


def _index_range(centre: float, half: float, h: float, n: int) -> tuple[int, int]:
    """Grid indices i (g_i = -1 + i*h) that may satisfy |g_i - centre| <= half."""
    lo = int(np.floor((centre - half + 1.0) / h)) - 1
    hi = int(np.ceil((centre + half + 1.0) / h)) + 2
    return max(lo, 0), min(hi, n)


def rasterise(objects: np.ndarray, n: int) -> np.ndarray:
    """Sample an object list on the ``n**3`` left-edge grid (docs/science.md B 1.3).

    Along every axis the sample coordinates are ``g_i = -1 + i * 2/n``, ``i = 0..n-1``.
    Voxel ``vol[k, j, i]`` receives ``C0`` from every object with
    ``T = (Y'/a)**2 + (X'/b)**2 + ((g_k - z0)/c)**2 <= 1`` (inclusive), where
    ``(Y', X')`` are the body coordinates of ``(g_i - y0, g_j - x0)`` rotated by ``phi``
    (see the module docstring). Objects are added, never replaced. Only each object's
    bounding box is evaluated.

    Parameters
    ----------
    objects : numpy.ndarray
        Object list, shape ``(k, 8)``, columns :data:`OBJECT_FIELDS`.
    n : int
        Grid size per axis.

    Returns
    -------
    numpy.ndarray
        float32 volume of shape ``(n, n, n)``, axes (z, x, y).

    Examples
    --------
    >>> import numpy as np
    >>> vol = rasterise(np.array([[1.0, 0, 0, 0, 0.25, 0.25, 0.25, 0]]), 8)
    >>> float(vol.sum())   # the 7 grid points within 0.25 of the origin (H = 0.25)
    7.0
    """
    objs = validate_objects(objects)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    h = 2.0 / n
    grid = -1.0 + np.arange(n) * h
    vol = np.zeros((n, n, n), dtype=np.float32)
    for c0, x0, y0, z0, a, b, c, phi in objs:
        phi_rad = np.deg2rad(phi)
        ey, ex = _half_extents(a, b, phi_rad)
        k0, k1 = _index_range(z0, c, h, n)
        j0, j1 = _index_range(x0, ex, h, n)
        i0, i1 = _index_range(y0, ey, h, n)
        if k0 >= k1 or j0 >= j1 or i0 >= i1:
            continue
        dz = (grid[k0:k1] - z0) / c
        dx = grid[j0:j1] - x0
        dy = grid[i0:i1] - y0
        if phi == 0.0:
            t = (dz * dz)[:, None, None] + ((dx / b) ** 2)[None, :, None] \
                + ((dy / a) ** 2)[None, None, :]
        else:
            cp, sp = np.cos(phi_rad), np.sin(phi_rad)
            yb = (dy[None, :] * cp + dx[:, None] * sp) / a        # (x, y) plane, body a
            xb = (-dy[None, :] * sp + dx[:, None] * cp) / b       # body b
            t = (dz * dz)[:, None, None] + (yb * yb + xb * xb)[None, :, :]
        box = vol[k0:k1, j0:j1, i0:i1]
        box += np.where(t <= 1.0, np.float32(c0), np.float32(0.0))
    return vol
