"""Complex mode: flat fields, photon noise and detector defects (seed: Synthetic / Complex).

Per sample (see ``docs/architecture.md``, "Complex-mode noise model"):

1. phantom -> exact projection ``P3`` (scratch volume); ``Pn = P3 / max(P3)``;
2. beam profile ``F0`` (Bessel background + speckle), ``flatsnum`` independent flat
   realisations (their mean ``Fbar``), three defect maps, temporal responses per shift;
3. counted photons ``C = Poisson(I0 F0 exp(-Pn))`` drawn once per detector row and shared
   by the clean target and every shift, ``tau = C / (I0 F0)``;
4. clean = ``-log(tau)``; shift ``i`` (offset ``o_i = -int(S/2) step + i step`` rows) =
   ``-log(tau + D_o / Fbar_o)`` with defect maps and flats rolled by ``o_i`` rows;
5. pass one: draws the photons, replaces each chunk's rows of the scratch volume by their
   transmission ``tau`` (float32, so pass two draws nothing again) and finds the global
   min/max over the clean volume and every shift; pass two reads ``tau`` back and writes
   every file once on that shared scale.

Clean and shifted inputs differ only on the rolled defect supports. ``--defect-density``
(default 1) adds that many defective pixels per detector row to the maps, so every sinogram
of every shift differs from its target; 0 gives the reference's clusters only (and its bytes).
Layout: ``root/NNNN/clean/NNNN_clean_VVVV.tif``, ``root/NNNN/shiftSS/NNNN_shiftSS_VVVV.tif``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.modes.synthetic import (Projected, TaperedSpillStage, check, objects_record,
                                   project_sample, volume_path)
from nsgen.prep.scaling import BLOCK, EMPTY, UINT16_MAX, Bounds, scale_block, to_uint16_numpy
from nsgen.rng import generator
from nsgen.sim.flats import (
    TAU_FLOOR,
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
from nsgen.stages.write import WriteStage

if TYPE_CHECKING:   # the main process's side only: the engine's processes never import them
    from nsgen.config import Config
    from nsgen.runner import SampleRecord, SampleRun

__all__ = ["ENGINE_PRELOAD", "check", "run_sample", "shift_offsets", "DELTA", "N_VARIATIONS"]

#: what the engine's processes import once, in the forkserver, before they start
#: (:class:`~nsgen.engine.pipeline.Engine` ``preload``): the stages and the TIFF writer.
#: This module imports the runner and the configuration only for type checking (they are
#: the main process's: ~25 ms of the forkserver's serial preload). No process of complex
#: mode loads Numba (its set-up, ~0.45 CPU-s, was the largest part of the serial start-up):
#: the clean images are scaled by NumPy row by row (:func:`clean_uint16`), the defect
#: pixels' few values by :func:`~nsgen.prep.scaling.to_uint16_numpy`
ENGINE_PRELOAD = ("nsgen.modes.complex", "nsgen.io.tiff")

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


#: the arrays of a :class:`DetectorModel`, as :meth:`DetectorModel.stored` saves them
MODEL_ARRAYS = ("profile", "flat_mean", "maps", "sigma", "eps")


@dataclass
class DetectorModel:
    """Per-sample detector state (2D maps, sent to every process of a pass: once
    :meth:`stored`, as the name of the file that holds them)."""

    profile: np.ndarray       # (V, Dh) noise-free beam profile F0, max 1
    flat_mean: np.ndarray     # (V, Dh) mean of the simulated flats / I0
    maps: np.ndarray          # (3, V, Dh) defect maps
    sigma: np.ndarray         # (S, P) oscillating responses per shift
    eps: np.ndarray           # (S, P) drifting responses per shift
    offsets: tuple[int, ...]
    i0: float
    #: the file :meth:`stored` saved the arrays to (None: pickled with them)
    path: Path | None = None

    def stored(self, path: Path) -> "DetectorModel":
        """This model, its arrays saved to ``path`` (an ``.npz``): it pickles as that name
        (:func:`load_model` reads the file back once per process). The engine sends each
        pass's stage to the reader and every worker through pipes; the arrays (3.7 MB at
        N=256) made each of the two passes that carry the model start ~25 ms later (a pipe
        carries 64 KiB per wake-up of the reading process).

        Examples
        --------
        >>> import pickle, tempfile
        >>> g = Geometry.for_size(16)
        >>> m = DetectorModel.simulate(1, 0, g, 3, 2, 2, 4e4, density=1.0)
        >>> s = m.stored(Path(tempfile.mkdtemp()) / "detector.npz")
        >>> len(pickle.dumps(s)) < 500 < len(pickle.dumps(m))
        True
        >>> back = pickle.loads(pickle.dumps(s))
        >>> all(np.array_equal(getattr(back, a), getattr(m, a)) for a in MODEL_ARRAYS)
        True
        >>> back.offsets == m.offsets and back.i0 == m.i0
        True
        """
        path = Path(path)
        with open(path, "wb") as f:
            np.savez(f, **{a: getattr(self, a) for a in MODEL_ARRAYS})
        return replace(self, path=path)

    def __reduce__(self) -> Any:
        if self.path is None:
            return super().__reduce__()
        return load_model, (str(self.path), self.offsets, self.i0)

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


#: the model :func:`load_model` read last: ((path, size, mtime), model)
_LOADED: list[tuple[tuple[str, int, int], DetectorModel]] = []


def load_model(path: str, offsets: tuple[int, ...], i0: float) -> DetectorModel:
    """The :meth:`DetectorModel.stored` model of file ``path`` (read once per process: the
    model of the same file, unchanged, is reused)."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if _LOADED and _LOADED[0][0] == key:
        return _LOADED[0][1]
    with np.load(path) as z:
        arrays = {a: z[a] for a in MODEL_ARRAYS}
    model = DetectorModel(**arrays, offsets=tuple(offsets), i0=i0, path=Path(path))
    _LOADED[:] = [(key, model)]
    return model


