"""Run a generation job: samples -> mode plans -> engine stages, resumably.

The runner owns everything around the science: the engine's processes, sizing,
progress, the per-sample scratch directory, completion records and the manifest.
A mode (``nsgen.modes.<name>``) provides ``check(config)`` (validate inputs before
anything is written) and ``run_sample(run)`` (compose kernels into stages and name
output paths), returning the sample's :class:`SampleRecord`.

Resume: a sample whose ``manifest.json`` exists is finished and skipped. Inside a
sample, work is grouped into *units* (a shift of a real scan, say); a finished
unit leaves a record under ``.nsgen/`` and is not redone. Files are written
atomically, so after any interruption a rerun produces the same bytes as an
uninterrupted run. Once a sample is computed, its contact sheet, manifest and clean-up
(:func:`finish_sample`) run on a thread while the engine computes the next sample.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nsgen import __version__
from nsgen.config import Config, check_root
from nsgen.engine.forkserver import mode_preload
from nsgen.engine.pipeline import Engine, Progress, Stage
from nsgen.engine.sizing import (DEFAULT_MEMORY_SHARE, Sizing, available_memory, plan_sizing,
                                 usable_cores)
from nsgen.io.formats import (check_root_format, pack_sample, remove_stale_containers,
                              writer_for)
from nsgen.io.manifest import MANIFEST, write_json_atomic, write_manifest
from nsgen.io.tiff import remove_temporaries
from nsgen.mainscript import check_main_importable
from nsgen.prep.scaling import Bounds
from nsgen.stages.write import ImageWriter

#: every message of a run goes to this logger: stage messages at INFO, the SLURM
#: task -> sample line at NOTICE (the command prints NOTICE always, INFO with -v)
logger = logging.getLogger("nsgen")
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

#: notes found while a mode checks its inputs (the shift files a scan uses), printed once
#: every check has passed: a refused run prints its one error line alone
_CHECK_NOTES: list[str] = []


def note_after_checks(text: str) -> None:
    """Print ``text`` on stderr once the run's input checks have all passed (once per run,
    however often the checks that find it run)."""
    if text not in _CHECK_NOTES:
        _CHECK_NOTES.append(text)


STATE_DIR = ".nsgen"
WORK_DIR = ".work"
#: pixel checksums of the files a sample wrote so far (kept across a kill, for the rerun)
CHECKSUMS = "crc32.json"


@dataclass
class SampleRecord:
    """What a mode reports about one sample (becomes its manifest)."""

    files: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_file(self, path: str, role: str, index: int, shape: tuple[int, ...],
                 bounds: tuple[float, float], **more: Any) -> None:
        """Record one output file (``path`` relative to the dataset root)."""
        self.files.append(file_record(path, role, index, shape, Bounds(*bounds), **more))


def file_record(path: str, role: str, index: int, shape: tuple[int, ...], bounds: Bounds,
                **more: Any) -> dict[str, Any]:
    """One manifest entry (``path`` relative to the dataset root)."""
    return {"path": path, "role": role, "index": index, "shape": list(shape),
            "bounds": [bounds.lo, bounds.hi], **more}


class Log:
    """Stage messages (INFO on the ``nsgen`` logger) and the progress bars."""

    def __init__(self, verbose: bool, progress: bool) -> None:
        self.verbose = verbose
        self.bars = progress and sys.stderr.isatty()

    def __call__(self, msg: str) -> None:
        logger.info(msg)


class StageRunner:
    """Stages on one engine: sizing from the run's options, progress bars, ``-v`` lines.

    The one way every mode and command (``nsgen mask``) runs its stages.

    Parameters
    ----------
    engine : Engine
        The running engine.
    log : Log
        Messages and progress bars.
    workers : int
        Worker processes of ``engine``.
    chunk_size, memory_limit : int or None
        ``--chunk-size`` and ``--memory-limit`` (None: automatic).
    tag : str
        Names this run in ``-v`` lines (``[tag] ...``) and progress bars.
    """

    def __init__(self, engine: Engine, log: Log, workers: int, chunk_size: int | None,
                 memory_limit: int | None, tag: str) -> None:
        self.engine = engine
        self.log = log
        self.workers = workers
        self.chunk_size = chunk_size
        self.memory_limit = memory_limit
        self.tag = tag

    def say(self, msg: str) -> None:
        """A ``-v`` line about this run: ``[tag] msg``."""
        self.log(f"[{self.tag}] {msg}")

    def with_memory_scratch(self, row_bytes: int, n_rows: int) -> tuple[StageRunner, int]:
        """How many rows (``row_bytes`` each) of a run's scratch volumes are kept in memory
        (:func:`~nsgen.io.spill.memory_rows` of this run's memory limit), and a runner whose
        passes are sized within the rest of the limit (this one when no row is)."""
        from nsgen.io.spill import memory_rows

        limit = self.memory_limit or int(available_memory() * DEFAULT_MEMORY_SHARE)
        rows = memory_rows(limit, row_bytes, n_rows)
        if not rows:
            return self, 0
        return StageRunner(self.engine, self.log, self.workers, self.chunk_size,
                           limit - rows * row_bytes, self.tag), rows

    def sizing(self, *, n_rows: int, row_bytes: int, work_factor: float,
               max_chunk_rows: int | None = None, halo: int = 0,
               worker_overhead: int = 0) -> Sizing:
        """Chunking for a volume of ``n_rows`` rows of ``row_bytes`` each."""
        s = plan_sizing(n_rows=n_rows, row_bytes=row_bytes, work_factor=work_factor,
                        workers=self.workers, chunk_rows=self.chunk_size,
                        memory_limit=self.memory_limit, max_chunk_rows=max_chunk_rows,
                        halo=halo, max_workers=self.workers, worker_overhead=worker_overhead)
        self.say(f"sizing: {s.describe(row_bytes)}"
                 + (f", {halo} halo rows each chunk side" if halo else ""))
        return s

    def run(self, stage: Stage, sizing: Sizing) -> list[Any]:
        """Run one stage on the engine with a progress bar; return chunk values."""
        t0 = time.monotonic()
        bar = None
        if self.log.bars:
            from tqdm import tqdm
            bar = tqdm(total=len(stage.chunks()), desc=f"{self.tag} {stage.label}",
                       unit="chunk", leave=False, file=sys.stderr)

        def progress(p: Progress) -> None:
            if bar is not None:
                dt = max(time.monotonic() - p.started, 1e-9)
                bar.set_postfix(files=p.files, MBps=f"{p.nbytes / dt / 1e6:.0f}", refresh=False)
                bar.update(p.chunks_done - bar.n)

        try:
            values = self.engine.run(stage, sizing.slots, progress)
        finally:
            if bar is not None:
                bar.close()
        self.say(f"{stage.label}: {len(values)} chunks in {time.monotonic() - t0:.2f} s")
        return values


class SampleRun(StageRunner):
    """Context handed to a mode's ``run_sample``: one sample of one run."""

    def __init__(self, config: Config, sample: int, engine: Engine, log: Log,
                 workers: int) -> None:
        super().__init__(engine, log, workers, config.chunk_size, config.memory_limit,
                         f"{sample:04d}")
        self.config = config
        self.sample = sample
        self.root = Path(config.root)
        self.dir = self.root / f"{sample:04d}"
        self.state = self.dir / STATE_DIR
        self.work = self.dir / WORK_DIR
        saved = self.state / CHECKSUMS
        #: path (relative to the root) -> pixel CRC-32 of every TIFF this sample wrote, also
        #: in earlier, interrupted runs: the manifest records them for ``nsgen check --deep``
        self.checksums: dict[str, str] = json.loads(saved.read_text()) if saved.exists() else {}

    def writer(self) -> ImageWriter:
        """The output backend of this run's write stages (paths relative to the root):
        TIFF files, or parts staged for this sample's HDF5/Zarr container (``--format``)."""
        return writer_for(self.config.format, self.root, self.work)

    def run(self, stage: Stage, sizing: Sizing) -> list[Any]:
        """:meth:`StageRunner.run`, keeping the checksums of the files the stage wrote."""
        values = super().run(stage, sizing)
        if self.engine.checksums:
            self.checksums.update(self.engine.checksums)
            self.state.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.state / CHECKSUMS, self.checksums)
        return values

    def unit_done(self, name: str) -> dict[str, Any] | None:
        """The record of a finished unit, or None if it must be (re)done."""
        path = self.state / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
        return None

    def finish_unit(self, name: str, record: dict[str, Any]) -> None:
        """Mark a unit finished (atomic)."""
        self.state.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.state / f"{name}.json", record)

    def output_dir(self, *parts: str) -> Path:
        """Create and return ``root/<parts>`` (for modes that write outside the sample)."""
        d = self.root.joinpath(*parts)
        d.mkdir(parents=True, exist_ok=True)
        return d


