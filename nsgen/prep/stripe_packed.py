"""The two row-chunked stages of the Larix detector as ``nsgen mask`` streams them.

Same results, bit for bit, as :func:`nsgen.prep.stripe_detect.stripe_candidates_rows` and
:func:`~nsgen.prep.stripe_detect.merge_stripes_rows` on the normalised volume, with less
memory and fewer passes over it:

* :func:`candidates_from_raw` takes raw counts and the mean flat and dark rows: each
  angle's plane is normalised (the float32 values of
  :func:`~nsgen.prep.normalise.flat_field_log`, always finite) just before the ratio map
  takes its gradient, so the float32 volume (4 bytes per voxel) is never stored and no
  finiteness pass is needed; the windowed count writes the candidates bit-packed along
  columns (``np.packbits`` layout, 1 bit per voxel) with no byte copy.
* :func:`merge_packed` runs the merge passes on packed candidates: the depth pass (the
  only one coupling detector rows, halo ``min_stripe_depth // 2``) counts only the set
  voxels of the rows it keeps, on the packed rows, so halo rows are read (1 bit per voxel)
  but never unpacked or merged; the length, short-stripe and gap-filling passes act within
  a row and run on the kept rows only.

Examples
--------
>>> from nsgen.prep.normalise import flat_field_log
>>> from nsgen.prep.stripe_detect import detect_stripe_mask
>>> rng = np.random.default_rng(1)
>>> raw = rng.integers(100, 4000, (60, 40, 21)).astype(np.uint16)
>>> raw[:, 12:15, 7] = 90                       # a short stripe
>>> flat, dark = np.full((40, 21), 4100.0), np.full((40, 21), 50.0)
>>> p = DetectParams(size=10, radius=3, min_stripe_length=20, min_stripe_depth=6,
...                  min_stripe_width=4)
>>> cand = candidates_from_raw(raw, flat, dark, 0, (0, 40), 40, p)
>>> cand.shape                                  # rows, angles, ceil(columns / 8)
(40, 60, 3)
>>> mask = merge_packed(cand[7:23], 7, (10, 20), 40, p, 21)   # rows 10-19, halo 3
>>> ref = detect_stripe_mask(flat_field_log(raw, flat, dark, sinograms_first=False),
...                          **vars(p))
>>> bool((mask.transpose(1, 0, 2) == ref[:, 10:20]).all()), int(ref.sum()) > 0
(True, True)
"""

from __future__ import annotations

import numpy as np

from nsgen.prep.detect_params import DETECT_FIELDS, MERGE_FIELDS, DetectParams
from nsgen.prep.normalise import check_raw, pixel_constants
from nsgen.prep.stripe_detect import _block_rows, _mirror_table

__all__ = ["candidates_from_raw", "load_packed_kernels", "merge_packed", "packed_columns"]


