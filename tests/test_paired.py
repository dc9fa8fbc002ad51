"""nsgen.modes.paired: bounds from per-row bounds and flags known later (mask read on a
thread during pass one) equal pass one's summary with the flags known first."""

from __future__ import annotations

import numpy as np
import pytest

from nsgen.engine.pipeline import Chunk
from nsgen.modes.paired import flagged_summary, row_bounds
from nsgen.modes.real import EDGE_ROWS, interior_parts, summarise, union


@pytest.mark.parametrize("with_bad", [False, True])
def test_flags_after_pass_one_give_the_same_bounds(with_bad):
    rng = np.random.default_rng(5)
    n_rows, h, w = 2 * EDGE_ROWS + 12, 6, 9
    values = rng.standard_normal((n_rows, 2, h, w)).astype(np.float32)
    values[:, 1] *= 3            # stripe images reach further than clean ones
    values[EDGE_ROWS + 3, 1, 2, 2] = 40.0     # the extreme stripe value of a flagged row
    flags = rng.random(n_rows) < 0.5
    flags[EDGE_ROWS + 3] = True
    bad = None
    if with_bad:
        bad = np.zeros((n_rows, 4 * w), bool)
        bad[EDGE_ROWS + 5, 7] = True          # part of a row's columns
        bad[EDGE_ROWS + 6, :] = True          # a whole row
    chunks = [Chunk(i, s, min(s + 7, n_rows)) for i, s in enumerate(range(0, n_rows, 7))]
    # flags first: flagged rows' stripe images are NaN, each chunk summarised
    known = values.copy()
    known[flags, 1] = np.nan
    first = union([summarise(interior_parts(c, known[c.start:c.stop], n_rows, bad))
                   for c in chunks])
    # flags later: every row has stripes, per-row bounds combined with the flags after
    rows = [r for c in chunks for r in row_bounds(c, values[c.start:c.stop], n_rows, bad)]
    later = flagged_summary(rows, flags)
    assert later == first
    assert later.hi < 40.0