def manifest_path(root: Path, sample: int) -> Path:
    """Where a finished sample's manifest lives."""
    return Path(root) / f"{sample:04d}" / MANIFEST


def load_mode(name: str) -> Any:
    """The mode module ``nsgen.modes.<name>``."""
    return importlib.import_module(f"nsgen.modes.{name}")


def finish_sample(run: SampleRun, manifest: dict[str, Any], t0: float) -> None:
    """Complete a computed sample: preview (unless ``--no-preview``), then the manifest
    (written last and atomically: from now on the sample counts as finished), then
    the removal of its scratch and unit records. Container formats are packed first."""
    cfg = run.config
    for f in manifest["files"]:   # TIFF-layout paths: packing carries the checksums along
        crc = run.checksums.get(f["path"])
        if crc is not None:
            f["crc32"] = crc
    manifest = pack_sample(cfg.format, cfg.compression, cfg.root, run.sample, run.work,
                           manifest)
    if run.config.preview:
        from nsgen.preview import attach_preview
        attach_preview(run.config.root, manifest, run.log)
    write_manifest(manifest_path(run.config.root, run.sample), manifest)
    shutil.rmtree(run.work, ignore_errors=True)
    shutil.rmtree(run.state, ignore_errors=True)
    run.log(f"[{run.tag}] done: {len(manifest['files'])} files in "
            f"{time.monotonic() - t0:.2f} s")


