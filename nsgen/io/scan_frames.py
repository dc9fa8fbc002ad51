"""Frames of a synthetic scan: phantom, beam, detector and noise (closed forms only).

:func:`nsgen.io.scan_writer.write_scan` describes a scan by a :class:`FrameSpec` and has
:func:`fill_frames` make and write its frames in threads (the default layout), or takes them
from :func:`generate_frames`, whose worker processes make them (other layouts): frame ``i``
depends only on the spec and ``i``, so the order, the thread and the process do not matter.

Content
-------
* object: a vertical cylinder (the sample container, radius 0.42 of the detector width,
  centred on the rotation axis) holding six spheres; the line integral at (row, column)
  for angle theta is the sum of exact chord lengths times the attenuation coefficients
  (maximum roughly 1.5);
* beam: ``i0`` photons per pixel at the centre, falling smoothly to about 60 % at the
  detector edges, with a gentle variation along the rows;
* detector: a fixed dark pattern around 100 counts, Gaussian read noise of sigma 2, and
  the gain of each pixel during the projections (1 but for the defects);
* counts (:func:`expose`): ``dark + gain * photons + read noise`` with ``photons``
  Poisson of mean ``lam = beam * exp(-line integral)``. Where ``lam >= 100`` (every pixel
  of a scan at the default ``i0``) the sum of photon and read noise is drawn as one
  Gaussian of the same mean and variance, ``dark + gain * lam + sqrt(gain**2 * lam +
  2**2) * z``; pixels with ``0 < lam < 100`` get exact Poisson photons.

Random streams
--------------
Frame ``i`` draws from ``nsgen.rng.generator(seed, "scan-frame", i)``: first one float32
standard normal per pixel (``z``, row-major), then, only if some pixels have
``0 < lam < 100``, Poisson photons for those pixels in row-major order. The phantom, the
dark pattern and the default defects have streams of their own. So the bytes of a scan
depend on its parameters and seed only, never on the threads, processes or block size
that wrote it. The normals are NumPy's (``Generator.standard_normal(dtype=np.float32)`` of
that PCG64 stream, bit for bit) but computed inside the compiled counts loop
(:mod:`nsgen.io._scan_normals`), four times cheaper than asking NumPy for them. (make-scan
used to draw a Poisson count and a read noise per pixel: three times slower, statistically
the same at these photon counts, but different bytes.)

Examples
--------
>>> import numpy as np
>>> key = np.array([2, 1, 0, 0], np.int32)
>>> spec = FrameSpec(n_rows=4, n_columns=16, n_angles=2, seed=3, i0=20000.0,
...                  dtype="uint16", image_key=key, frame_angle=np.array([0., 0., 0., 180.]))
>>> maker = FrameMaker(spec)
>>> dark, flat, projection = maker.frame(0), maker.frame(1), maker.frame(2)
>>> bool(90 < dark.mean() < 110), bool(flat.mean() > projection.mean() > dark.mean())
(True, True)
>>> bool((FrameMaker(spec).frame(2) == projection).all())
True
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from nsgen.errors import NsgenError
from nsgen.io.scan_defects import LabelledDefect, apply_defects
from nsgen.io.spill import pwrite_all
from nsgen.mainscript import UNGUARDED_EXIT, UNGUARDED_SCRIPT, check_main_importable
from nsgen.rng import generator

__all__ = ["DARK_LEVEL", "Defect", "EXACT_BELOW", "FrameMaker", "FrameSpec", "READ_NOISE",
           "default_workers", "expose", "fill_frames", "generate_frames"]

DARK_LEVEL = 100.0
READ_NOISE = 2.0
#: mean photon counts below which a pixel's photons are drawn from an exact Poisson law
EXACT_BELOW = 100.0


@dataclass(frozen=True)
class Defect:
    """A detector column with a gain error on rows ``row_start <= r < row_stop``.

    In ``-log`` normalised sinograms of those rows it is a full stripe of height
    ``-ln(gain)`` at ``column``.
    """

    column: int
    row_start: int
    row_stop: int
    gain: float


@dataclass(frozen=True, eq=False)
class FrameSpec:
    """Everything a frame depends on (small and picklable: worker processes get a copy).

    ``image_key`` and ``frame_angle`` (degrees) have one entry per frame; ``defects`` are
    gain errors during the projections, ``labels`` the labelled defects of
    :mod:`nsgen.io.scan_defects` (with ``labelled``, also the hard negatives: a cylinder
    just off the axis and a beam drifting after the flats).
    """

    n_rows: int
    n_columns: int
    n_angles: int
    seed: int
    i0: float
    dtype: str
    image_key: np.ndarray
    frame_angle: np.ndarray
    defects: tuple[Defect, ...] = ()
    labels: tuple[LabelledDefect, ...] = ()
    labelled: bool = False
    first_projection: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "first_projection", int(np.flatnonzero(self.image_key == 0)[0]))


@dataclass(frozen=True)
class _Phantom:
    container_radius: float
    container_mu: float
    centres: np.ndarray  # (k, 3): x, y (pixels from the axis), z (row)
    radii: np.ndarray  # (k,)
    mus: np.ndarray  # (k,)


def _phantom(n_rows: int, n_columns: int, seed: int) -> _Phantom:
    rng = generator(seed, "scan-phantom")
    rc = 0.42 * n_columns
    k = 6
    radii = rng.uniform(0.05, 0.13, k) * n_columns
    dist = rng.uniform(0.3, 0.95, k) * (rc - radii)  # off the axis: the spheres move in the sinogram
    phi = rng.uniform(0.0, 2 * np.pi, k)
    z = rng.uniform(0.0, n_rows, k)
    mus = rng.uniform(0.15, 0.3, k) / radii  # each sphere 0.3..0.6 through its centre
    centres = np.stack([dist * np.cos(phi), dist * np.sin(phi), z], axis=1)
    return _Phantom(rc, 0.5 / (2 * rc), centres, radii, mus)


def _line_integrals(ph: _Phantom, theta_deg: float, n_rows: int, n_columns: int,
                    container: np.ndarray) -> np.ndarray:
    """Exact line integrals (n_rows, n_columns) for one angle (parallel beam)."""
    from nsgen.io._scan_jit import line_integrals  # compiled on first use, cached on disk

    t = np.deg2rad(theta_deg)
    axis = (n_columns - 1) / 2.0
    k = len(ph.radii)
    sc = np.empty(k)
    bounds = np.zeros((k, 4), dtype=np.int64)  # rows r0:r1, columns c0:c1 (empty: 0:0)
    for i, ((x0, y0, z0), r) in enumerate(zip(ph.centres, ph.radii)):
        sc[i] = x0 * np.cos(t) + y0 * np.sin(t)
        c0, c1 = max(0, int(np.floor(sc[i] + axis - r))), min(n_columns, int(np.ceil(sc[i] + axis + r)) + 1)
        r0, r1 = max(0, int(np.floor(z0 - r))), min(n_rows, int(np.ceil(z0 + r)) + 1)
        if c0 < c1 and r0 < r1:
            bounds[i] = r0, r1, c0, c1
    out = np.empty((n_rows, n_columns), dtype=np.float32)
    return line_integrals(container[0], sc, bounds[:, :2].copy(), bounds[:, 2:].copy(),
                          np.ascontiguousarray(ph.centres[:, 2]), ph.radii, 2.0 * ph.mus, out)


def _beam(n_rows: int, n_columns: int, i0: float) -> np.ndarray:
    u = (np.arange(n_columns) - (n_columns - 1) / 2.0) / max(n_columns / 2.0, 1.0)
    v = np.arange(n_rows) / max(n_rows, 1)
    across = 0.6 + 0.4 * np.exp(-1.2 * u**2)
    along = 1.0 + 0.05 * np.sin(2 * np.pi * v + 0.3)
    return (i0 * along[:, None] * across[None, :]).astype(np.float32)


def _drift(k: int, n_angles: int, n_columns: int) -> np.ndarray:
    """Beam drift after the flats (labelled scans): +-2 %, smooth in columns and angles."""
    u = np.arange(n_columns) / max(n_columns, 1)
    return (1.0 + 0.02 * np.sin(2 * np.pi * (1.5 * u + k / max(n_angles, 1)))).astype(np.float32)


def expose(t: np.ndarray, beam: np.ndarray, drift: np.ndarray, gain: np.ndarray, dark: np.ndarray,
           rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
    """Detector counts of one frame into ``out`` (the noise model of the module docstring).

    Parameters
    ----------
    t : numpy.ndarray
        Transmission ``exp(-line integral)``, float32 ``(rows, columns)`` (1 for a flat,
        0 for a dark).
    beam : numpy.ndarray
        Photons per pixel without the object, float32 ``(rows, columns)``.
    drift : numpy.ndarray
        Relative beam per column, float32 ``(columns,)``.
    gain : numpy.ndarray
        Detector gain, float32 ``(rows, columns)``.
    dark : numpy.ndarray
        Dark counts, float32 ``(rows, columns)``.
    rng : numpy.random.Generator
        The frame's stream; draws ``z`` first, then the exact Poisson photons.
    out : numpy.ndarray
        uint16 (rounded, clipped to 0..65535), float32 or float64 ``(rows, columns)``.

    Returns
    -------
    numpy.ndarray
        ``out``.

    Examples
    --------
    >>> one = np.ones((2, 3), np.float32)
    >>> out = np.empty((2, 3), np.float64)
    >>> c = expose(0 * one, 1e4 * one, one[0], one, 100 * one, generator(0, "x"), out)
    >>> bool(abs(c.mean() - 100) < 6)   # a dark: 100 + read noise of sigma 2
    True
    """
    from nsgen.io._scan_jit import expose_frame  # compiled on first use, cached on disk
    from nsgen.io._scan_normals import pcg_state, set_pcg_state

    bits = rng.bit_generator
    if not isinstance(bits, np.random.PCG64):
        raise TypeError(f"expose draws from a PCG64 generator (nsgen.rng.generator), got {type(bits).__name__}")
    st = pcg_state(bits)
    z_low = np.empty(t.shape, np.float32)  # written (pages touched) only where 0 < lam < EXACT_BELOW
    rounded = out.dtype == np.uint16
    n_low = expose_frame(t, beam, drift, gain, dark, st, np.float32(READ_NOISE**2), np.float32(EXACT_BELOW),
                         rounded, out, z_low)
    set_pcg_state(bits, st)
    if n_low:
        lam = t * beam * drift
        idx = np.flatnonzero((lam > 0) & (lam < EXACT_BELOW))
        photons = rng.poisson(lam.ravel()[idx]).astype(np.float32)
        x = (dark.ravel()[idx] + gain.ravel()[idx] * photons) + np.float32(READ_NOISE) * z_low.ravel()[idx]
        if rounded:
            x = np.clip(np.rint(x), 0, 65535)
        out.ravel()[idx] = x
    return out


class FrameMaker:
    """Makes the frames of one :class:`FrameSpec` (static arrays built once)."""

    def __init__(self, spec: FrameSpec) -> None:
        self.spec = spec
        rows, cols, seed = spec.n_rows, spec.n_columns, spec.seed
        self._phantom = _phantom(rows, cols, seed)
        s = np.arange(cols) - (cols - 1) / 2.0
        ph = self._phantom
        container = 2.0 * ph.container_mu * np.sqrt(np.maximum(ph.container_radius**2 - s**2, 0.0))
        if spec.labelled:  # hard negative: a cylinder 1.5 px off the axis, edges almost fixed
            rk = 0.12 * cols
            container += 2.0 * (0.3 / rk) * np.sqrt(np.maximum(rk**2 - (s - 1.5) ** 2, 0.0))
        self._container = container.astype(np.float32)[None, :]
        self._beam = _beam(rows, cols, spec.i0)
        dark = DARK_LEVEL + 3.0 * generator(seed, "scan-dark-pattern").standard_normal((rows, cols))
        self._dark = np.maximum(dark, 0.0).astype(np.float32)
        self._gain = np.ones((rows, cols), dtype=np.float32)
        for d in spec.defects:
            self._gain[d.row_start:d.row_stop, d.column] *= np.float32(d.gain)
        self._ones = np.ones((rows, cols), dtype=np.float32)
        self._flat_drift = np.ones(cols, dtype=np.float32)

    def frame(self, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frame ``index`` (``(rows, columns)`` of the spec's dtype), into ``out`` if given."""
        spec = self.spec
        if out is None:
            out = np.empty((spec.n_rows, spec.n_columns), dtype=spec.dtype)
        kind = spec.image_key[index]
        drift, gain = self._flat_drift, self._ones
        if kind == 2:
            t = np.zeros_like(self._ones)
        elif kind == 1:
            t = self._ones
        else:
            t = _line_integrals(self._phantom, spec.frame_angle[index], spec.n_rows, spec.n_columns,
                                self._container)
            np.negative(t, out=t)
            np.exp(t, out=t)
            k = index - spec.first_projection
            if spec.labelled:
                drift = _drift(k, spec.n_angles, spec.n_columns)
            gain = self._gain
            if spec.labels:
                gain = gain.copy()
                cap = np.zeros_like(gain)
                apply_defects(gain, cap, k, spec.n_angles, list(spec.labels))
        expose(t, self._beam, drift, gain, self._dark, generator(spec.seed, "scan-frame", index), out)
        if kind == 0 and spec.labels:
            out[cap > 0] = 65535
        return out

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as one ``(stop - start, rows, columns)`` array."""
        out = np.empty((stop - start, self.spec.n_rows, self.spec.n_columns), dtype=self.spec.dtype)
        for i in range(start, stop):
            self.frame(i, out[i - start])
        return out


def default_workers() -> int:
    """Processes :func:`write_scan` uses for a large scan: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_MAKER: FrameMaker | None = None


