"""nsgen: clean/stripe sinogram pairs for training stripe-removal networks.

The library API is re-exported here and imported on first use, so ``import nsgen`` stays
cheap (see ``docs/api.md``):

- :func:`generate` runs a generation job in process (any thread, Jupyter);
- :func:`simulate_sample`, :func:`iter_sample`, :func:`sample_scale` give a synthetic
  sample as float32 arrays, whole, by row range or in row chunks;
- :func:`load_sample` reads a generated sample back as volumes and its manifest;
- :class:`Config` (validated on construction) and :class:`NsgenError` (a ``ValueError``);
- :class:`SyntheticPairs` and :class:`PairDataset` (``nsgen.dataset``) serve training pairs.

Examples
--------
>>> import nsgen
>>> nsgen.Config(mode="simple", size=32).size
32
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "generate": "nsgen.api", "simulate_sample": "nsgen.api", "iter_sample": "nsgen.api",
    "sample_scale": "nsgen.api", "SampleArrays": "nsgen.api", "SampleScale": "nsgen.api",
    "load_sample": "nsgen.io.formats", "Config": "nsgen.config", "NsgenError": "nsgen.errors",
    "SyntheticPairs": "nsgen.dataset", "PairDataset": "nsgen.dataset",
}

__all__ = ["Config", "NsgenError", "PairDataset", "SampleArrays", "SampleScale",
           "SyntheticPairs", "__version__", "generate", "iter_sample", "load_sample",
           "sample_scale", "simulate_sample"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nsgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
