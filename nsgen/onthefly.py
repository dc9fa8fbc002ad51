"""(input, target) pairs of the synthetic modes, simulated on the fly for training.

:class:`SyntheticPairs` (also importable as ``nsgen.dataset.SyntheticPairs``) is a
map-style dataset: ``len`` and integer indexing, numpy arrays out, so a
``torch.utils.data.DataLoader`` takes it as it is (``pip install nsgen[torch]``; the
default collate makes tensors) with any ``num_workers``. Pair ``i`` is exactly the pair
that :class:`~nsgen.dataset.PairDataset` reads from a dataset the command wrote with the
same options (same quantisation, same ``units``), but nothing is written: it is
simulated in the calling process (a DataLoader worker, say).

Index order is sample-major, then detector row, then input (shift):
``i = ((sample - start) * rows + row) * inputs + k``, the order in which PairDataset
lists such a dataset. Pair ``i`` depends only on the options and ``i``: not on the
worker that computes it, nor on what was computed before.

Cost: the first pair of a sample measures the sample's scale (the scale is global:
:func:`nsgen.api.sample_scale`, about the cost of computing the sample once, in row
chunks). The two measured numbers are kept; the phantom and detector of the ``cache``
most recent samples are kept too. A pair then costs one projected detector row (and
its photon noise in complex mode); every input of a row is computed at once and kept,
so the shifts of a row (consecutive indices) come almost free. A sampler that visits a
few samples at a time is therefore much faster than one shuffling across all samples.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from nsgen.api import SampleArrays, SampleScale, sample_scale, synthetic_config
from nsgen.config import Config
from nsgen.dataset import UNITS, decode
from nsgen.errors import NsgenError
from nsgen.prep.scaling import Bounds
from nsgen.sim.projection import Geometry

Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

__all__ = ["SyntheticPairs"]


class SyntheticPairs:
    """Training pairs of a synthetic configuration, simulated when indexed.

    Parameters
    ----------
    config : Config, optional
        Options of the run to imitate (mode ``simple`` or ``complex``); ``options``
        override its fields or build it (``SyntheticPairs(mode="simple", size=64)``).
        Samples are ``config.start .. config.start + config.samples - 1``.
    units : {"unit", "physical"}
        As :class:`~nsgen.dataset.PairDataset`: ``u / 65535`` or decoded with the
        sample's bounds.
    transform : callable, optional
        ``transform(input, target) -> (input, target)`` applied to every pair.
    cache : int
        Samples whose phantom and detector are kept (per process).

    Examples
    --------
    >>> ds = SyntheticPairs(mode="complex", size=16, objects=4, shifts=2, samples=3)
    >>> len(ds), ds.locate(33)            # 3 samples x 16 rows x 2 shifts
    (96, (1, 0, 1))
    >>> x, y = ds[33]
    >>> x.shape, x.dtype.name, y.shape
    ((25, 22), 'float32', (25, 22))
    >>> bool(np.array_equal(ds[33][0], SyntheticPairs(ds.config)[33][0]))
    True
    """

    def __init__(self, config: Config | None = None, *, units: str = "unit",
                 transform: Transform | None = None, cache: int = 4, **options: Any) -> None:
        if units not in UNITS:
            raise NsgenError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
        if cache < 1:
            raise NsgenError(f"cache must be >= 1 sample, got {cache}")
        self.config = synthetic_config(config, options)
        self.units = units
        self.transform = transform
        self.cache = cache
        self.n_rows = Geometry.for_size(self.config.size).n_rows
        self.n_inputs = 1 if self.config.mode == "simple" else self.config.shifts
        self.samples = list(self.config.sample_numbers())
        self._measured: dict[int, tuple[Bounds, Bounds]] = {}
        self._scales: OrderedDict[int, SampleScale] = OrderedDict()
        self._row: tuple[tuple[int, int], SampleArrays] | None = None

    def __len__(self) -> int:
        return len(self.samples) * self.n_rows * self.n_inputs

    def locate(self, i: int) -> tuple[int, int, int]:
        """``(sample, row, input)`` of pair ``i`` (input: the shift, 0 in simple mode)."""
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"pair indices must be integers, got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"pair index {i} is out of range 0..{n - 1} ({len(self.samples)} "
                             f"samples x {self.n_rows} rows x {self.n_inputs} inputs)")
        s, rest = divmod(int(i) % n, self.n_rows * self.n_inputs)
        row, k = divmod(rest, self.n_inputs)
        return self.samples[s], row, k

    def scale(self, sample: int) -> SampleScale:
        """The scale, phantom and detector of ``sample`` (measured once, then kept)."""
        got = self._scales.get(sample)
        if got is not None:
            self._scales.move_to_end(sample)
            return got
        got = sample_scale(self.config, sample, measured=self._measured.get(sample))
        self._measured[sample] = (got.projection, got.bounds)
        self._scales[sample] = got
        while len(self._scales) > self.cache:
            self._scales.popitem(last=False)
        return got

    def _arrays(self, sample: int, row: int) -> SampleArrays:
        if self._row is None or self._row[0] != (sample, row):
            self._row = ((sample, row), self.scale(sample).simulate(row, row + 1))
        return self._row[1]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sample, row, k = self.locate(i)
        arrays = self._arrays(sample, row)
        scale = arrays.scale
        stored = scale.projection if scale.model is None else scale.bounds  # manifest bounds
        b = (stored.lo, stored.hi)
        x = decode(arrays.quantised(scale.input_names[k])[0], b, self.units)
        y = decode(arrays.quantised("clean")[0], b, self.units)
        return self.transform(x, y) if self.transform is not None else (x, y)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for worker processes without the per-process caches."""
        state = dict(self.__dict__)
        state["_scales"] = OrderedDict()
        state["_row"] = None
        return state

    def __repr__(self) -> str:
        c = self.config
        return (f"SyntheticPairs(mode={c.mode!r}, size={c.size}, samples {self.samples[0]:04d}.."
                f"{self.samples[-1]:04d}, seed={c.seed}, units={self.units!r}: {len(self)} pairs)")