def _start_worker(spec: FrameSpec) -> None:
    global _MAKER
    _MAKER = FrameMaker(spec)


def _make_frames(start: int, stop: int) -> np.ndarray:
    assert _MAKER is not None
    return _MAKER.frames(start, stop)


def _fill_frames(maker: FrameMaker, fd: int, offsets: np.ndarray, start: int, stop: int) -> None:
    """Make frames ``[start, stop)`` and write each at its offset in the file ``fd``."""
    frame = np.empty((maker.spec.n_rows, maker.spec.n_columns), dtype=maker.spec.dtype)
    for i in range(start, stop):
        maker.frame(i, frame)
        pwrite_all(fd, frame.data.cast("B"), int(offsets[i]))


@contextmanager
def _pool(workers: int, initargs: tuple) -> Iterator[ProcessPoolExecutor]:
    """Forkserver worker processes, each with a :class:`FrameMaker` (``_start_worker``), for
    :func:`generate_frames` (whose frames go to the calling process)."""
    check_main_importable()
    ctx = mp.get_context("forkserver")
    # a forkserver started here imports the frame code once; its children inherit it
    ctx.set_forkserver_preload(["nsgen.io.scan_frames", "nsgen.io._scan_jit"])
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=initargs)
    try:
        yield pool
    except BrokenProcessPool:
        # the executor's thread is still joining the children: reading an exit status from
        # this thread meanwhile races with it (the forkserver sends each status once), so
        # let it finish first; shutdown forgets the processes, so keep them
        children = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=True, cancel_futures=True)
        statuses = [p.exitcode for p in children]
        if UNGUARDED_EXIT in statuses:
            raise NsgenError(UNGUARDED_SCRIPT) from None
        raise NsgenError("a make-scan worker process died (killed or out of memory); rerun, with "
                         "--workers 1 or more memory") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def generate_frames(spec: FrameSpec, block: int, workers: int) -> Iterator[tuple[int, np.ndarray]]:
    """Every frame of ``spec``, in order, as ``(first index, frames)`` blocks of ``block`` frames.

    With ``workers > 1``, that many processes make the blocks, at most two each ahead of
    the caller (bounded memory); the blocks are the same whatever ``workers`` is.

    Examples
    --------
    >>> key = np.array([2, 1, 0, 0, 0], np.int32)
    >>> spec = FrameSpec(n_rows=2, n_columns=8, n_angles=3, seed=0, i0=1e4, dtype="uint16",
    ...                  image_key=key, frame_angle=np.array([0., 0., 0., 90., 180.]))
    >>> [(a, f.shape) for a, f in generate_frames(spec, 2, 1)]
    [(0, (2, 2, 8)), (2, (2, 2, 8)), (4, (1, 2, 8))]
    """
    n_frames = len(spec.image_key)
    starts = range(0, n_frames, block)
    if workers <= 1:
        maker = FrameMaker(spec)
        for a in starts:
            yield a, maker.frames(a, min(n_frames, a + block))
        return
    with _pool(workers, (spec,)) as pool:
        pending: deque = deque()
        todo = iter(starts)
        for a in todo:
            pending.append((a, pool.submit(_make_frames, a, min(n_frames, a + block))))
            if len(pending) >= 2 * workers:
                break
        while pending:
            a, future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_make_frames, nxt, min(n_frames, nxt + block))))
            yield a, future.result()


