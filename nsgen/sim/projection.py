"""Exact analytic parallel-beam projection of ellipsoid lists (docs/science.md A.3, B 2).

Geometry (B 2.1): the rotation axis is volume axis 0 (z). Detector columns sit at
``s_j = -Hmax + j*dH`` with ``Hmax = Dh/(N+1)``, ``dH = 2*Hmax/(Dh-1)``; detector rows at
``t_k = -Vmax + k*dV`` with ``Vmax = V/(N+1)``, ``dV = 2*Vmax/(V-1)``. The ray for angle
``theta``, column ``j`` and row ``k`` passes through ``(t_k, s_j sin theta, s_j cos theta)``
in (axis 0, axis 1, axis 2) coordinates with direction ``(0, cos theta, -sin theta)``.
Object centres are shifted by ``+H/2`` (``H = 2/N``) on every axis, which lines the
projection up with the left-edge grid of :func:`nsgen.sim.phantom.rasterise`.

The value stored is ``chord * C0 * N/2`` (``C0`` times the path length in voxels), summed
over objects in list order in float32. Work is restricted to each object's footprint: the
detector rows it intersects and, per angle, the columns within its projected half-width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nsgen.sim.phantom import validate_objects

__all__ = ["Geometry", "project"]

# Upper bound on the (rows x angles x window) elements evaluated at once for one object: the
# block's temporaries (float64 values, float32 values, the windows gathered by the fancy-index
# add: 512 KiB at 1 << 15) stay in a core's L2 cache. At 1 << 22 they were 32 MiB and more, and
# the projection was memory-bound: CPU-s of 300 spheres in 32-row chunks, medians of 5 in one
# process, N=256 0.32 -> 0.27, N=512 2.63 -> 1.87.
_BLOCK_ELEMENTS = 1 << 15


@dataclass(frozen=True)
class Geometry:
    """Parallel-beam acquisition geometry for an ``N**3`` phantom (docs/science.md B 0.2, 2.1).

    Attributes
    ----------
    size : int
        Phantom size ``N`` (voxel size ``2/N`` in object units).
    n_rows : int
        Detector rows ``V`` (``>= 2``).
    n_angles : int
        Projection angles ``P`` (``>= 1``), evenly spaced from 0 to 179.9 degrees.
    n_columns : int
        Detector columns ``Dh`` (``>= 2``).

    Examples
    --------
    >>> g = Geometry.for_size(256)
    >>> g.shape
    (256, 402, 362)
    >>> float(g.angles_deg[-1])
    179.89999389648438
    """

    size: int
    n_rows: int
    n_angles: int
    n_columns: int

    def __post_init__(self) -> None:
        for name, minimum in (("size", 1), ("n_rows", 2), ("n_angles", 1), ("n_columns", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Geometry.{name} must be an integer, got {value!r}")
            if value < minimum:
                raise ValueError(f"Geometry.{name} must be >= {minimum}, got {value}")

    @classmethod
    def for_size(cls, n: int) -> Geometry:
        """NoStripesNet geometry for an ``n**3`` phantom.

        ``n_rows = n``, ``n_angles = int(0.5*pi*n)``, ``n_columns = int(sqrt(2)*n)``.

        Parameters
        ----------
        n : int
            Phantom size.

        Returns
        -------
        Geometry
        """
        n = int(n)
        return cls(size=n, n_rows=n, n_angles=int(0.5 * math.pi * n),
                   n_columns=int(math.sqrt(2) * n))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Projection data shape ``(n_rows, n_angles, n_columns)`` = ``(V, P, Dh)``."""
        return (self.n_rows, self.n_angles, self.n_columns)

    @property
    def angles_deg(self) -> np.ndarray:
        """Projection angles in degrees, ``linspace(0, 179.9, n_angles)`` as float32."""
        return np.linspace(0, 179.9, self.n_angles, dtype=np.float32)

    @property
    def voxel_size(self) -> float:
        """Phantom voxel size ``H = 2/N`` in object units."""
        return 2.0 / self.size

    @property
    def column_coords(self) -> np.ndarray:
        """Detector column positions ``s_j`` (float64, object units)."""
        hmax, dh = self._column_step()
        return -hmax + np.arange(self.n_columns) * dh

    @property
    def row_coords(self) -> np.ndarray:
        """Detector row positions ``t_k`` (float64, object units)."""
        vmax, dv = self._row_step()
        return -vmax + np.arange(self.n_rows) * dv

    def _column_step(self) -> tuple[float, float]:
        hmax = self.n_columns / (self.size + 1)
        return hmax, 2.0 * hmax / (self.n_columns - 1)

    def _row_step(self) -> tuple[float, float]:
        vmax = self.n_rows / (self.size + 1)
        return vmax, 2.0 * vmax / (self.n_rows - 1)


