"""In-process API: synthetic samples as arrays, and generation runs from Python.

:func:`simulate_sample` returns what the command writes for one synthetic sample (the
clean sinograms, every input and the metadata) as float32 arrays, before quantisation:
``to_uint16`` of them on the sample's scale gives the TIFFs' pixels exactly
(:meth:`SampleArrays.quantised`). The values depend only on (options, seed, sample).

The scale of a sample is global (simple mode rescales by the projection's min/max,
complex mode stores every volume on the min/max of all of them), so a part of a sample
needs two passes over the whole volume first. :func:`sample_scale` makes those passes
in row chunks, keeping only the numbers; :meth:`SampleScale.simulate` then computes any
row range, and :func:`iter_sample` walks a sample in row chunks, so memory stays
bounded by the chunk whatever the size.

Examples
--------
>>> import numpy as np, nsgen
>>> s = nsgen.simulate_sample(mode="simple", size=16, objects=5, seed=1)
>>> s.clean.shape, s.clean.dtype.name, sorted(s.inputs)
((16, 25, 22), 'float32', ['stripe'])
>>> part = nsgen.simulate_sample(mode="simple", size=16, objects=5, seed=1, rows=(4, 6))
>>> bool(np.array_equal(part.inputs["stripe"], s.inputs["stripe"][4:6]))
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.config import SYNTHETIC_MODES, Config
from nsgen.engine.pipeline import Chunk
from nsgen.errors import NsgenError
from nsgen.modes.complex import ComplexRows, DetectorModel, detector_record
from nsgen.modes.simple import rescale, stripe_sinogram
from nsgen.modes.synthetic import objects_record, phantom
from nsgen.prep.scaling import EMPTY, Bounds, to_uint16
from nsgen.rng import generator
from nsgen.sim.projection import Geometry, project

#: detector rows per chunk of the streaming passes (:func:`sample_scale`, :func:`iter_sample`)
CHUNK_ROWS = 16
UNIT = Bounds(0.0, 1.0)

__all__ = ["SampleArrays", "SampleScale", "generate", "iter_sample", "make_config",
           "sample_scale", "simulate_sample", "synthetic_config"]


def make_config(config: Config | None = None, **options: Any) -> Config:
    """``config`` with ``options`` replaced (or a new :class:`Config` of ``options``).

    Options are :class:`Config` fields (``size=64``, ``mode="simple"``); invalid values
    raise the command line's message.

    Examples
    --------
    >>> make_config(size=64).size
    64
    >>> make_config(make_config(size=64), seed=3).seed
    3
    """
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise NsgenError(f"unknown option {', '.join(unknown)}; options are the fields of "
                         f"nsgen.Config (long option names with underscores, e.g. object_type)")
    for name in ("patch_size", "frame_angles"):   # given here: kept, as on the command line
        if name in options:
            options.setdefault(f"{name}_given", True)
    if config is None:
        return Config(**options)
    return dataclasses.replace(config, **options) if options else config


def synthetic_config(config: Config | None, options: dict[str, Any]) -> Config:
    """:func:`make_config`, refusing the real-data modes."""
    cfg = make_config(config, **options)
    if cfg.mode not in SYNTHETIC_MODES:
        raise NsgenError(f"only the synthetic modes ({', '.join(SYNTHETIC_MODES)}) are "
                         f"simulated in process, got mode {cfg.mode!r}; use mode='simple' or "
                         f"mode='complex', or generate real-data modes with nsgen.generate")
    return cfg


def _check_sample(sample: Any) -> int:
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) \
            or not 0 <= sample <= 9999:
        raise NsgenError(f"sample must be an integer in 0..9999, got {sample!r}")
    return int(sample)


@dataclass(frozen=True)
class SampleScale:
    """Everything a row of a sample needs from the whole volume, drawn and measured once.

    Attributes
    ----------
    config : Config
        The (synthetic) options.
    sample : int
        Sample number.
    geometry : Geometry
        Projection geometry; volumes are ``geometry.shape`` = (rows, angles, columns).
    objects : numpy.ndarray
        The phantom's object list.
    projection : Bounds
        Min and max of the exact projection.
    bounds : Bounds
        The stored scale: uint16 0..65535 stands for ``bounds.lo..bounds.hi`` of the
        float arrays ((0, 1) in simple mode, ``-log`` units in complex mode).
    model : DetectorModel or None
        The complex-mode detector (flats, defect maps, responses).
    """

    config: Config
    sample: int
    geometry: Geometry
    objects: np.ndarray
    projection: Bounds
    bounds: Bounds
    model: DetectorModel | None

    @property
    def input_names(self) -> list[str]:
        """Names of the inputs: ``stripe`` (simple) or ``shift00``, ``shift01``, ..."""
        if self.config.mode == "simple":
            return ["stripe"]
        return [f"shift{i:02d}" for i in range(self.config.shifts)]

    def metadata(self) -> dict[str, Any]:
        """The sample's metadata, as in its manifest (plus the stored scale)."""
        cfg = self.config
        meta: dict[str, Any] = {
            "mode": cfg.mode, "sample": self.sample, "seed": cfg.seed,
            "geometry": self.geometry.shape, "objects": objects_record(self.objects),
            "projection_bounds": [self.projection.lo, self.projection.hi],
            "bounds": [self.bounds.lo, self.bounds.hi], "inputs": self.input_names}
        if self.model is not None:
            meta["projection_max"] = self.projection.hi
            meta["detector"] = detector_record(cfg, self.model)
        return meta

    def simulate(self, start: int, stop: int, p3: np.ndarray | None = None) -> SampleArrays:
        """Rows ``start..stop-1`` of the sample (``p3``: their projection, if known)."""
        n = self.geometry.n_rows
        if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))
                and 0 <= start < stop <= n):
            raise NsgenError(f"rows must be a range (start, stop) with 0 <= start < stop <= "
                             f"{n}, got ({start}, {stop})")
        if p3 is None:
            p3 = project(self.objects, self.geometry, (int(start), int(stop)))
        clean, inputs, _ = _rows(self, int(start), p3)
        return SampleArrays(clean, inputs, self, int(start))