@dataclass(frozen=True, eq=False)
class ComplexRows:
    """The clean and shifted ``-log`` sinograms of chunks of projection rows (picklable)."""

    model: DetectorModel
    seed: int
    sample: int
    pmax: float

    def transmission(self, chunk: Chunk, p3: np.ndarray) -> np.ndarray:
        """Measured transmission ``tau = C / (I0 F0)`` of the chunk's rows (float32), the
        photon counts ``C`` drawn per detector row from that row's own stream.

        Row by row in reused buffers: ``expected = I0 F0 exp(-float32(P3 / max))`` and
        ``tau = float32(C / (I0 F0))``, both in float64.
        """
        m = self.model
        pmax = np.float32(self.pmax)
        tau = np.empty(p3.shape, dtype=np.float32)
        pn = np.empty(p3.shape[1:], dtype=np.float32)
        wide = np.empty(p3.shape[1:], dtype=np.float64)
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            photons = m.i0 * m.profile[v]                           # I0 F0 of this row
            np.divide(p3[k], pmax, out=pn)
            np.negative(pn, out=pn)
            np.exp(pn, out=wide, dtype=np.float64)
            np.multiply(photons[None, :], wide, out=wide)
            counts = photon_counts(wide, generator(self.seed, "photons", self.sample, int(v)))
            np.divide(counts, photons[None, :], out=wide, dtype=np.float64)
            np.copyto(tau[k], wide, casting="same_kind")
        return tau

    def defects(self, chunk: Chunk, tau: np.ndarray
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per shift, the chunk's defect pixels: shift ``i`` equals the clean volume except
        at rows ``r``, columns ``c`` where it takes ``values``
        (:func:`~nsgen.sim.flats.defect_pixels`)."""
        m = self.model
        rows = np.arange(chunk.start, chunk.stop)
        n_rows = m.profile.shape[0]
        shifts = []
        for i, o in enumerate(m.offsets):
            src = (rows - o) % n_rows   # np.roll by o: row r comes from r - o
            shifts.append(defect_pixels(tau, m.flat_mean[src], m.maps[:, src], m.sigma[i],
                                        m.eps[i], DELTA, N_VARIATIONS))
        return shifts

    def bounds(self, chunk: Chunk, tau: np.ndarray) -> Bounds:
        """Min and max of the chunk's clean and shifted ``-log`` sinograms: every value of
        every volume is a clean value or a defect value, and ``-log`` is decreasing, so the
        clean volume's extremes are those of ``tau``'s extremes (no volume of logarithms)."""
        lo, hi = neg_log(np.array([tau.max(), tau.min()], dtype=tau.dtype))
        bounds = Bounds(float(lo), float(hi))
        for _, _, values in self.defects(chunk, tau):
            bounds = bounds.union(Bounds.of(values)) if values.size else bounds
        return bounds

    def clean_and_defects(self, chunk: Chunk, p3: np.ndarray
                          ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """The clean ``-log`` sinograms of the chunk and, per shift, its defect pixels
        (:meth:`defects`)."""
        tau = self.transmission(chunk, p3)
        return neg_log(tau), self.defects(chunk, tau)


@dataclass
class StatisticsStage(TaperedSpillStage):
    """Pass one: draw the photons, keep each chunk's transmission in place of its projection
    rows (the chunk's own rows of the scratch volume), min/max over the clean volume and
    every shift."""

    rows: ComplexRows | None = None
    label: str = "statistics"

    def work(self, chunk: Chunk, data: np.ndarray) -> WorkResult:
        assert self.rows is not None
        tau = self.rows.transmission(chunk, data)
        self.spill.write_rows(chunk.start, tau)
        return WorkResult(self.rows.bounds(chunk, tau))


@dataclass(frozen=True, eq=False)
class ComplexImages:
    """Pass two's images from the transmission pass one kept: the clean and shifted
    sinograms on the shared scale."""

    rows: ComplexRows
    bounds: Bounds

    def __call__(self, chunk: Chunk, rows: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        """The chunk's images from its transmission ``rows`` (kept by pass one)."""
        tau = rows
        clean = clean_uint16(tau, self.bounds)
        sample = self.rows.sample
        for k, v in enumerate(range(chunk.start, chunk.stop)):
            yield volume_path(sample, "clean", v), clean[k]
        for i, (r, c, values) in enumerate(self.rows.defects(chunk, tau)):
            name = f"shift{i:02d}"
            u = to_uint16_numpy(values, self.bounds)
            for k, v in enumerate(range(chunk.start, chunk.stop)):
                image = clean[k].copy()
                here = r == k
                image[:, c[here]] = u[here].T
                yield volume_path(sample, name, v), image


def clean_uint16(tau: np.ndarray, bounds: Bounds) -> np.ndarray:
    """``to_uint16(neg_log(tau), bounds)``, the same values (element by element), computed
    :data:`~nsgen.prep.scaling.BLOCK` elements at a time in reused buffers (768 KiB: they
    stay in a core's L2 cache; whole-chunk, or at N=512 whole-row, float64 temporaries do
    not fit in the caches: 0.047 -> 0.032 CPU-s per 16 rows at N=512, 0.0152 -> 0.0146 per
    32 rows at N=256), scaled as :func:`~nsgen.prep.scaling.to_uint16_blocks` scales
    (:func:`~nsgen.prep.scaling.scale_block`).

    Examples
    --------
    >>> tau = np.random.default_rng(0).uniform(0.0, 1.2, (3, 4, 5)).astype(np.float32)
    >>> from nsgen.prep.scaling import to_uint16
    >>> b = Bounds(-0.1, 3.0)
    >>> bool((clean_uint16(tau, b) == to_uint16(neg_log(tau), b)).all())
    True
    """
    span = bounds.hi - bounds.lo
    if not span > 0:
        return np.zeros(tau.shape, dtype=np.uint16)
    out = np.empty(tau.shape, dtype=np.uint16)
    src, dst = np.ascontiguousarray(tau).reshape(-1), out.reshape(-1)
    wide = np.empty(min(BLOCK, src.size), dtype=np.float64)
    narrow = np.empty(wide.size, dtype=np.float32)
    for start in range(0, src.size, BLOCK):
        stop = min(start + BLOCK, src.size)
        w, n = wide[:stop - start], narrow[:stop - start]
        np.maximum(src[start:stop], TAU_FLOOR, out=w, dtype=np.float64)   # neg_log ...
        np.log(w, out=w)
        np.negative(w, out=w)
        np.copyto(n, w, casting="same_kind")                              # ... as float32
        np.subtract(n, bounds.lo, out=w, dtype=np.float64)                # to_uint16
        scale_block(w, UINT16_MAX / span)
        np.copyto(dst[start:stop], w, casting="unsafe")
    return out


def detector_record(cfg: Config, model: DetectorModel) -> dict[str, Any]:
    """The manifest's ``detector`` entry of a complex-mode sample."""
    return {"I0": cfg.I0, "flatsnum": cfg.flatsnum, "delta": DELTA,
            "defect_density": cfg.defect_density, "variations": N_VARIATIONS,
            "offsets": list(model.offsets)}


def sample_record(cfg: Config, sample: int, geometry: Geometry, objects: np.ndarray,
                  pmax: float, model: DetectorModel, bounds: Bounds) -> SampleRecord:
    """The manifest's record of a complex-mode sample: its files and their shared scale."""
    from nsgen.runner import SampleRecord

    record = SampleRecord(extra={
        "geometry": geometry.shape, "objects": objects_record(objects),
        "projection_max": pmax,
        "detector": detector_record(cfg, model),
        "scale": "uint16 0..65535 = -log(transmission) lo..hi, shared by clean and shifts"})
    shape = (geometry.n_angles, geometry.n_columns)
    for v in range(geometry.n_rows):
        clean = volume_path(sample, "clean", v)
        record.add_file(clean, "clean", v, shape, (bounds.lo, bounds.hi))
        for i, o in enumerate(model.offsets):
            record.add_file(volume_path(sample, f"shift{i:02d}", v), "stripe", v, shape,
                            (bounds.lo, bounds.hi), shift=i, offset=o, target=clean)
    return record


def run_sample(run: SampleRun) -> SampleRecord:
    """Generate one complex-mode sample."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = run.config
    # the detector does not depend on the phantom: the main process draws it on a thread
    # while the workers project (its NumPy and SciPy calls release the GIL)
    with ThreadPoolExecutor(1, thread_name_prefix="nsgen-detector") as pool:
        detector = pool.submit(DetectorModel.simulate, cfg.seed, run.sample,
                               Geometry.for_size(cfg.size), cfg.shifts, cfg.shiftstep,
                               cfg.flatsnum, cfg.I0, cfg.defect_density)
        with project_sample(run, work_factor=8 + 2 * cfg.shifts) as done:
            return noise_and_write(run, done, detector.result())


def noise_and_write(run: SampleRun, done: Projected, model: DetectorModel) -> SampleRecord:
    """Passes one (photons, bounds) and two (the files) of a projected sample."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = run.config
    geometry, objects, spill, sizing, pmax = (done.geometry, done.objects, done.spill,
                                              done.sizing, done.hi)
    model = model.stored(run.work / "detector.npz")   # beside the scratch volume
    if not pmax > 0:
        raise RuntimeError("the phantom projects to zero everywhere")
    rows = ComplexRows(model, cfg.seed, run.sample, pmax)
    per_chunk = run.run(StatisticsStage(spill, sizing.chunk_rows, workers=sizing.workers,
                                        rows=rows), sizing)
    bounds = EMPTY
    for chunk_bounds in per_chunk:
        bounds = bounds.union(chunk_bounds)
    run.log(f"[{run.tag}] shared scale: -log values {bounds.lo:.5g} .. {bounds.hi:.5g}")
    names = ["clean"] + [f"shift{i:02d}" for i in range(cfg.shifts)]
    for name in names:
        (run.dir / name).mkdir(parents=True, exist_ok=True)
    images = ComplexImages(rows, bounds)   # spill holds tau now (StatisticsStage)
    # the manifest's records need only the bounds: a thread makes them while the workers
    # write (1,536 records at N=256, ~20-30 ms of the main process that ended the run)
    with ThreadPoolExecutor(1, thread_name_prefix="nsgen-record") as pool:
        record = pool.submit(sample_record, cfg, run.sample, geometry, objects, pmax, model,
                             bounds)
        run.run(WriteStage(TaperedSpillStage(spill, sizing.chunk_rows, sizing.workers), images,
                           run.writer()), sizing)
        return record.result()