def packed_columns(n_cols: int) -> int:
    """Bytes of a row of ``n_cols`` columns packed one bit per column.

    >>> packed_columns(2560), packed_columns(21)
    (320, 3)
    """
    return -(-n_cols // 8)


def candidates_from_raw(raw: np.ndarray, flat_mean: np.ndarray, dark_mean: np.ndarray,
                        block_start: int, rows: tuple[int, int], n_rows_total: int,
                        params: DetectParams, out: np.ndarray | None = None,
                        work: np.ndarray | None = None) -> np.ndarray:
    """Candidates ``W <= threshold`` of detector rows ``[start, stop)``, bit-packed.

    Parameters
    ----------
    raw : ndarray, shape (n_angles, n_block_rows, n_cols)
        Raw counts (any real dtype) of volume rows ``[block_start, block_start +
        n_block_rows)``; they must hold the rows plus ``params.radius`` rows each side
        (clipped at the volume's edges), see :func:`~nsgen.prep.stripe_detect.rows_to_read`.
    flat_mean, dark_mean : ndarray, shape (n_block_rows, n_cols)
        Mean flat and dark fields of those rows.
    block_start, rows, n_rows_total, params
        As for :func:`~nsgen.prep.stripe_detect.stripe_candidates_rows`.
    out : ndarray, optional
        C-contiguous uint8 array of the result's shape to write into.
    work : ndarray, optional
        Reusable C-contiguous uint8 scratch of at least ``n_angles * (stop - start) *
        n_cols`` bytes (the thresholded ratio map).

    Returns
    -------
    ndarray, uint8, shape (stop - start, n_angles, packed_columns(n_cols))
        The candidates of :func:`~nsgen.prep.stripe_detect.stripe_candidates_rows`, rows
        first, ``np.packbits`` along columns.
    """
    from nsgen.prep import _ratio_jit, _stripe_jit  # compiled on first use (cached on disk)

    raw, flat, dark = check_raw(raw, flat_mean, dark_mean)
    n_k, n_block, n_i = raw.shape
    params.check((n_k, n_rows_total, n_i), only=DETECT_FIELDS)
    start, stop, b0, b1 = _block_rows(block_start, n_block, rows, n_rows_total, params.radius)
    raw = np.ascontiguousarray(raw[:, b0:b1])
    norm = np.stack(pixel_constants(flat[b0:b1], dark[b0:b1]))
    n_out = stop - start
    n = n_k * n_out * n_i
    if work is None:
        work = np.empty(n, np.uint8)
    if work.dtype != np.uint8 or work.size < n or not work.flags.c_contiguous:
        raise ValueError(f"work must be a C-contiguous uint8 array of at least {n} bytes")
    below = work.reshape(-1)[:n].view(np.bool_).reshape(n_k, n_out, n_i)
    shape = (n_out, n_k, packed_columns(n_i))
    if out is None:
        out = np.empty(shape, np.uint8)
    if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
    r = params.radius
    j0 = start - block_start - b0
    mk, mj, mi = (_mirror_table(m, r) for m in raw.shape)
    _ratio_jit.ratio_map_into(raw, norm, r, mk, mj, mi, j0, j0 + n_out,
                              np.float32(params.threshold), np.empty((1, 1), np.float32),
                              below, 0)
    # W <= t  <=>  at least `size` of the 2*size+1 window values are <= t
    _stripe_jit.count_at_least_packed(below.view(np.uint8), params.size, params.size, out)
    return out


def merge_packed(packed: np.ndarray, block_start: int, rows: tuple[int, int],
                 n_rows_total: int, params: DetectParams, n_cols: int,
                 out: np.ndarray | None = None) -> np.ndarray:
    """STRIPES_MERGE passes 2-5 for detector rows ``[start, stop)`` of packed candidates.

    Parameters
    ----------
    packed : ndarray, uint8, shape (n_block_rows, n_angles, packed_columns(n_cols))
        Rows ``[block_start, block_start + n_block_rows)`` of :func:`candidates_from_raw`;
        they must hold the rows plus ``min_stripe_depth // 2`` rows each side (clipped at
        the volume's edges).
    block_start, rows, n_rows_total, params
        As for :func:`~nsgen.prep.stripe_detect.merge_stripes_rows`.
    n_cols : int
        Detector columns.
    out : ndarray, optional
        C-contiguous uint8 array of the result's shape to write into.

    Returns
    -------
    ndarray, uint8, shape (stop - start, n_angles, n_cols)
        0/1 stripe mask, rows first (as :func:`~nsgen.prep.stripe_detect.merge_stripes_rows`).
    """
    from nsgen.prep import _stripe_jit

    c = np.ascontiguousarray(packed, dtype=np.uint8)
    if c.ndim != 3 or c.shape[2] != packed_columns(n_cols):
        raise ValueError(f"packed must be (rows, angles, {packed_columns(n_cols)}) uint8 for "
                         f"{n_cols} columns; got {c.shape}")
    n_k = c.shape[1]
    params.check((n_k, n_rows_total, n_cols), only=MERGE_FIELDS)
    hl, t_v, hd, t_d = params.merge_counts()
    start, stop, b0, b1 = _block_rows(block_start, c.shape[0], rows, n_rows_total, hd)
    shape = (stop - start, n_k, n_cols)
    if out is None:
        out = np.empty(shape, np.uint8)
    if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
    active = np.empty((shape[0], n_cols), np.uint8)
    kept = np.empty((shape[0], n_k, c.shape[2]), np.uint8)
    # the block cropped to the rows the kernels need: its ends mirror like the volume's
    _stripe_jit.depth_unpack(c[b0:b1], start - block_start - b0,
                             hd if params.min_stripe_depth > 0 else -1, t_d, out, active, kept)
    _stripe_jit.length_passes(out, hl, t_v, active, kept)   # keeps `active` exact
    _stripe_jit.fill_passes(out, params.min_stripe_width, active)
    return out


def load_packed_kernels(dtype: str = "<u2") -> None:
    """Load (or compile, the first time) the compiled kernels of both stages for raw counts
    of ``dtype``, and the packing kernels, in this process (a worker calls it while its
    first chunk is read).

    Two groups, about equally long to compile (the ratio map; the counts, merge passes and
    packing), taken in turn with the other workers (:func:`nsgen.prep._jit.load_in_turn`):
    on an empty cache two workers compile one group each at the same time.
    """
    from nsgen.prep import _ratio_jit, _stripe_jit
    from nsgen.prep._jit import load_in_turn
    from nsgen.prep.stripe_detect import _mirror_table

    raw = np.ones((8, 6, 8), dtype)
    p = DetectParams(size=2, radius=1, threshold=0.5, min_stripe_length=2, min_stripe_depth=2,
                     min_stripe_width=2)
    below = np.zeros((8, 6, 8), np.bool_)

    def ratio() -> None:
        norm = np.stack(pixel_constants(np.full((6, 8), 2.0), np.zeros((6, 8))))
        mk, mj, mi = (_mirror_table(m, 1) for m in raw.shape)
        _ratio_jit.ratio_map_into(raw, norm, 1, mk, mj, mi, 0, 6, np.float32(0.5),
                                  np.empty((1, 1), np.float32), below, 0)

    def merge() -> None:
        cand = np.empty((6, 8, 1), np.uint8)
        _stripe_jit.count_at_least_packed(below.view(np.uint8), 2, 2, cand)
        mask = merge_packed(cand, 0, (0, 6), 6, p, 8)
        bits = np.empty((*mask.shape[:2], 1), np.uint8)
        _stripe_jit.pack_bits(mask, bits)
        _stripe_jit.unpack_bits(bits, mask)     # the archive's compression stage

    load_in_turn([(f"larix-ratio-{np.dtype(dtype).name}", ratio), ("larix-merge", merge)])