def fill_frames(spec: FrameSpec, path: str | os.PathLike[str], offsets: np.ndarray, block: int,
                workers: int) -> None:
    """Write every frame of ``spec`` into the file at ``path``, frame ``i`` as its raw bytes
    (C order) at byte ``offsets[i]``: the storage HDF5 allocated for an uncompressed chunk of
    one frame. ``workers`` threads of this process make and write the frames (``block`` per
    task): the compiled kernels, ``numpy.exp`` and ``os.pwrite`` run without the GIL, so
    they use as many cores, without the start-up of worker processes (an interpreter,
    Numba and the kernels' cache each, ~0.5 CPU-s) or any copy of a frame between
    processes. The bytes are the same whatever ``workers``.

    Examples
    --------
    >>> import tempfile
    >>> key = np.array([2, 1, 0], np.int32)
    >>> spec = FrameSpec(n_rows=2, n_columns=8, n_angles=1, seed=0, i0=1e4, dtype="uint16",
    ...                  image_key=key, frame_angle=np.zeros(3))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "raw")
    ...     open(path, "wb").close()
    ...     fill_frames(spec, path, np.array([64, 32, 0]), 2, 2)
    ...     raw = np.fromfile(path, np.uint16).reshape(3, 2, 8)
    >>> bool((raw[::-1] == np.concatenate([f for _, f in generate_frames(spec, 3, 1)])).all())
    True
    """
    n_frames = len(spec.image_key)
    tasks = [(a, min(n_frames, a + block)) for a in range(0, n_frames, block)]
    offsets = np.asarray(offsets, dtype=np.int64)
    maker = FrameMaker(spec)  # read-only once built: the threads share it
    fd = os.open(path, os.O_WRONLY)
    try:
        if workers <= 1:
            for a, b in tasks:
                _fill_frames(maker, fd, offsets, a, b)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="make-scan") as pool:
            futures = [pool.submit(_fill_frames, maker, fd, offsets, a, b) for a, b in tasks]
            try:
                for future in futures:
                    future.result()
            finally:
                for future in futures:
                    future.cancel()
    finally:
        os.close(fd)
