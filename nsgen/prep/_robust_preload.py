"""Importing this module loads the robust detector's compiled kernels (for raw uint16
projections) by running its three passes on a tiny scan, when Numba's disk cache holds
them (:func:`nsgen.stages.robust.kernels_cached`: :func:`load` compiles them into it
otherwise).

For the engine's forkserver ``preload`` of ``nsgen mask``
(:data:`nsgen.stages.robust.ROBUST_PRELOAD`): the forkserver imports Numba, sets its CPU
target up (that imports ``scipy.linalg``: Numba's check for a BLAS) and loads the kernels
once, and the reader and every worker forked from it start with them (each of them did it
again: ~0.3 CPU-s to import the stages, ~0.3 to set Numba up and ~0.1 to load the kernels,
per process, in the first chunk of each pass). A failure here is left to the workers (who
would meet it again and report it): a preload is an optimisation only, and an exception
other than ``ImportError`` would stop the forkserver.
"""

from __future__ import annotations

import numpy as np

from nsgen.prep._jit import preload

#: the tiny scan: angles (6 blocks of 30), rows (``2 hd`` = 30 other rows: the paired
#: row medians run too) and columns (more than the 17-column window on both sides)
SHAPE = (180, 34, 40)


def _warm() -> None:
    """Run the robust passes once on a tiny uint16 scan."""
    from nsgen.prep.stripe_robust import (decide_offsets, feature_layout, raw_bin_means,
                                          raw_feature_parts, set_offsets)
    n_k, n_j, n_i = SHAPE
    rng = np.random.default_rng(0)
    raw = rng.integers(900, 1100, SHAPE).astype(np.uint16)
    flat = np.full((n_j, n_i), 4000.0, np.float32)
    dark = np.zeros((n_j, n_i), np.float32)
    feat = raw_feature_parts(raw, flat, dark)
    sizes = feature_layout(n_k)[0]
    cut = np.cumsum([0] + sizes)
    sets = [np.ascontiguousarray(feat[:, a:b]) for a, b in zip(cut[:-1], cut[1:])]
    flags = [feat[:, cut[-1] + n] > 0.5 for n in range(len(sizes))]
    qs = set_offsets(sets, flags, 0, (0, n_j), n_j)
    xb = np.concatenate([raw_bin_means(raw, flat, dark, (j, j + 1)) for j in range(n_j)])
    decide_offsets(qs, 0, xb, (0, n_j), n_j, n_k)


#: run :func:`_warm`; whether it ran (:func:`nsgen.prep._jit.preload`)
load = preload(_warm)


def _cached() -> bool:
    """Whether Numba's disk cache holds the kernels (:func:`nsgen.stages.robust.kernels_cached`;
    on an empty cache one process compiling them all is slower than the reader and the
    workers compiling at once, each what it meets first)."""
    try:
        from nsgen.stages.robust import kernels_cached
        return kernels_cached()
    except Exception:  # noqa: BLE001 - an optimisation only: the workers load them
        return False


#: whether importing this module loaded the kernels: only from Numba's cache
LOADED = _cached() and load()
