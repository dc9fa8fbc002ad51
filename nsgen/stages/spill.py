"""Passes whose reader streams row chunks of a scratch volume (:class:`~nsgen.io.spill.Spill`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nsgen.engine.pipeline import Chunk, SlotSpec, Stage, row_chunks
from nsgen.io.spill import Spill

__all__ = ["SpillStage"]


@dataclass
class SpillStage(Stage):
    """Base of stages whose reader streams row chunks of a scratch volume.

    A chunk's data is its rows of the volume, as stored (:meth:`values`).
    """

    spill: Spill
    chunk_rows: int

    def chunks(self) -> list[Chunk]:
        return row_chunks(self.spill.shape[0], self.chunk_rows)

    def slot_spec(self, chunk: Chunk) -> SlotSpec:
        return (chunk.rows, *self.spill.shape[1:]), self.spill.dtype

    def read(self, chunk: Chunk, out: np.ndarray) -> None:
        self.spill.read_rows(chunk.start, chunk.stop, out)

    def values(self, chunk: Chunk, data: np.ndarray) -> np.ndarray:
        """The chunk's rows (the slot itself)."""
        return data
