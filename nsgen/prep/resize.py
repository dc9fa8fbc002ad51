"""Anti-aliased resizing of sinograms, equivalent to scikit-image's ``resize``.

``skimage.transform.resize(x, shape, anti_aliasing=True)`` with its defaults
(order 1, mode 'reflect', clip) is, per axis with factor ``f = n_in / n_out``
(docs/science.md B 6.5):

1. a Gaussian pre-filter, ``sigma = max(0, (f - 1) / 2)``, scipy boundary mode
   ``'mirror'`` (``d c b | a b c d | c b a``; skimage calls it 'reflect'),
   truncated at 4 sigma (``scipy.ndimage.gaussian_filter``);
2. linear interpolation where output pixel ``o`` samples input coordinate
   ``(o + 0.5) f - 0.5`` (``scipy.ndimage.zoom(order=1, mode='mirror',
   grid_mode=True)``);
3. the result clipped to the input's [min, max] (skimage's ``clip=True``).

Steps 1 and 2 are linear and separable, so along each axis they are one
``(n_out, n_in)`` matrix ``A``. :func:`axis_operator` builds it once per
``(n_in, n_out)`` pair (cached) by applying exactly those scipy calls to the
columns of an identity matrix (in practice to a few combs of impulses far enough apart
not to overlap, which gives the same entries bit for bit), so it agrees with scipy by
construction; it is banded (about ``4 f + 2`` non-zeros per row) and stored sparse. A sinogram
``X`` (angles x columns) becomes ``A_angles @ X @ A_columns.T``, computed by a
compiled kernel (:mod:`nsgen.prep._resize_jit`) that walks the bands: the same float32
sums, in the same order, as SciPy's sparse products (bit-identical to them), at about
1 ns per input pixel instead of 2, and with the sinogram's min and max found in the
same pass.

Clipping (step 3) is per sinogram, as when skimage is called on each sinogram.
The operators' rows are non-negative and sum to 1, so every output value is a
convex combination of input values: the clip only removes float rounding (it
makes a constant sinogram come out exactly constant, as in skimage).

Inputs must be finite (:func:`nsgen.prep.normalise.flat_field_log` guarantees
it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["axis_operator", "downsample", "normalise_downsample", "prepare_downsample"]

_TRUNCATE = 4.0
_MODE = "mirror"


def _sigma(n_in: int, n_out: int) -> float:
    return max(0.0, (n_in / n_out - 1.0) / 2.0)


@lru_cache(maxsize=32)
def axis_operator(n_in: int, n_out: int) -> sp.csr_array:
    """The 1D resize operator (Gaussian pre-filter + linear interpolation).

    Parameters
    ----------
    n_in, n_out : int
        Input and output lengths (>= 1).

    Returns
    -------
    scipy.sparse.csr_array
        float32 ``(n_out, n_in)``; ``y = A @ x`` resizes a 1D signal ``x``
        exactly as the scipy steps of the module description do (up to
        rounding). Cached per ``(n_in, n_out)``; treat it as read-only.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"lengths must be >= 1, got n_in={n_in}, n_out={n_out}")
    import scipy.sparse as sp  # here: the main process never needs SciPy

    sigma = _sigma(n_in, n_out)
    # Input i reaches outputs whose sample coordinate lies within `reach` of i (or of its
    # mirror image at an end): the Gaussian's radius plus the interpolation's one sample.
    reach = int(_TRUNCATE * sigma + 0.5) + 1
    spacing = 2 * reach + 4
    s = np.arange(min(spacing, n_in))
    if spacing >= n_in:  # one impulse per comb: the identity
        response = _impulse_responses(n_in, n_out, sigma, n_in)
        i = np.broadcast_to(s[None, :], response.shape).astype(np.float64)
    else:
        response = _impulse_responses(n_in, n_out, sigma, spacing)
        # response[o, s] sums column i of the operator over the impulses i = s (mod
        # spacing); only the one nearest to o's sample coordinate can reach o (the others
        # are more than `reach` away and add exact zeros), so it is that column's entry
        coord = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        i = s[None, :] + spacing * np.round((coord[:, None] - s[None, :]) / spacing)
    o = np.broadcast_to(np.arange(n_out)[:, None], i.shape)
    keep = (i >= 0) & (i < n_in) & (np.abs(response) >= 1e-12)
    op = sp.csr_array((response[keep].astype(np.float32),
                       (o[keep], i[keep].astype(np.int64))), shape=(n_out, n_in))
    op.sum_duplicates()
    op.sort_indices()
    return op