def project(
    objects: np.ndarray,
    geometry: Geometry,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Exact parallel-beam projection of an object list (docs/science.md B 2).

    For each object, angle ``theta``, detector column ``s`` and row ``t`` the chord of the
    ray through the ellipsoid is evaluated with the quadratic formula of B 2.2: with
    ``w = (p - q)/sigma`` and ``u = d/sigma``, ``A = u.u``, ``B = u.w``, ``C = w.w - 1``,
    ``D = B**2 - A*C`` and the chord ``2*sqrt(D)/A`` where ``D > 0``. The ray point ``p`` is
    taken relative to the centre in the detector plane, so ``B`` and ``C`` separate into a
    per-angle and a per-row factor. An object rotated by ``phi`` about z is evaluated in
    its body frame, i.e. at angle ``theta - phi``; its centre is not rotated.

    Parameters
    ----------
    objects : numpy.ndarray
        Object list, shape ``(k, 8)``, columns :data:`nsgen.sim.phantom.OBJECT_FIELDS`.
    geometry : Geometry
        Detector and angle geometry.
    rows : tuple of int, optional
        Detector rows ``[start, stop)`` to compute; all rows if ``None``. The values are
        identical (byte for byte) to the same rows of the full projection.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(stop - start, n_angles, n_columns)``: ``C0`` times the
        path length in voxels, summed over objects.

    Examples
    --------
    >>> import numpy as np
    >>> g = Geometry.for_size(64)
    >>> h = g.voxel_size
    >>> # sphere of radius 0.5 on the rotation axis, centre on detector row 20
    >>> sphere = np.array([[1.0, -h / 2, -h / 2, g.row_coords[20] - h / 2, .5, .5, .5, 0]])
    >>> p = project(sphere, g)
    >>> p.shape
    (64, 100, 90)
    >>> bool(np.isclose(p[20].max(), 0.5 * 64, rtol=2e-3))   # peak close to C0 * r * N
    True
    """
    objs = validate_objects(objects)
    n_v, n_p, n_h = geometry.shape
    if rows is None:
        start, stop = 0, n_v
    else:
        start, stop = (int(r) for r in rows)
        if not 0 <= start <= stop <= n_v:
            raise ValueError(f"rows must satisfy 0 <= start <= stop <= {n_v}, got {rows}")
    out = np.zeros((stop - start, n_p, n_h), dtype=np.float32)
    if stop == start or objs.shape[0] == 0:
        return out

    n = geometry.size
    half = 0.5 * geometry.voxel_size
    hmax, dh = geometry._column_step()
    vmax, dv = geometry._row_step()
    theta = np.deg2rad(geometry.angles_deg.astype(np.float64))
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    angle_base = np.arange(n_p) * n_h                      # flat offset of (row 0, angle p)

    # windows[f] is a writable view of out.flat[f : f + W] for every start position f; it
    # is rebuilt for each window width W. Each object's windows are disjoint.
    flat = out.reshape(-1)
    win_cache: dict[int, np.ndarray] = {}
    # every block's temporaries live in these (grown when a block needs more): a fresh
    # array per block cost its page faults again (~40 % of the projection's time)
    wide = np.empty(0)
    narrow = np.empty(0, dtype=np.float32)

    for c0, x0, y0, z0, a, b, c, phi in objs:
        zc = z0 + half
        # Detector rows the object can touch, within the requested range.
        k_lo = max(int(math.floor((zc - c + vmax) / dv)), start)
        k_hi = min(int(math.ceil((zc + c + vmax) / dv)) + 1, stop)
        if k_lo >= k_hi:
            continue

        # Per-angle quadratic coefficients in the body frame (angle theta - phi).
        if phi == 0.0:
            cb, sb = cos_t, sin_t
        else:
            body = theta - math.radians(phi)
            cb, sb = np.cos(body), np.sin(body)
        ia2, ib2 = 1.0 / (a * a), 1.0 / (b * b)
        quad_a = cb * cb * ib2 + sb * sb * ia2              # A = u.u
        beta = sb * cb * (ib2 - ia2)                        # B = delta * beta
        gamma = sb * sb * ib2 + cb * cb * ia2               # C = zeta + delta**2 gamma - 1
        kappa = quad_a * gamma - beta * beta                # D = A(1-zeta) - delta**2 kappa
        half_width = np.sqrt(quad_a / kappa)                # projected half-width
        scale = (c0 * n) / quad_a                           # 2 sqrt(D)/A * C0 * N/2

        # Column window per angle around the (unrotated) centre's sinusoid.
        s_c = (y0 + half) * cos_t + (x0 + half) * sin_t
        width = min(int(math.ceil(2.0 * half_width.max() / dh)) + 3, n_h)
        j0 = np.floor((s_c - half_width + hmax) / dh).astype(np.intp) - 1
        np.clip(j0, 0, n_h - width, out=j0)
        cols = j0[:, None] + np.arange(width)                              # (P, W)
        delta = (-hmax + cols * dh) - s_c[:, None]
        k_delta2 = (delta * delta) * kappa[:, None]                        # (P, W)

        windows = win_cache.get(width)
        if windows is None:
            windows = as_strided(flat, shape=(flat.size - width + 1, width),
                                 strides=(flat.strides[0], flat.strides[0]),
                                 writeable=True)
            win_cache[width] = windows
        # Rows in blocks to bound the temporaries; values do not depend on the blocking.
        step = max(1, _BLOCK_ELEMENTS // (n_p * width))
        for b_lo in range(k_lo, k_hi, step):
            k = np.arange(b_lo, min(b_lo + step, k_hi))
            dz = ((-vmax + k * dv) - zc) / c
            a_row = quad_a[None, :] * (1.0 - dz * dz)[:, None]            # (R, P)
            shape = (k.size, n_p, width)
            size = k.size * n_p * width
            if wide.size < size:
                wide = np.empty(size)
                narrow = np.empty(size, dtype=np.float32)
            d = np.subtract(a_row[:, :, None], k_delta2[None, :, :],
                            out=wide[:size].reshape(shape))                # (R, P, W)
            np.maximum(d, 0.0, out=d)
            np.sqrt(d, out=d)
            vals = np.multiply(d, scale[None, :, None], out=narrow[:size].reshape(shape),
                               casting="same_kind")
            starts = ((k - start) * (n_p * n_h))[:, None] + (angle_base + j0)[None, :]
            windows[starts.ravel()] += vals.reshape(-1, width)
    return out
