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

Clean and shifted inputs differ only on the rolled defect supports.
Layout: ``root/NNNN/clean/NNNN_clean_VVVV.tif``, ``root/NNNN/shiftSS/NNNN_shiftSS_VVVV.tif``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.io.formats import Sink, TiffSink
from nsgen.modes.synthetic import SpillStage, check, objects_record, project_sample
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.rng import generator
from nsgen.runner import SampleRecord, SampleRun
from nsgen.sim.flats import (beam_profile, defect_maps, defect_pixels, flat_fields, neg_log,
                             temporal_responses)
from nsgen.sim.noise import photon_counts
from nsgen.sim.projection import Geometry

__all__ = ["check", "run_sample", "shift_offsets", "clean_and_defects", "DetectorModel",
           "DELTA", "N_VARIATIONS"]

#: detector miscalibration strength of the stripe inputs (SCIENCE B 4.5)
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
                 flatsnum: int, i0: float) -> "DetectorModel":
        shape = (geometry.n_rows, geometry.n_columns)
        profile = beam_profile(shape, generator(seed, "beam", sample))
        flats = flat_fields(profile, i0, flatsnum, generator(seed, "flats", sample))
        flat_mean = flats.mean(axis=0, dtype=np.float64) / i0
        maps = defect_maps(shape, generator(seed, "defects", sample))
        resp = [temporal_responses(geometry.n_angles, generator(seed, "temporal", sample, i))
                for i in range(shifts)]
        return cls(profile=profile, flat_mean=flat_mean, maps=maps,
                   sigma=np.stack([r[0] for r in resp]), eps=np.stack([r[1] for r in resp]),
                   offsets=tuple(shift_offsets(shifts, step)), i0=float(i0))


def clean_and_defects(model: DetectorModel, seed: int, sample: int, pmax: float, start: int,
                      p3: np.ndarray
                      ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The clean ``-log`` sinograms of rows ``start..start+len(p3)`` and, per shift, its
    defect pixels.

    ``p3`` holds those rows of the projection (whose maximum over the volume is
    ``pmax``). Shift ``i`` equals the clean volume except at rows ``r``, columns ``c``
    where it takes ``values`` (:func:`~nsgen.sim.flats.defect_pixels`). Depends only on
    the arguments: any row range gives the same rows as the whole volume.
    """
    m = model
    rows = np.arange(start, start + len(p3))
    pn = p3 / np.float32(pmax)
    tau = np.empty_like(pn)
    for k, v in enumerate(rows):
        expected = (m.i0 * m.profile[v])[None, :] * np.exp(-pn[k], dtype=np.float64)
        counts = photon_counts(expected, generator(seed, "photons", sample, v))
        tau[k] = counts / (m.i0 * m.profile[v])[None, :]
    n_rows = m.profile.shape[0]
    shifts = []
    for i, o in enumerate(m.offsets):
        src = (rows - o) % n_rows   # np.roll by o: row r comes from r - o
        shifts.append(defect_pixels(tau, m.flat_mean[src], m.maps[:, src], m.sigma[i],
                                    m.eps[i], DELTA, N_VARIATIONS))
    return neg_log(tau), shifts


@dataclass
class ComplexStage(SpillStage):
    """Pass one (``write=False``: min/max) or pass two (write TIFFs) of complex mode."""

    model: DetectorModel | None = None
    seed: int = 0
    sample: int = 0
    pmax: float = 1.0
    bounds: Bounds = EMPTY
    out: Path = Path(".")
    write: bool = False
    sink: Sink = field(default_factory=TiffSink)
    label: str = "statistics"

    def clean_and_defects(self, chunk: Chunk, p3: np.ndarray
                          ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """:func:`clean_and_defects` of the chunk's rows."""
        assert self.model is not None
        return clean_and_defects(self.model, self.seed, self.sample, self.pmax, chunk.start, p3)

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        clean, shifts = self.clean_and_defects(chunk, data)
        if not self.write:
            # every value of every volume is a clean value or a defect value
            bounds = Bounds.of(clean)
            for _, _, values in shifts:
                bounds = bounds.union(Bounds.of(values)) if values.size else bounds
            return WorkResult(bounds)
        tag = f"{self.sample:04d}"
        clean_u16 = to_uint16(clean, self.bounds)
        volumes = [("clean", clean_u16)]
        for i, (r, c, values) in enumerate(shifts):
            u = clean_u16.copy()
            u[r, :, c] = to_uint16(values, self.bounds)
            volumes.append((f"shift{i:02d}", u))
        return WorkResult(None, *self.sink.write(
            (self.out / name / f"{tag}_{name}_{v:04d}.tif", vol[k])
            for name, vol in volumes for k, v in enumerate(range(chunk.start, chunk.stop))))


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate one complex-mode sample."""
    cfg = run.config
    done = project_sample(run, work_factor=8 + 2 * cfg.shifts)
    geometry, objects, spill, sizing, pmax = (done.geometry, done.objects, done.spill,
                                              done.sizing, done.hi)
    if not pmax > 0:
        raise RuntimeError("the phantom projects to zero everywhere")
    model = DetectorModel.simulate(cfg.seed, run.sample, geometry, cfg.shifts, cfg.shiftstep,
                                   cfg.flatsnum, cfg.I0)
    common = dict(model=model, seed=cfg.seed, sample=run.sample, pmax=pmax, out=run.dir,
              sink=run.sink)
    per_chunk = run.run(ComplexStage(spill, sizing.chunk_rows, **common), sizing)
    bounds = EMPTY
    for chunk_bounds in per_chunk:
        bounds = bounds.union(chunk_bounds)
    run.log(f"[{run.tag}] shared scale: -log values {bounds.lo:.5g} .. {bounds.hi:.5g}")
    names = ["clean"] + [f"shift{i:02d}" for i in range(cfg.shifts)]
    for name in names:
        (run.dir / name).mkdir(parents=True, exist_ok=True)
    run.run(ComplexStage(spill, sizing.chunk_rows, bounds=bounds, write=True, label="write",
                         **common), sizing)
    record = SampleRecord(extra={
        "geometry": geometry.shape, "objects": objects_record(objects),
        "projection_max": pmax,
        "detector": {"I0": cfg.I0, "flatsnum": cfg.flatsnum, "delta": DELTA,
                     "variations": N_VARIATIONS, "offsets": list(model.offsets)},
        "scale": "uint16 0..65535 = -log(transmission) lo..hi, shared by clean and shifts"})
    shape = (geometry.n_angles, geometry.n_columns)
    for v in range(geometry.n_rows):
        clean = f"{run.tag}/clean/{run.tag}_clean_{v:04d}.tif"
        record.add_file(clean, "clean", v, shape, (bounds.lo, bounds.hi))
        for i, o in enumerate(model.offsets):
            name = f"shift{i:02d}"
            record.add_file(f"{run.tag}/{name}/{run.tag}_{name}_{v:04d}.tif", "stripe", v, shape,
                            (bounds.lo, bounds.hi), shift=i, offset=o, target=clean)
    return record
