"""Beam, flat fields and detector defects for the complex mode (docs/science.md B 3.4, 4.2, 4.3).

Shapes: a 2D detector image is ``(V, Dh)`` = (detector row, detector column); projection data
are ``(V, P, Dh)``; stacks of maps or flats put their index first, ``(n, V, Dh)``.

The complex-mode model (docs/architecture.md, docs/science.md A.5): counted photons
``C = Poisson(I0 * F0 * exp(-Pn))`` give the transmission ``tau = C / (I0 * F0)``; the clean
target is ``-log(tau)`` and a stripe input is ``-log(tau + D / Fbar)`` with the detector-defect
term ``D = delta * (-M0 + s_p M1 + e_p M2)`` (:func:`defect_response`) and the relative mean flat
``Fbar / I0``. Flats are independent Poisson realisations of ``I0 * F0`` (:func:`flat_fields`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.fft  # noqa: F401  (NumPy 2 imports it lazily; not from two threads at once)

from nsgen.sim.scipy_free import gaussian_filter_reflect, spherical_y1   # no SciPy import

__all__ = [
    "bessel_background",
    "speckles",
    "defect_maps",
    "add_pixel_defects",
    "beam_profile",
    "flat_fields",
    "temporal_responses",
    "defect_response",
    "complex_projections",
]

#: Transmission floor before the logarithm in :func:`complex_projections`.
TAU_FLOOR = 1e-6


def _shape2(shape: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"expected a 2D detector shape (V, Dh), got {shape}")
    v, dh = (int(s) for s in shape)
    if v < 1 or dh < 1:
        raise ValueError(f"detector shape must be positive, got {shape}")
    return v, dh


def bessel_background(
    n_rows: int, n_columns: int, start: float = 1.0, stop: float = 25.0
) -> np.ndarray:
    """Smooth beam background varying along detector rows only (docs/science.md B 4.2 step 1).

    ``u_r = linspace(start, stop, V)``, ``f(r) = y1(u_r) + |min_r y1(u_r)|`` with ``y1`` the
    spherical Bessel function of the second kind of order 1, and
    ``B(r, c) = f(r) + f(V - 1 - r)`` for every column ``c``.

    Parameters
    ----------
    n_rows, n_columns : int
        Detector shape ``(V, Dh)``.
    start, stop : float
        Argument range of ``y1`` (> 0).

    Returns
    -------
    numpy.ndarray
        float64 array ``(V, Dh)``.

    Examples
    --------
    >>> b = bessel_background(256, 4)
    >>> round(float(b.min()), 3), round(float(b.max()), 3)
    (1.385, 2.996)
    """
    v, dh = _shape2((n_rows, n_columns))
    if not (start > 0 and stop > 0):
        raise ValueError(f"Bessel arguments must be positive, got ({start}, {stop})")
    y = spherical_y1(np.linspace(start, stop, v))   # scipy.special.spherical_yn(1, .)
    f = y + abs(y.min())
    profile = f + f[::-1]
    return np.repeat(profile[:, None], dh, axis=1)


def speckles(
    shape: tuple[int, int],
    rng: np.random.Generator,
    modes: int = 1,
    speckle_size: float = 3.0,
    kbar: float = 2.0,
) -> np.ndarray:
    """Fully developed speckle with shot noise, as photon counts (docs/science.md B 3.4).

    Each mode: a complex image zero except its top-left ``round(V/s) x round(Dh/s)`` block of
    unit phasors ``exp(2 pi i U)``; intensity ``|FFT2|**2`` normalised to sum 1. The ``modes``
    intensities are summed and renormalised; then ``n = round(kbar * V * Dh)`` photons are
    placed by ``Multinomial(n, I)``.

    Parameters
    ----------
    shape : tuple of int
        ``(V, Dh)``.
    rng : numpy.random.Generator
        Source of the phasors and of the photon placement.
    modes : int
        Number of independent patterns summed (>= 1); contrast ``1 / modes``.
    speckle_size : float
        Grain size ``s`` in pixels (>= 0). ``0`` returns ones (no texture) without drawing.
    kbar : float
        Mean photons per pixel (>= 0).

    Returns
    -------
    numpy.ndarray
        float64 counts ``(V, Dh)`` summing to exactly ``n`` (or ones if ``speckle_size == 0``).

    Raises
    ------
    ValueError
        If a parameter is out of range or ``speckle_size`` exceeds twice the image (empty block).

    Examples
    --------
    >>> s = speckles((32, 40), np.random.default_rng(0), kbar=2.0)
    >>> float(s.sum()), float(s.mean())
    (2560.0, 2.0)
    """
    v, dh = _shape2(shape)
    if not (speckle_size >= 0) or not math.isfinite(speckle_size):
        raise ValueError(f"speckle_size must be >= 0, got {speckle_size}")
    if int(modes) != modes or modes < 1:
        raise ValueError(f"speckle modes must be a positive integer, got {modes}")
    if not (kbar >= 0) or not math.isfinite(kbar):
        raise ValueError(f"kbar must be >= 0, got {kbar}")
    if speckle_size == 0:
        return np.ones((v, dh), dtype=np.float64)
    bv, bh = int(np.round(v / speckle_size)), int(np.round(dh / speckle_size))
    if bv < 1 or bh < 1:
        raise ValueError(
            f"speckle_size {speckle_size} is too large for a {v} x {dh} image"
        )
    intensity = np.zeros((v, dh), dtype=np.float64)
    field = np.zeros((v, dh), dtype=np.complex128)
    for _ in range(int(modes)):
        field[:bv, :bh] = np.exp(2j * np.pi * rng.random((bv, bh)))
        mode = np.abs(np.fft.fft2(field)) ** 2
        intensity += mode / mode.sum()
    intensity /= intensity.sum()
    n = int(round(kbar * v * dh))
    counts = rng.multinomial(n, intensity.ravel())
    return counts.reshape(v, dh).astype(np.float64)


def defect_maps(
    shape: tuple[int, int],
    rng: np.random.Generator,
    n_maps: int = 3,
    speckle_size: float = 10.0,
    kbar: float = 0.03,
    sigma_smooth: float = 2.0,
    threshold: float = 0.6,
) -> np.ndarray:
    """Detector miscalibration maps: a few smooth blobs each (docs/science.md B 4.2 step 3).

    Each map is a sparse speckle photon image (:func:`speckles`, one mode) blurred with a
    Gaussian of standard deviation ``sigma_smooth`` (reflecting boundary, truncated at
    4 sigma) and set to zero where below ``threshold * max`` of that map. The stack is then
    divided by its global maximum, so only the strongest map reaches 1.

    Parameters
    ----------
    shape : tuple of int
        ``(V, Dh)``.
    rng : numpy.random.Generator
        Source of the speckle draws (maps drawn in order).
    n_maps : int
        Number of maps (>= 1).
    speckle_size, kbar : float
        Speckle grain size and mean photons per pixel of the underlying speckle images.
    sigma_smooth : float
        Gaussian blur standard deviation in pixels (>= 0).
    threshold : float
        Relative cut-off in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        float64 array ``(n_maps, V, Dh)`` with values in ``[0, 1]``; all zeros only if no
        photon was drawn at all.

    Examples
    --------
    >>> m = defect_maps((64, 90), np.random.default_rng(1))
    >>> m.shape, float(m.max())
    ((3, 64, 90), 1.0)
    """
    v, dh = _shape2(shape)
    if int(n_maps) != n_maps or n_maps < 1:
        raise ValueError(f"n_maps must be a positive integer, got {n_maps}")
    if not (sigma_smooth >= 0):
        raise ValueError(f"sigma_smooth must be >= 0, got {sigma_smooth}")
    if not (0 <= threshold <= 1):
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    maps = np.empty((int(n_maps), v, dh), dtype=np.float64)
    for i in range(int(n_maps)):
        blurred = gaussian_filter_reflect(   # scipy.ndimage.gaussian_filter, mode="reflect"
            speckles((v, dh), rng, 1, speckle_size, kbar), sigma_smooth
        )
        blurred[blurred < threshold * blurred.max()] = 0.0
        maps[i] = blurred
    peak = maps.max()
    if peak > 0:
        maps /= peak
    return maps


def add_pixel_defects(
    maps: np.ndarray, density: float, rng: np.random.Generator
) -> np.ndarray:
    """Defective single pixels on top of the defect clusters: ``density`` per detector row.

    The clusters of :func:`defect_maps` cover only some detector rows (a third of them at the
    reference's parameters), so most sinograms would be stripe-free. Real detectors also have
    isolated pixels whose response differs from the rest (the classic cause of ring artefacts);
    this draws them. Row ``r`` gets ``floor(density)`` pixels, plus one more with probability
    ``density - floor(density)``, at distinct random columns. Each pixel joins one map,
    chosen uniformly (constant, oscillating or drifting response), with amplitude uniform in
    ``[0.5, 1)`` of the strongest cluster (kept if the map is already stronger there). With
    ``density >= 1`` every detector row, hence every sinogram of every (rolled) shift, has a
    defect. Draw order: per row, the extra-pixel draw, the columns, the maps, the amplitudes.

    Parameters
    ----------
    maps : numpy.ndarray
        Defect maps ``(n_maps, V, Dh)`` from :func:`defect_maps` (not modified).
    density : float
        Mean defective pixels per detector row, ``0 <= density <= Dh``; 0 returns a copy
        of ``maps`` without drawing (the reference's defects).
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    numpy.ndarray
        float64 ``(n_maps, V, Dh)``, values in ``[0, 1]``.

    Examples
    --------
    >>> m = add_pixel_defects(np.zeros((3, 4, 6)), 1.0, np.random.default_rng(0))
    >>> (m != 0).any(axis=0).sum(axis=1).tolist()
    [1, 1, 1, 1]
    >>> bool(((m == 0) | (m >= 0.5)).all())
    True
    """
    maps = np.array(maps, dtype=np.float64, copy=True)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (n_maps, V, Dh), got {maps.shape}")
    n_maps, v, dh = maps.shape
    if not (0 <= density <= dh):
        raise ValueError(f"density must be in [0, {dh}] pixels per row, got {density}")
    if density == 0:
        return maps
    whole = math.floor(density)
    for r in range(v):
        k = whole + int(rng.random() < density - whole)
        if k == 0:
            continue
        cols = rng.choice(dh, size=k, replace=False)
        which = rng.integers(0, n_maps, size=k)
        amp = rng.uniform(0.5, 1.0, size=k)
        maps[which, r, cols] = np.maximum(maps[which, r, cols], amp)
    return maps


def beam_profile(
    shape: tuple[int, int],
    rng: np.random.Generator,
    bessel: tuple[float, float] = (1.0, 25.0),
    speckle_size: float = 3.0,
    kbar: float = 2.0,
) -> np.ndarray:
    """Noise-free beam profile ``F0`` (docs/science.md B 4.2 step 4).

    ``F0 = B + 0.5 * S / max(S)`` with ``B`` the Bessel background and ``S`` the speckle
    texture (one mode), then ``F0 /= max(F0)``.

    Parameters
    ----------
    shape : tuple of int
        ``(V, Dh)``.
    rng : numpy.random.Generator
        Source of the speckle texture.
    bessel : tuple of float
        ``(start, stop)`` of :func:`bessel_background`.
    speckle_size, kbar : float
        Speckle texture parameters (``speckle_size = 0``: no texture, ``S = 1``).

    Returns
    -------
    numpy.ndarray
        float64 ``(V, Dh)``, maximum exactly 1, all values > 0.

    Examples
    --------
    >>> f0 = beam_profile((64, 90), np.random.default_rng(0))
    >>> float(f0.max()), bool(f0.min() > 0.3)
    (1.0, True)
    """
    v, dh = _shape2(shape)
    background = bessel_background(v, dh, *bessel)
    texture = speckles((v, dh), rng, 1, speckle_size, kbar)
    peak = texture.max()
    profile = background + 0.5 * texture / peak if peak > 0 else background.copy()
    profile /= profile.max()
    return profile


def flat_fields(
    profile: np.ndarray, i0: float, n_flats: int, rng: np.random.Generator
) -> np.ndarray:
    """Independent Poisson realisations of ``i0 * profile`` (docs/science.md A.5).

    Parameters
    ----------
    profile : numpy.ndarray
        Noise-free beam profile ``F0``, shape ``(V, Dh)``, non-negative.
    i0 : float
        Incident photons at the profile's maximum (> 0).
    n_flats : int
        Number of flats (>= 1).
    rng : numpy.random.Generator
        Source of the Poisson draws.

    Returns
    -------
    numpy.ndarray
        float32 photon counts ``(n_flats, V, Dh)``.

    Examples
    --------
    >>> f = flat_fields(np.ones((2, 3)), 100.0, 4, np.random.default_rng(0))
    >>> f.shape, f.dtype.name
    ((4, 2, 3), 'float32')
    """
    profile = np.asarray(profile, dtype=np.float64)
    if profile.ndim != 2:
        raise ValueError(f"flat_fields needs a 2D profile (V, Dh), got shape {profile.shape}")
    if not (i0 > 0) or not math.isfinite(i0):
        raise ValueError(f"i0 must be > 0, got {i0}")
    if int(n_flats) != n_flats or n_flats < 1:
        raise ValueError(f"n_flats must be a positive integer, got {n_flats}")
    if profile.size and not (np.isfinite(profile).all() and profile.min() >= 0):
        raise ValueError("flat_fields needs a finite, non-negative profile")
    counts = rng.poisson(i0 * profile, size=(int(n_flats),) + profile.shape)
    return counts.astype(np.float32)


def temporal_responses(
    n_angles: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-angle responses of the drifting defect maps (docs/science.md B 4.3 step 1).

    ``sigma_p = sin(1.5 pi t_p) + 0.1 U_p`` and ``eps_p = exp(pi t_p) + 0.1 U'_p`` with
    ``t_p = p / (P - 1)`` (``t = 0`` if ``P = 1``) and ``U, U'`` uniform on ``[0, 1)`` (``U``
    drawn first), each divided by its maximum.

    Parameters
    ----------
    n_angles : int
        Number of projection angles ``P`` (>= 1).
    rng : numpy.random.Generator
        Source of the two uniform vectors.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(sigma_p, eps_p)``, float64, each of length ``P`` with maximum exactly 1.

    Examples
    --------
    >>> s, e = temporal_responses(10, np.random.default_rng(0))
    >>> float(s.max()), float(e.max())
    (1.0, 1.0)
    """
    if int(n_angles) != n_angles or n_angles < 1:
        raise ValueError(f"n_angles must be a positive integer, got {n_angles}")
    p = int(n_angles)
    t = np.arange(p, dtype=np.float64) / max(p - 1, 1)
    sigma = np.sin(1.5 * np.pi * t) + 0.1 * rng.random(p)
    eps = np.exp(np.pi * t) + 0.1 * rng.random(p)
    return sigma / sigma.max(), eps / eps.max()


def _defect_term(
    maps: np.ndarray,
    sigma_p: np.ndarray,
    eps_p: np.ndarray,
    delta: float,
    n_variations: int,
) -> np.ndarray:
    """float64 ``delta * (-[nv>=1] M0 + [nv>=2] s_p M1 + [nv>=3] e_p M2)``, shape (rows, P, Dh)."""
    maps = np.asarray(maps, dtype=np.float64)
    sigma_p = np.asarray(sigma_p, dtype=np.float64)
    eps_p = np.asarray(eps_p, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (n_maps, rows, Dh), got {maps.shape}")
    if sigma_p.ndim != 1 or eps_p.shape != sigma_p.shape:
        raise ValueError(
            f"sigma_p and eps_p must be 1D of equal length, got {sigma_p.shape}, {eps_p.shape}"
        )
    nv = min(max(int(n_variations), 0), 3)
    if maps.shape[0] < nv:
        raise ValueError(f"{nv} variations need {nv} maps, got {maps.shape[0]}")
    _, rows, dh = maps.shape
    term = np.zeros((rows, sigma_p.size, dh), dtype=np.float64)
    if nv >= 1:
        term -= maps[0][:, None, :]
    if nv >= 2:
        term += sigma_p[None, :, None] * maps[1][:, None, :]
    if nv >= 3:
        term += eps_p[None, :, None] * maps[2][:, None, :]
    term *= delta
    return term


def defect_response(
    maps: np.ndarray,
    sigma_p: np.ndarray,
    eps_p: np.ndarray,
    delta: float,
    n_variations: int = 3,
) -> np.ndarray:
    """Additive detector-defect term in units of ``I0`` (docs/science.md B 4.3 step 2).

    ``D[r, p, c] = delta * (-[nv>=1] M0[r, c] + [nv>=2] sigma_p[p] M1[r, c]
    + [nv>=3] eps_p[p] M2[r, c])``: ``M0`` is a constant under-response (note the minus),
    ``M1`` an oscillating and ``M2`` a drifting one. ``nv <= 0`` gives zeros; ``nv > 3`` adds
    nothing beyond 3.

    Parameters
    ----------
    maps : numpy.ndarray
        Defect maps ``(n_maps, rows, Dh)`` (already rolled for a shift), ``n_maps >= min(nv, 3)``.
    sigma_p, eps_p : numpy.ndarray
        Temporal responses of length ``P`` (:func:`temporal_responses`).
    delta : float
        Miscalibration strength (0.07 in the reference).
    n_variations : int
        Number of defect terms ``nv``.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, P, Dh)``; zero wherever all used maps are zero.

    Examples
    --------
    >>> maps = np.zeros((3, 2, 4)); maps[0, 1, 2] = 1.0
    >>> d = defect_response(maps, np.ones(5), np.ones(5), 0.5)
    >>> d.shape, float(d[1, 0, 2]), float(abs(d).sum())
    ((2, 5, 4), -0.5, 2.5)
    """
    return _defect_term(maps, sigma_p, eps_p, delta, n_variations).astype(np.float32)


def complex_projections(
    tau: np.ndarray,
    flat_mean_rel: np.ndarray,
    maps: np.ndarray,
    sigma_p: np.ndarray,
    eps_p: np.ndarray,
    delta: float,
    n_variations: int = 3,
    clean: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised ``-log`` sinograms of the complex mode for a block of detector rows.

    ``out = -log(max(tau + D / Fbar_rel, 1e-6))`` with ``D`` from :func:`defect_response`
    (computed in float64). Where ``D == 0`` (outside the map supports, or ``delta = 0``, or
    ``nv <= 0``) the argument is exactly ``tau``, so the result equals the clean target
    ``-log(max(tau, 1e-6))`` bit for bit: clean and stripe inputs differ only on the supports
    of the (rolled) maps.

    Parameters
    ----------
    tau : numpy.ndarray
        Measured transmission ``C / (I0 F0)``, shape ``(rows, P, Dh)``.
    flat_mean_rel : numpy.ndarray
        Mean flat divided by ``I0``, ``Fbar / I0``, shape ``(rows, Dh)`` (rolled like the maps),
        positive.
    maps : numpy.ndarray
        Defect maps for these rows, ``(n_maps, rows, Dh)``, already rolled.
    sigma_p, eps_p : numpy.ndarray
        Temporal responses of length ``P``.
    delta : float
        Miscalibration strength; 0 gives the clean target.
    n_variations : int
        Number of defect terms.
    clean : numpy.ndarray, optional
        ``neg_log(tau)`` when the caller already has it (the clean target); only the
        detector pixels under the maps are recomputed.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, P, Dh)``, computed in float64 as
        ``-log(max(float64(tau) + D / Fbar_rel, 1e-6))`` then cast.

    Raises
    ------
    ValueError
        On inconsistent shapes or a non-positive / non-finite ``flat_mean_rel``.

    Examples
    --------
    >>> tau = np.full((2, 5, 4), 0.5)
    >>> maps = np.zeros((3, 2, 4)); maps[0, 1, 2] = 1.0
    >>> s, e = np.ones(5), np.ones(5)
    >>> clean = complex_projections(tau, np.ones((2, 4)), maps, s, e, 0.0)
    >>> noisy = complex_projections(tau, np.ones((2, 4)), maps, s, e, 0.1)
    >>> np.argwhere((noisy != clean).any(axis=1)).tolist()
    [[1, 2]]
    """
    if clean is None:
        clean = neg_log(tau)
    elif np.shape(clean) != np.shape(tau):
        raise ValueError(f"clean must have the shape of tau {np.shape(tau)}, got "
                         f"{np.shape(clean)}")
    out = np.array(clean, dtype=np.float32, copy=True)
    r, c, values = defect_pixels(tau, flat_mean_rel, maps, sigma_p, eps_p, delta,
                                 n_variations)
    out[r, :, c] = values
    return out


def defect_pixels(
    tau: np.ndarray,
    flat_mean_rel: np.ndarray,
    maps: np.ndarray,
    sigma_p: np.ndarray,
    eps_p: np.ndarray,
    delta: float,
    n_variations: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector pixels a defect changes, and their ``-log`` values at every angle.

    A shifted input of the complex mode is the clean target ``neg_log(tau)`` except on the
    pixels under the (rolled) defect maps; this returns just those: rows ``r``, columns
    ``c`` (``k`` pixels) and ``values`` of shape ``(k, P)`` (float32), so that
    ``complex_projections(...)[r, :, c] == values``. The defects are a few small blobs, so
    this is far cheaper than a whole volume.

    Parameters and errors are those of :func:`complex_projections` (without ``clean``).

    Examples
    --------
    >>> maps = np.zeros((3, 2, 4)); maps[0, 1, 2] = 1.0
    >>> r, c, v = defect_pixels(np.full((2, 5, 4), 0.5), np.ones((2, 4)), maps,
    ...                         np.ones(5), np.ones(5), 0.1)
    >>> r.tolist(), c.tolist(), v.shape
    ([1], [2], (1, 5))
    """
    tau = np.asarray(tau)
    fbar = np.asarray(flat_mean_rel, dtype=np.float64)
    if tau.ndim != 3:
        raise ValueError(f"tau must have shape (rows, P, Dh), got {tau.shape}")
    rows, n_angles, dh = tau.shape
    if fbar.shape != (rows, dh):
        raise ValueError(f"flat_mean_rel must have shape {(rows, dh)}, got {fbar.shape}")
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != (rows, dh):
        raise ValueError(f"maps must have shape (n_maps, {rows}, {dh}), got {maps.shape}")
    if np.size(sigma_p) != n_angles:
        raise ValueError(f"temporal responses need {n_angles} angles, got {np.size(sigma_p)}")
    nv = min(max(int(n_variations), 0), 3)
    none = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((0, n_angles), np.float32))
    if delta == 0 or nv == 0:
        return none
    if not (np.isfinite(fbar).all() and fbar.min() > 0):
        raise ValueError("flat_mean_rel must be positive and finite")
    r, c = np.nonzero((maps[:nv] != 0).any(axis=0))
    if r.size == 0:
        return none
    term = _defect_term(maps[:nv, r, c][:, None, :], sigma_p, eps_p, delta, nv)[0]  # (P, k)
    return r, c, neg_log(tau[r, :, c] + (term / fbar[r, c]).T)


def neg_log(tau: np.ndarray) -> np.ndarray:
    """``-log(max(tau, 1e-6))`` computed in float64, returned as float32.

    Examples
    --------
    >>> neg_log(np.array([1.0, np.exp(-2.0), 0.0])).tolist()
    [-0.0, 2.0, 13.815510749816895]
    """
    arg = np.maximum(np.asarray(tau, dtype=np.float64), TAU_FLOOR)
    np.log(arg, out=arg)
    np.negative(arg, out=arg)
    return arg.astype(np.float32)
