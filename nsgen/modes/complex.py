"""Complex mode: flat fields, photon noise and detector defects (seed: Synthetic / Complex).

Per sample (see ``docs/architecture.md``, "Complex-mode noise model"):

1. phantom -> exact projection ``P3`` (scratch volume); ``Pn = P3 / max(P3)``;
2. beam profile ``F0`` (Bessel background + speckle), ``flatsnum`` independent flat
   realisations (their mean ``Fbar``), three defect maps, temporal responses per shift;
3. counted photons ``C = Poisson(I0 F0 exp(-Pn))`` drawn once per detector row and shared
   by the clean target and every shift, ``tau = C / (I0 F0)``;
4. clean = ``-log(tau)``; shift ``i`` (offset ``o_i = -int(S/2) step + i step`` rows) =
   ``-log(tau + D_o / Fbar_o)`` with defect maps and flats rolled by ``o_i`` rows;
5. pass one: global min/max over the clean volume and every shift; pass two: recompute
   (same random streams) and write every file once on that shared scale.

Clean and shifted inputs differ only on the rolled defect supports. ``--defect-density``
(default 1) adds that many defective pixels per detector row to the maps, so every sinogram
of every shift differs from its target; 0 gives the reference's clusters only (and its bytes).
Layout: ``root/NNNN/clean/NNNN_clean_VVVV.tif``, ``root/NNNN/shiftSS/NNNN_shiftSS_VVVV.tif``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nsgen.config import Config
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.modes.synthetic import check, objects_record, project_sample, volume_path
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun
from nsgen.sim.flats import (
    add_pixel_defects,
    beam_profile,
    defect_maps,
    defect_pixels,
    flat_fields,
    neg_log,
    temporal_responses,
)
from nsgen.sim.noise import photon_counts
from nsgen.sim.projection import Geometry
from nsgen.stages.spill import SpillStage
from nsgen.stages.write import WriteStage

__all__ = ["check", "run_sample", "shift_offsets", "DELTA", "N_VARIATIONS"]

#: detector miscalibration strength of the stripe inputs (docs/science.md B 4.5)
DELTA = 0.07
#: number of defect-map terms (constant, oscillating, drifting response)
N_VARIATIONS = 3


def shift_offsets(shifts: int, step: int) -> list[int]:
    """Row offsets of the shifts: ``-int(S/2)*step + i*step``.

    Examples
    --------
    >>> shift_offsets(5, 2)
    [-4, -2, 0, 2, 4]
    """
    return [-(shifts // 2) * step + i * step for i in range(shifts)]


@dataclass
class DetectorModel:
    """Per-sample detector state (small 2D maps, pickled to every worker)."""

    profile: np.ndarray       # (V, Dh) noise-free beam profile F0, max 1
    flat_mean: np.ndarray     # (V, Dh) mean of the simulated flats / I0
    maps: np.ndarray          # (3, V, Dh) defect maps
    sigma: np.ndarray         # (S, P) oscillating responses per shift
    eps: np.ndarray           # (S, P) drifting responses per shift
    offsets: tuple[int, ...]
    i0: float

    @classmethod
    def simulate(cls, seed: int, sample: int, geometry: Geometry, shifts: int, step: int,
                 flatsnum: int, i0: float, density: float = 0.0) -> "DetectorModel":
        """Draw the detector of one sample; ``density``: defective pixels per row
        (:func:`~nsgen.sim.flats.add_pixel_defects`; 0 = the reference's clusters only)."""
        shape = (geometry.n_rows, geometry.n_columns)
        profile = beam_profile(shape, generator(seed, "beam", sample))
        flats = flat_fields(profile, i0, flatsnum, generator(seed, "flats", sample))
        flat_mean = flats.mean(axis=0, dtype=np.float64) / i0
        maps = add_pixel_defects(defect_maps(shape, generator(seed, "defects", sample)),
                                 density, generator(seed, "pixel-defects", sample))
        resp = [temporal_responses(geometry.n_angles, generator(seed, "temporal", sample, i))
                for i in range(shifts)]
        return cls(profile=profile, flat_mean=flat_mean, maps=maps,
                   sigma=np.stack([r[0] for r in resp]), eps=np.stack([r[1] for r in resp]),
                   offsets=tuple(shift_offsets(shifts, step)), i0=float(i0))


@dataclass(frozen=True, eq=False)
class ComplexRows:
    """The clean and shifted ``-log`` sinograms of chunks of projection rows (picklable)."""

    model: DetectorModel
    seed: int
    sample: int
    pmax: float

    def clean_and_defects(self, chunk: Chunk, p3: np.ndarray
                          ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """The clean ``-log`` sinograms of the chunk and, per shift, its defect pixels.

        Shift ``i`` equals the clean volume except at rows ``r``, columns ``c`` where it
        takes ``values`` (:func:`~nsgen.sim.flats.defect_pixels`).
        """
        m = self.model
        rows = np.arange(chunk.start, chunk.stop)
        pn = p3 / np.float32(self.pmax)
        tau = np.empty_like(pn)
        for k, v in enumerate(rows):
            expected = (m.i0 * m.profile[v])[None, :] * np.exp(-pn[k], dtype=np.float64)
            counts = photon_counts(expected, generator(self.seed, "photons", self.sample, int(v)))
            tau[k] = counts / (m.i0 * m.profile[v])[None, :]
        n_rows = m.profile.shape[0]
        shifts = []
        for i, o in enumerate(m.offsets):
            src = (rows - o) % n_rows   # np.roll by o: row r comes from r - o
            shifts.append(defect_pixels(tau, m.flat_mean[src], m.maps[:, src], m.sigma[i],
                                        m.eps[i], DELTA, N_VARIATIONS))
        return neg_log(tau), shifts


@dataclass
class StatisticsStage(SpillStage):
    """Pass one: min/max over the clean volume and every shift."""

    rows: ComplexRows | None = None
    label: str = "statistics"

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        assert self.rows is not None
        clean, shifts = self.rows.clean_and_defects(chunk, data)
        # every value of every volume is a clean value or a defect value
        bounds = Bounds.of(clean)
        for _, _, values in shifts:
            bounds = bounds.union(Bounds.of(values)) if values.size else bounds
        return WorkResult(bounds)


@dataclass(frozen=True, eq=False)
class ComplexImages:
    """Pass two's images: recomputed (same random streams) clean and shifted sinograms on the
    shared scale."""

    rows: ComplexRows
    bounds: Bounds

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        clean, shifts = self.rows.clean_and_defects(chunk, rows)
        clean_u16 = to_uint16(clean, self.bounds)
        volumes = [("clean", clean_u16)]
        for i, (r, c, values) in enumerate(shifts):
            u = clean_u16.copy()
            u[r, :, c] = to_uint16(values, self.bounds)
            volumes.append((f"shift{i:02d}", u))
        for name, vol in volumes:
            for k, v in enumerate(range(chunk.start, chunk.stop)):
                yield volume_path(self.rows.sample, name, v), vol[k]


def detector_record(cfg: Config, model: DetectorModel) -> dict[str, Any]:
    """The manifest's ``detector`` entry of a complex-mode sample."""
    return {"I0": cfg.I0, "flatsnum": cfg.flatsnum, "delta": DELTA,
            "defect_density": cfg.defect_density, "variations": N_VARIATIONS,
            "offsets": list(model.offsets)}


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate one complex-mode sample."""
    cfg = run.config
    done = project_sample(run, work_factor=8 + 2 * cfg.shifts)
    geometry, objects, spill, sizing, pmax = (done.geometry, done.objects, done.spill,
                                              done.sizing, done.hi)
    if not pmax > 0:
        raise RuntimeError("the phantom projects to zero everywhere")
    model = DetectorModel.simulate(cfg.seed, run.sample, geometry, cfg.shifts, cfg.shiftstep,
                                   cfg.flatsnum, cfg.I0, cfg.defect_density)
    rows = ComplexRows(model, cfg.seed, run.sample, pmax)
    per_chunk = run.run(StatisticsStage(spill, sizing.chunk_rows, rows=rows), sizing)
    bounds = EMPTY
    for chunk_bounds in per_chunk:
        bounds = bounds.union(chunk_bounds)
    run.log(f"[{run.tag}] shared scale: -log values {bounds.lo:.5g} .. {bounds.hi:.5g}")
    names = ["clean"] + [f"shift{i:02d}" for i in range(cfg.shifts)]
    for name in names:
        (run.dir / name).mkdir(parents=True, exist_ok=True)
    images = ComplexImages(rows, bounds)
    run.run(WriteStage(SpillStage(spill, sizing.chunk_rows), images, run.writer()), sizing)
    record = SampleRecord(extra={
        "geometry": geometry.shape, "objects": objects_record(objects),
        "projection_max": pmax,
        "detector": detector_record(cfg, model),
        "scale": "uint16 0..65535 = -log(transmission) lo..hi, shared by clean and shifts"})
    shape = (geometry.n_angles, geometry.n_columns)
    for v in range(geometry.n_rows):
        clean = volume_path(run.sample, "clean", v)
        record.add_file(clean, "clean", v, shape, (bounds.lo, bounds.hi))
        for i, o in enumerate(model.offsets):
            record.add_file(volume_path(run.sample, f"shift{i:02d}", v), "stripe", v, shape,
                            (bounds.lo, bounds.hi), shift=i, offset=o, target=clean)
    return record