def generate(config: Config, on_sample: Callable[[int, Path], None] | None = None) -> list[int]:
    """Generate every sample of ``config`` that is not finished yet.

    Callable from any thread (it installs no signal handler: the command line does) and
    from Jupyter; messages go to ``logging.getLogger("nsgen")``.

    Returns
    -------
    list of int
        The sample numbers generated by this call (finished ones are skipped).
    """
    log = Log(config.verbose, config.progress)
    check_root(config.root)
    check_main_importable()   # before anything is written: the engine's children import it
    workers = config.workers or usable_cores()
    # the engine's processes start, and import the mode with what its stages need (its
    # ENGINE_PRELOAD: nsgen.engine.preload), while this process imports the mode too and
    # checks the inputs
    engine = Engine(workers, preload=mode_preload(config.mode))
    engine.start()
    try:
        return _generate(config, on_sample, log, load_mode(config.mode), engine)
    except BaseException:
        engine.close(abort=True)
        raise
    finally:
        engine.close()


def _generate(config: Config, on_sample: Callable[[int, Path], None] | None, log: Log,
              mode: Any, engine: Engine) -> list[int]:
    """:func:`generate` once its engine is starting."""
    _CHECK_NOTES.clear()
    mode.check(config)
    check_root_format(config.root, config.format)
    from nsgen.diskspace import check_free_space
    from nsgen.rerun import OUTPUT_REVISION, check_rerun, record_start, remove_samples
    stale = check_rerun(config, list(config.sample_numbers()))   # --overwrite: to remake
    todo = [s for s in config.sample_numbers()
            if s in stale or not manifest_path(config.root, s).exists()]
    check_free_space(config, todo)
    for note in _CHECK_NOTES:
        print(note, file=sys.stderr, flush=True)
    _CHECK_NOTES.clear()
    remove_samples(Path(config.root), stale)
    if config.array_task is not None:  # the task -> sample mapping, in every task's log
        task = config.array_task
        logger.log(NOTICE, f"array task {task} -> sample {config.start:04d} (start "
                   f"{config.start - task} + task {task}) under {Path(config.root).absolute()}"
                   + ("" if todo else ": finished earlier, nothing to do"))
    for s in config.sample_numbers():
        if s not in todo:
            log(f"[{s:04d}] finished earlier ({manifest_path(config.root, s)}), skipped")
    if not todo:
        return []
    Path(config.root).mkdir(parents=True, exist_ok=True)
    workers = engine.workers
    log(f"mode {config.mode}, samples {todo[0]:04d}..{todo[-1]:04d}, {workers} workers, "
        f"seed {config.seed}")
    outer = None
    if log.bars:
        from tqdm import tqdm
        outer = tqdm(total=len(todo), desc="samples", unit="sample", file=sys.stderr)
    done: list[int] = []
    # A finished sample's contact sheet, manifest and clean-up run on this thread while
    # the engine computes the next sample (the preview alone takes ~1.5 s of one core).
    finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nsgen-finish")
    pending: tuple[int, Path, Future[None]] | None = None

    def collect() -> None:
        nonlocal pending
        if pending is None:
            return
        sample, directory, future = pending
        pending = None
        future.result()  # re-raises a failure to write the manifest
        done.append(sample)
        if on_sample is not None:
            on_sample(sample, directory)
        if outer is not None:
            outer.update(1)

    try:
        with engine:
            for sample in todo:
                run = SampleRun(config, sample, engine, log, workers)
                t0 = time.monotonic()
                run.dir.mkdir(parents=True, exist_ok=True)
                record_start(config, run.dir)
                removed = remove_temporaries(run.dir) + remove_stale_containers(config.root,
                                                                                 sample)
                if config.mode == "dynamic":   # its TIFFs sit directly under the root
                    removed += remove_temporaries(config.root, f"{run.tag}_", recursive=False)
                if removed:
                    log(f"[{run.tag}] removed {removed} temporary files of an interrupted run")
                record: SampleRecord = mode.run_sample(run)
                manifest = {
                    "nsgen_version": __version__,
                    "output_revision": OUTPUT_REVISION,
                    "mode": config.mode,
                    "sample": sample,
                    "seed": config.seed,
                    "config": config.to_dict(),
                    **record.extra,
                    "files": record.files,
                }
                collect()
                pending = (sample, run.dir,
                           finisher.submit(finish_sample, run, manifest, t0))
        # the engine's processes stop while the last sample is finished
        collect()
    finally:
        finisher.shutdown(wait=True)  # a sample computed in full is always finished
        if outer is not None:
            outer.close()
    return done
