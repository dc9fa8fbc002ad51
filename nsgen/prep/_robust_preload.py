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

Where the cache does not hold them (a first run after installing), the workers of pass one
compile them instead, pass by pass in turn (:func:`compile_in_turn`), so that each pass is
compiled once.
"""

from __future__ import annotations

import numpy as np

from nsgen.engine.fastexit import in_forkserver
from nsgen.prep._jit import load_in_turn, preload

#: the tiny scan: angles (6 blocks of 30), rows (``2 hd`` = 30 other rows: the paired
#: row medians run too) and columns (more than the 17-column window on both sides)
SHAPE = (180, 34, 40)


def _scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tiny uint16 scan (noise), its flat and dark rows."""
    n_k, n_j, n_i = SHAPE
    raw = np.random.default_rng(0).integers(900, 1100, SHAPE).astype(np.uint16)
    return (raw, np.full((n_j, n_i), 4000.0, np.float32), np.zeros((n_j, n_i), np.float32))


def _features() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pass one on the tiny scan: the ranks of each angle set and their strong defects, as
    the later passes read them."""
    from nsgen.prep.robust_features import feature_layout, raw_feature_parts
    feat = raw_feature_parts(*_scan())
    sizes = feature_layout(SHAPE[0])[0]
    cut = np.cumsum([0] + sizes)
    sets = [np.ascontiguousarray(feat[:, a:b]) for a, b in zip(cut[:-1], cut[1:])]
    return sets, [feat[:, cut[-1] + n] > 0.5 for n in range(len(sizes))]


def _stand_in_features() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Values of :func:`_features`' types and shapes made without compiled code (sorted
    noise as ranks, no strong defect): what pass two's kernels compile for."""
    from nsgen.prep.robust_features import feature_layout
    n_k, n_j, n_i = SHAPE
    rng = np.random.default_rng(1)
    sets = [np.sort(rng.normal(0.0, 0.01, (n_j, size, n_i)).astype(np.float32), axis=1)
            for size in feature_layout(n_k)[0]]
    return sets, [np.zeros((n_j, n_i), bool) for _ in sets]


def _offsets(sets: list[np.ndarray], flags: list[np.ndarray]) -> np.ndarray:
    """Pass two on features of the tiny scan's size: every row's offsets."""
    from nsgen.prep.stripe_robust import set_offsets
    n_j = SHAPE[1]
    return set_offsets(sets, flags, 0, (0, n_j), n_j)


def _decide(qs: np.ndarray) -> None:
    """Pass three on the tiny scan: its bin means and the decisions from offsets ``qs``."""
    from nsgen.prep.stripe_robust import decide_offsets
    from nsgen.prep.robust_features import raw_bin_means
    n_k, n_j, _ = SHAPE
    raw, flat, dark = _scan()
    xb = np.concatenate([raw_bin_means(raw, flat, dark, (j, j + 1)) for j in range(n_j)])
    decide_offsets(qs, 0, xb, (0, n_j), n_j, n_k)
    # (the mass confirmation's kernel: the tiny scan's decision has no traces)
    from nsgen.prep._robust_decide_jit import mad_without
    mad_without(np.zeros(3), 0)


def _warm() -> None:
    """Run the robust passes once on a tiny uint16 scan."""
    _decide(_offsets(*_features()))


#: run :func:`_warm`; whether it ran (:func:`nsgen.prep._jit.preload`)
load = preload(_warm, in_forkserver())


def _stand_in_offsets() -> np.ndarray:
    """Values of :func:`_offsets`' type and shape made without compiled code (noise as
    offsets and scores, scales of 0.01): what pass three's kernels compile for."""
    from nsgen.prep.stripe_robust import STORED_SETS
    from nsgen.prep.robust_features import feature_layout
    n_k, n_j, n_i = SHAPE
    n_sets = len(feature_layout(n_k)[0])
    qs = np.random.default_rng(2).normal(0.0, 0.01, (n_j, n_sets * STORED_SETS, n_i + 1))
    qs[..., -1] = 0.01
    return qs


def _pass_two() -> None:
    _offsets(*_stand_in_features())


def _pass_three() -> None:
    _decide(_stand_in_offsets())


#: the kernels of each pass compiled apart (a pass's inputs stood in for by values of their
#: types made without compiled code), for :func:`compile_in_turn`; a failure is left to the
#: workers, as a preload's (:func:`nsgen.prep._jit.preload`)
PASSES = (("robust-features", preload(_features)), ("robust-offsets", preload(_pass_two)),
          ("robust-decide", preload(_pass_three)))


def compile_in_turn() -> list[str]:
    """Load the robust detector's kernels in every process that runs its passes, taking
    turns by pass with the other processes (:func:`nsgen.prep._jit.load_in_turn`): on an
    empty cache the workers compile different passes at the same time and then load each
    other's, instead of each compiling every kernel it meets (the same kernels in every
    worker: 163 CPU-s each in the first ``nsgen -m paired`` on k11-18014 with 2 workers);
    on a full cache each pass loads in well under a second. Returns the passes in the order
    they ran.

    Examples
    --------
    >>> compile_in_turn()
    ['robust-features', 'robust-offsets', 'robust-decide']
    """
    return load_in_turn(PASSES)


def _cached() -> bool:
    """Whether Numba's disk cache holds the kernels (:func:`nsgen.stages.robust.kernels_cached`;
    on an empty cache the forkserver does not compile them all alone: the workers compile
    them in turn, :func:`compile_in_turn`)."""
    try:
        from nsgen.stages.robust import kernels_cached
        return kernels_cached()
    except Exception:  # noqa: BLE001 - an optimisation only: the workers load them
        return False


#: whether importing this module loaded the kernels: only from Numba's cache
LOADED = _cached() and load()