@dataclass
class SampleArrays:
    """Rows ``start..start+len(clean)-1`` of a synthetic sample, as float32 volumes.

    Attributes
    ----------
    clean : numpy.ndarray
        Clean targets, (rows, angles, columns), float32.
    inputs : dict of str to numpy.ndarray
        The inputs by folder name (``stripe`` or ``shiftNN``), same shape as ``clean``.
    scale : SampleScale
        The sample's global quantities (scale, phantom, detector).
    start : int
        First detector row held.
    """

    clean: np.ndarray
    inputs: dict[str, np.ndarray]
    scale: SampleScale
    start: int

    @property
    def rows(self) -> range:
        """Detector rows held."""
        return range(self.start, self.start + len(self.clean))

    @property
    def metadata(self) -> dict[str, Any]:
        """:meth:`SampleScale.metadata` plus the rows held."""
        return {**self.scale.metadata(), "rows": [self.rows.start, self.rows.stop]}

    def quantised(self, name: str = "clean") -> np.ndarray:
        """Volume ``name`` (``clean`` or an input) as the uint16 values the TIFFs hold."""
        volume = self.clean if name == "clean" else self.inputs.get(name)
        if volume is None:
            raise NsgenError(f"no volume {name!r}; choose clean or one of "
                             f"{', '.join(self.inputs)}")
        return to_uint16(volume, self.scale.bounds)


def _rows(scale: SampleScale, start: int, p3: np.ndarray
          ) -> tuple[np.ndarray, dict[str, np.ndarray], Bounds]:
    """Clean and inputs of rows ``start..`` from their projection, with their bounds."""
    cfg, sample = scale.config, scale.sample
    if scale.model is None:
        x = rescale(p3, scale.projection.lo, scale.projection.hi)
        stripe = np.stack([stripe_sinogram(x[k], generator(cfg.seed, "stripes", sample, 0, v))
                           for k, v in enumerate(range(start, start + len(x)))])
        return x, {"stripe": stripe.astype(np.float32, copy=False)}, UNIT
    rows = ComplexRows(scale.model, cfg.seed, sample, scale.projection.hi)
    clean, shifts = rows.clean_and_defects(Chunk(0, start, start + len(p3)), p3)
    bounds = Bounds.of(clean)
    inputs = {}
    for name, (r, c, values) in zip(scale.input_names, shifts):
        if values.size:
            bounds = bounds.union(Bounds.of(values))
        vol = clean.copy()
        vol[r, :, c] = values
        inputs[name] = vol
    return clean, inputs, bounds


def _draw(cfg: Config, sample: int) -> tuple[Geometry, np.ndarray]:
    return Geometry.for_size(cfg.size), phantom(cfg, sample)


def _model(cfg: Config, sample: int, geometry: Geometry, projection: Bounds
           ) -> DetectorModel | None:
    if cfg.mode == "simple":
        return None
    if not projection.hi > 0:
        raise NsgenError("the phantom projects to zero everywhere; raise --objects")
    return DetectorModel.simulate(cfg.seed, sample, geometry, cfg.shifts, cfg.shiftstep,
                                  cfg.flatsnum, cfg.I0, cfg.defect_density)


