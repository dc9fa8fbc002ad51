"""What the robust detector keeps of each detector row, from that row alone: the ranks of
every angle set (Vo's sorting, per angle block and pooled over the scan), their strong
defects and the means over the angle bins (:func:`row_features`; from raw projections
without the normalised volume: :func:`raw_feature_fields`, :func:`raw_bin_means`), their
layout (:func:`feature_layout`, :func:`split_features`) and the angle blocks
(:func:`block_edges`). A pass over row chunks computes them with no halo
(:mod:`nsgen.stages.robust`); :mod:`nsgen.prep.stripe_robust` decides from them.
"""

from __future__ import annotations

import numpy as np

from nsgen.prep._lazy import kernels
from nsgen.prep.normalise import check_raw, pixel_constants
from nsgen.prep.robust_angles import angle_bins
from nsgen.prep.robust_scores import (QUANTILES, pooled, rank_index, ranks, raw_ranks,
                                      strong_columns)

_rj = kernels("nsgen.prep._robust_jit")

__all__ = ["BLOCKS", "MIN_BLOCK", "bin_means", "block_edges", "feature_layout",
           "raw_bin_means", "raw_feature_fields", "raw_feature_parts", "row_feature_parts",
           "row_features", "split_features"]

#: angle blocks for stripes over part of the scan, and the fewest angles a block may have
BLOCKS = 6
MIN_BLOCK = 30


