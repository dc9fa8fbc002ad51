"""Chunking of the robust detector's passes over a scan (:mod:`nsgen.stages.robust`) within
the run's memory limit: what a worker of each pass holds per row."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nsgen.engine.sizing import Sizing
from nsgen.prep.detect_params import DetectParams
from nsgen.prep.robust_angles import plane_edges
from nsgen.prep.robust_features import block_edges, feature_layout
from nsgen.prep.robust_stack import DECIDE_REACH as REACH
from nsgen.prep.stripe_robust import depth_rule
from nsgen.runner import StageRunner
from nsgen.stages.robust_scratch import BIN_BAND
from nsgen.stages.scan_sizing import row_sizing, scan_sizing
from nsgen.stages.stripes import JIT_OVERHEAD

__all__ = ["DECIDE_COLUMN_BYTES", "FEATURE_FLOAT_COPIES", "OFFSET_WORK_FACTOR", "balanced",
           "sizings"]

#: float32 copies of a row a pass-one worker holds (its features, ~0.13 of a row at 1801
#: angles, twice, the strong flags, and its angle-bin means for ``M0``, ~0.14; the
#: normalised volume is never made: :func:`~nsgen.prep.robust_features.raw_feature_parts`)
FEATURE_FLOAT_COPIES = 0.65
#: bytes a pass-two worker holds per feature byte read (the angle sets' rows, mapped from
#: the scratch files: counted as the copies they were, and one background copy)
OFFSET_WORK_FACTOR = 2.5
#: bytes a decide worker holds per row and column besides the mask: the decision's scores
#: and temporaries (float64 maps of its rows; measured on 1801 x 256 x 2560, peak RSS of
#: the pass's replay in row chunks of 32, 64 and 128: 0.7-2.1 MB per row, 270-820 bytes
#: per column)
DECIDE_COLUMN_BYTES = 1536


def balanced(chunk_rows: int, n_rows: int, workers: int) -> int:
    """Rows per chunk, at most ``chunk_rows``, aiming at a chunk count that is a multiple
    of ``workers``, the chunks as even as can be (a pass whose chunks cost alike ends when its
    busiest worker does).

    Examples
    --------
    >>> balanced(56, 256, 2)   # 5 chunks (56, 56, 56, 56, 32): 6 of 43 (the last 41)
    43
    >>> balanced(300, 256, 2), balanced(7, 256, 2)
    (128, 7)
    """
    n = -(-n_rows // max(1, chunk_rows))
    n = -(-n // workers) * workers
    return max(1, -(-n_rows // n))


def sizings(run: StageRunner, shape: tuple[int, int, int], dtype: str,
            layouts: Mapping[str, tuple[tuple[int, ...], str]], params: DetectParams,
            alongside: float = 0.0) -> tuple[Sizing, Sizing, Sizing]:
    """The three passes' chunking within ``run``'s memory limit (the first pass's workers
    holding ``alongside`` float32 copies of a row more: a pass run with it)."""
    n_angles, n_rows, n_cols = shape
    feat_bytes = int(np.prod(layouts["features"][0][1:])) * 4
    # :class:`RowBins`: a band of raw rows and one row's means (normalised on the way:
    # :func:`~nsgen.prep.robust_features.raw_bin_means` stores no normalised row)
    bins_row = n_angles * n_cols * BIN_BAND * np.dtype(dtype).itemsize + \
        feature_layout(n_angles)[1] * n_cols * 4
    first = scan_sizing(run, shape, dtype, FEATURE_FLOAT_COPIES + alongside,
                        worker_overhead=JIT_OVERHEAD)
    # compute-only: the worker holds the feature rows it reads (with the halo, each angle
    # set in its own buffer) and background copies
    second = row_sizing(run, n_rows, row_bytes=feat_bytes, work_factor=OFFSET_WORK_FACTOR,
                        halo=depth_rule(n_rows, params.min_stripe_depth),
                        worker_overhead=JIT_OVERHEAD)
    # the worker holds its rows' mask (a byte per angle bin and column: decide_bins; and
    # the 4 rows each side, decided for the widening and the stacks: robust_rows,
    # robust_stack), the decision's scores and temporaries (DECIDE_COLUMN_BYTES per
    # column) and the bin means of those the decision asks for (a row at a time); the
    # offsets of the halo are small (+ the volume's M0 traces, twice: robust_mass.confirm's
    # centred copy)
    traces = 2 * n_rows * (feature_layout(n_angles)[1] + 1) * 8
    planes = plane_edges(block_edges(n_angles), n_angles).size - 1
    third = row_sizing(run, n_rows, row_bytes=(planes + DECIDE_COLUMN_BYTES) * n_cols,
                       work_factor=0.5, halo=REACH,
                       worker_overhead=JIT_OVERHEAD + bins_row + traces)
    return first, second, third