def sample_scale(config: Config | None = None, sample: int | None = None, *,
                 chunk_rows: int = CHUNK_ROWS, measured: tuple[Bounds, Bounds] | None = None,
                 **options: Any) -> SampleScale:
    """Measure a sample's scale in row chunks, holding at most one chunk.

    One pass over the projection (two in complex mode: the projection, then its
    ``-log`` volumes), each ``chunk_rows`` rows at a time.

    Parameters
    ----------
    config : Config, optional
        Options; ``options`` override its fields (or build one without it).
    sample : int, optional
        Sample number (default ``config.start``).
    chunk_rows : int
        Rows per chunk.
    measured : (Bounds, Bounds), optional
        ``(projection, bounds)`` of an earlier call for the same sample: skips the
        passes and only redraws the phantom and detector.

    Returns
    -------
    SampleScale
    """
    cfg = synthetic_config(config, options)
    n = _check_sample(cfg.start if sample is None else sample)
    if chunk_rows < 1:
        raise NsgenError(f"chunk_rows must be >= 1, got {chunk_rows}")
    geometry, objects = _draw(cfg, n)
    if measured is not None:
        projection, bounds = measured
        return SampleScale(cfg, n, geometry, objects, projection, bounds,
                           _model(cfg, n, geometry, projection))

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        for a in range(0, geometry.n_rows, chunk_rows):
            yield a, project(objects, geometry, (a, min(a + chunk_rows, geometry.n_rows)))

    projection = EMPTY
    for _, p3 in chunks():
        projection = projection.union(Bounds(float(p3.min()), float(p3.max())))
    model = _model(cfg, n, geometry, projection)
    scale = SampleScale(cfg, n, geometry, objects, projection, UNIT, model)
    if model is None:
        return scale
    bounds = EMPTY
    for a, p3 in chunks():
        bounds = bounds.union(_rows(scale, a, p3)[2])
    return dataclasses.replace(scale, bounds=bounds)


def simulate_sample(config: Config | None = None, sample: int | None = None, *,
                    rows: tuple[int, int] | None = None, **options: Any) -> SampleArrays:
    """One synthetic sample (or rows of it) as float32 arrays, as the command writes it.

    Parameters
    ----------
    config : Config, optional
        Options (mode ``simple`` or ``complex``); ``options`` override its fields, or
        build the configuration without it (``simulate_sample(mode="simple", size=64)``).
    sample : int, optional
        Sample number (default ``config.start``); with the seed it fixes every draw.
    rows : (int, int), optional
        Only detector rows ``start..stop-1``: the scale is then measured in chunks
        (:func:`sample_scale`) and memory holds only these rows.

    Returns
    -------
    SampleArrays
        ``clean``, ``inputs`` and ``metadata``; ``quantised(name)`` gives the TIFF values.

    Examples
    --------
    >>> s = simulate_sample(mode="complex", size=16, objects=5, shifts=3)
    >>> sorted(s.inputs), s.quantised("shift01").dtype.name
    (['shift00', 'shift01', 'shift02'], 'uint16')
    """
    cfg = synthetic_config(config, options)
    n = _check_sample(cfg.start if sample is None else sample)
    if rows is not None:
        return sample_scale(cfg, n).simulate(*rows)
    geometry, objects = _draw(cfg, n)
    p3 = project(objects, geometry)
    projection = Bounds(float(p3.min()), float(p3.max()))
    scale = SampleScale(cfg, n, geometry, objects, projection, UNIT,
                        _model(cfg, n, geometry, projection))
    clean, inputs, bounds = _rows(scale, 0, p3)
    return SampleArrays(clean, inputs, dataclasses.replace(scale, bounds=bounds), 0)


def iter_sample(config: Config | None = None, sample: int | None = None, *,
                chunk_rows: int = CHUNK_ROWS, **options: Any) -> Iterator[SampleArrays]:
    """A sample in consecutive chunks of ``chunk_rows`` rows (bounded memory).

    Examples
    --------
    >>> parts = list(iter_sample(mode="simple", size=16, objects=5, chunk_rows=6))
    >>> [p.rows for p in parts]
    [range(0, 6), range(6, 12), range(12, 16)]
    """
    scale = sample_scale(config, sample, chunk_rows=chunk_rows, **options)
    for a in range(0, scale.geometry.n_rows, chunk_rows):
        yield scale.simulate(a, min(a + chunk_rows, scale.geometry.n_rows))


def generate(config: Config | None = None,
             on_sample: Callable[[int, Path], None] | None = None,
             **options: Any) -> list[int]:
    """Run a generation job in this process (any thread, Jupyter included).

    Same as the command with the same options: it writes ``config.root`` and resumes
    finished work. Messages go to ``logging.getLogger("nsgen")`` (INFO: stages).

    Returns
    -------
    list of int
        Sample numbers generated by this call (finished samples are skipped).
    """
    from nsgen.runner import generate as run
    return run(make_config(config, **options), on_sample)