def block_edges(n_k: int) -> np.ndarray:
    """Edges of the angle blocks of ``n_k`` angles (one block below ``BLOCKS * MIN_BLOCK``)."""
    n_b = BLOCKS if n_k >= BLOCKS * MIN_BLOCK else 1
    return np.array([n_k * b // n_b for b in range(n_b + 1)], np.intp)


def feature_layout(n_k: int) -> tuple[list[int], int]:
    """Fields of :func:`row_features` for ``n_k`` angles: the ranks kept of each angle set
    (the blocks, then the whole scan's pooled from them; or the whole scan alone) and the
    angle bins of :func:`~nsgen.prep.robust_angles.refine` (none with one block). The
    fields are ``sum(ranks) + len(ranks) + bins`` (ranks, strong flags per set, bins).

    Examples
    --------
    >>> feature_layout(1801)
    ([32, 32, 32, 32, 32, 32, 32], 258)
    >>> feature_layout(100)
    ([32], 0)
    """
    edges = block_edges(n_k)
    sizes = [rank_index(int(e1 - e0)).size for e0, e1 in zip(edges[:-1], edges[1:])]
    if len(sizes) == 1:
        return sizes, 0
    n = sum(sizes)
    sizes.append(np.unique(np.linspace(0, n - 1, QUANTILES).round()).size)
    return sizes, angle_bins(edges, n_k).size - 1


def row_features(x: np.ndarray) -> np.ndarray:
    """What the detector needs of each row of ``x`` ``(angles, rows, columns)`` float32,
    from that row alone (so a pass over row chunks needs no halo): ``(rows, fields,
    columns)`` float32 in :func:`feature_layout`'s order: the ranks of every angle set,
    its strong defects (0/1), the means over the angle bins
    (:func:`row_feature_parts` joined)."""
    return np.concatenate(row_feature_parts(x), axis=1)


def row_feature_parts(x: np.ndarray, means: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`row_features` in two parts: the ranks and strong defects (what
    :func:`~nsgen.prep.stripe_robust.row_offsets` reads, with ``hd`` rows each side) and
    the angle-bin means (what the decision reads of its rows only; ``(rows, 0, columns)`` with one block, or without
    ``means``: :func:`bin_means` gives them later, for the rows that need them)."""
    n_k = x.shape[0]
    edges = block_edges(n_k)
    if edges.size == 2 or not means:
        xb = np.empty((x.shape[1], 0, x.shape[2]), np.float32)
        sets = [ranks(x, int(e0), int(e1)) for e0, e1 in zip(edges[:-1], edges[1:])]
    else:
        # the bin means (float64 sums in angle order) as the blocks are ranked
        bins = angle_bins(edges, n_k)
        xb = np.empty((x.shape[1], bins.size - 1, x.shape[2]), np.float32)
        sets = []
        for e0, e1 in zip(edges[:-1], edges[1:]):
            b0, b1 = np.searchsorted(bins, [e0, e1])
            sets.append(ranks(x, int(e0), int(e1), bins[b0:b1 + 1], xb, int(b0)))
    if edges.size > 2:
        sets.append(pooled(sets))
    strong = [strong_columns(srt)[:, None].astype(np.float32) for srt in sets]
    return np.concatenate(sets + strong, axis=1), xb


def raw_feature_parts(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """The first of :func:`row_feature_parts` (ranks and strong defects) of the raw
    projections ``raw`` ``(angles, rows, columns)`` with their mean ``flat`` and ``dark``
    rows: the same values as from :func:`~nsgen.prep.normalise.flat_field_log`'s volume,
    which is never made (:func:`~nsgen.prep.robust_scores.raw_ranks` normalises each
    tile of a row as it ranks it)."""
    return np.concatenate(raw_feature_fields(raw, flat, dark), axis=1)


def raw_feature_fields(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray,
                       means: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`raw_feature_parts` apart, as computed (no joined copy): the ranks of each
    angle set ``(rows, ranks, columns)`` float32, C-contiguous, then their strong defects
    ``(rows, sets, columns)`` float32 (0/1). With ``means`` (``(rows, bins, columns)``
    float32, the bins of :func:`feature_layout`; more than one angle block), also the
    rows' :func:`raw_bin_means` into it, from the same pass over the raw values."""
    raw, flat, dark = check_raw(raw, flat, dark)
    edges = block_edges(raw.shape[0])
    bins = None if means is None else angle_bins(edges, raw.shape[0])
    sets = raw_ranks(raw, pixel_constants(flat, dark), edges, bins, means)
    strong = np.stack([strong_columns(srt) for srt in sets], axis=1).astype(np.float32)
    return [*sets, strong]


def bin_means(x: np.ndarray) -> np.ndarray:
    """The angle-bin means of :func:`row_feature_parts` (the same values) of the rows of
    ``x`` ``(angles, rows, columns)`` float32: ``(rows, bins, columns)`` float32 (no bins
    with one angle block)."""
    n_k = x.shape[0]
    edges = block_edges(n_k)
    bins = angle_bins(edges, n_k) if edges.size > 2 else edges[:1]
    out = np.empty((x.shape[1], bins.size - 1, x.shape[2]), np.float32)
    _rj.bin_means(np.ascontiguousarray(x, np.float32), bins, out)
    return out


def raw_bin_means(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray,
                  rows: tuple[int, int] | None = None) -> np.ndarray:
    """:func:`bin_means` (the same values) of the rows ``rows`` (default: all) of the raw
    projections ``raw`` ``(angles, rows, columns)`` with their mean ``flat`` and ``dark``
    rows, normalised as :func:`~nsgen.prep.normalise.flat_field_log` on the way (the
    normalised rows are never stored): ``(rows, bins, columns)`` float32.

    Examples
    --------
    >>> from nsgen.prep.normalise import flat_field_log
    >>> raw = np.random.default_rng(0).integers(100, 900, (180, 3, 8)).astype(np.uint16)
    >>> flat, dark = np.full((3, 8), 1000.0), np.zeros((3, 8))
    >>> x = flat_field_log(raw, flat, dark, sinograms_first=False)
    >>> bool(np.array_equal(raw_bin_means(raw, flat, dark, (1, 3)), bin_means(x)[1:3]))
    True
    """
    raw, flat, dark = check_raw(raw, flat, dark)
    n_k = raw.shape[0]
    j0, j1 = rows or (0, raw.shape[1])
    edges = block_edges(n_k)
    bins = angle_bins(edges, n_k) if edges.size > 2 else edges[:1]
    out = np.empty((j1 - j0, bins.size - 1, raw.shape[2]), np.float32)
    _rj.raw_bin_means(raw, j0, j1, *pixel_constants(flat, dark), bins, out)
    return out


def split_features(feat: np.ndarray, n_k: int) -> tuple[list[np.ndarray], list[np.ndarray],
                                                 np.ndarray]:
    """The ranks of each angle set, their strong defects and the bin means of
    :func:`row_features` ``feat`` ``(rows, fields, columns)`` (or of the first of
    :func:`row_feature_parts`: no bin means)."""
    sizes, n_bins = feature_layout(n_k)
    if feat.shape[1] not in (sum(sizes) + len(sizes) + n_bins, sum(sizes) + len(sizes)):
        raise ValueError(f"features have {feat.shape[1]} fields; {n_k} angles need "
                         f"{sum(sizes) + len(sizes) + n_bins}")
    cut = np.cumsum([0] + sizes)
    sets = [np.ascontiguousarray(feat[:, a:b]) for a, b in zip(cut[:-1], cut[1:])]
    strong = [feat[:, cut[-1] + n] > 0.5 for n in range(len(sizes))]
    return sets, strong, feat[:, cut[-1] + len(sizes):]