def _impulse_responses(n_in: int, n_out: int, sigma: float, spacing: int) -> np.ndarray:
    """The scipy steps of the module description applied to ``spacing`` combs of unit
    impulses (comb ``s`` has ones at ``s, s + spacing, ...``): ``(n_out, spacing)``.

    With ``spacing`` the identity matrix itself (what the operator is by definition); the
    combs need ``n_in / spacing`` times less work, 20x less at 2560 -> 362 columns.
    """
    import scipy.ndimage as ndi

    comb = np.zeros((n_in, spacing), dtype=np.float64)
    for s in range(spacing):
        comb[s::spacing, s] = 1.0
    if sigma > 0:
        comb = ndi.gaussian_filter1d(comb, sigma, axis=0, mode=_MODE, truncate=_TRUNCATE)
    if n_out != n_in:
        comb = ndi.zoom(comb, (n_out / n_in, 1.0), order=1, mode=_MODE, grid_mode=True)
    if comb.shape != (n_out, spacing):  # pragma: no cover - zoom's rounding of the shape
        raise RuntimeError(f"operator shape {comb.shape} != {(n_out, spacing)}")
    return comb


@lru_cache(maxsize=32)
def _bands(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`axis_operator` as dense bands: ``(start (n_out,) int64, weights (n_out, w))``.

    Row ``o`` of the operator is ``weights[o]`` at columns ``start[o] .. start[o] + w - 1``
    (zero weights pad the shorter rows; bands are shifted to lie inside ``0 .. n_in - 1``).
    """
    op = axis_operator(n_in, n_out)
    rows = [op.indices[op.indptr[o]:op.indptr[o + 1]] for o in range(n_out)]
    first = np.array([r[0] if r.size else 0 for r in rows])
    last = np.array([r[-1] if r.size else 0 for r in rows])
    width = int(max(1, (last - first + 1).max()))
    start = np.minimum(first, n_in - width).astype(np.int64)
    weights = np.zeros((n_out, width), dtype=np.float32)
    for o, cols in enumerate(rows):
        weights[o, cols - start[o]] = op.data[op.indptr[o]:op.indptr[o + 1]]
    start.setflags(write=False)
    weights.setflags(write=False)
    return start, weights


def downsample(sinos: np.ndarray, out_shape: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Resize sinograms like ``skimage.transform.resize(..., anti_aliasing=True)``.

    Parameters
    ----------
    sinos : numpy.ndarray
        One sinogram ``(P, Dh)`` or a stack ``(rows, P, Dh)``; finite values.
    out_shape : tuple of int
        ``(p, d)``, the size of each output sinogram.
    out : numpy.ndarray, optional
        float32 array of the output shape to write into.

    Returns
    -------
    numpy.ndarray
        float32 ``(p, d)`` or ``(rows, p, d)``, each sinogram clipped to its own
        input [min, max].

    Examples
    --------
    >>> x = np.ones((1801, 2560), dtype=np.float32)
    >>> y = downsample(x, (402, 362))
    >>> y.shape, bool(np.all(y == 1))
    ((402, 362), True)
    """
    x = np.asarray(sinos)
    if x.ndim not in (2, 3):
        raise ValueError(f"sinos must be (P, Dh) or (rows, P, Dh), got shape {x.shape}")
    p, d = (int(v) for v in out_shape)
    if p < 1 or d < 1:
        raise ValueError(f"out_shape must be positive, got {out_shape}")
    stack = x if x.ndim == 3 else x[None]
    stack = stack.astype(np.float32, copy=False)
    n, n_p, n_d = stack.shape
    shape = (n, p, d) if x.ndim == 3 else (p, d)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
    res = out if x.ndim == 3 else out[None]
    if n == 0:
        return out

    from nsgen.prep._resize_jit import resize_stack  # compiled, cached on disk

    bands = (*_bands(n_p, p), *_bands(n_d, d))
    if stack.flags.c_contiguous:
        resize_stack(stack, *bands, res)
    else:  # e.g. a range of angles of a stack: each sinogram is still contiguous, no copy
        for v in range(n):
            resize_stack(np.ascontiguousarray(stack[v:v + 1]), *bands, res[v:v + 1])
    return out


def normalise_downsample(raw: np.ndarray, flat_mean: np.ndarray, dark_mean: np.ndarray,
                         out_shape: tuple[int, int], out: np.ndarray | None = None
                         ) -> np.ndarray:
    """``downsample(flat_field_log(raw, flat_mean, dark_mean), out_shape)``, fused.

    Bit-identical to the two calls, about twice as fast, and without the full-resolution
    float32 sinograms in memory: each projection row is normalised into a buffer that
    stays in cache and added straight into the outputs of its band.

    Parameters
    ----------
    raw : numpy.ndarray
        Raw counts ``(n_projections, n_rows, n_columns)``, any real dtype.
    flat_mean, dark_mean : numpy.ndarray
        Mean flat and dark fields ``(n_rows, n_columns)``.
    out_shape : tuple of int
        ``(p, d)``, the size of each output sinogram.
    out : numpy.ndarray, optional
        float32 ``(n_rows, p, d)`` to write into.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_rows, p, d)``: the downsampled sinogram of every detector row.

    Examples
    --------
    >>> raw = np.full((30, 2, 40), 600, np.uint16)      # half the light everywhere
    >>> f = np.full((2, 40), 1100.0); d = np.full((2, 40), 100.0)
    >>> y = normalise_downsample(raw, f, d, (10, 8))
    >>> y.shape, bool(np.allclose(y, np.log(2.0)))
    ((2, 10, 8), True)
    """
    from nsgen.prep.normalise import check_raw, pixel_constants

    raw, flat, dark = check_raw(raw, flat_mean, dark_mean)
    n_p, n, n_d = raw.shape
    p, d = (int(v) for v in out_shape)
    if p < 1 or d < 1:
        raise ValueError(f"out_shape must be positive, got {out_shape}")
    if out is None:
        out = np.empty((n, p, d), dtype=np.float32)
    elif out.shape != (n, p, d) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, p, d)}, "
                         f"got {out.dtype} {out.shape}")
    if n == 0 or n_p == 0:
        if n and n_p == 0:
            raise ValueError("raw has no projections to downsample")
        return out

    from nsgen.prep._resize_jit import normalise_resize_stack  # compiled, cached on disk

    normalise_resize_stack(raw, *pixel_constants(flat, dark), *_bands(n_p, p),
                           *_bands(n_d, d), out)
    return out


def prepare_downsample(in_shape: tuple[int, int], out_shape: tuple[int, int]) -> None:
    """Build the operators of one resize and load the compiled kernel of
    :func:`normalise_downsample` in this process.

    Both happen on first use anyway; a worker calls this while its first chunk is read.
    """
    _bands(int(in_shape[0]), int(out_shape[0]))
    _bands(int(in_shape[1]), int(out_shape[1]))
    normalise_downsample(np.ones((8, 1, 8), np.uint16), np.full((1, 8), 2.0),
                         np.zeros((1, 8)), (2, 2))
