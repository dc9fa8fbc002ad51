"""Importing this module loads :func:`nsgen.prep._scaling_jit.scale_rows` (the compiled kernel
of :func:`nsgen.prep.scaling.to_uint16`): from Numba's disk cache, or compiled into it the
first time.

For the engine's forkserver ``preload`` (``ENGINE_PRELOAD`` of simple mode and of the real
modes): the forkserver pays Numba's set-up once, and every worker forked from it starts with
Numba set up and this kernel ready. Loading the first cached kernel costs a process ~0.3 CPU-s beyond importing Numba:
Numba's CPU target registers its implementations then, and that imports ``scipy.linalg``
(Numba's check that a BLAS is available, ``numba.np.arraymath``, ~0.17 s, whatever the
kernel uses). A failure here is left to the workers (who would meet it again and report
it): a preload is an optimisation only, and an exception other than ``ImportError`` would
stop the forkserver.
"""

from __future__ import annotations

import numpy as np

from nsgen.engine.fastexit import in_forkserver
from nsgen.prep._jit import preload


def _warm() -> None:
    """Call the kernel once on a tiny image."""
    from nsgen.prep._scaling_jit import scale_rows
    out = np.empty((1, 1), np.uint16)
    scale_rows(np.zeros((1, 1)), 0.0, 1.0, out)


#: run :func:`_warm`; whether it ran (:func:`nsgen.prep._jit.preload`)
load = preload(_warm, in_forkserver())
LOADED = load()
