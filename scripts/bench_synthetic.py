#!/usr/bin/env python
"""Benchmark whole synthetic samples against the issue's targets and a measured floor.

Runs ``nsgen -m complex`` (N=256 by default: 300 objects, 5 shifts, 20 flats, 1536 TIFFs)
several times and prints medians of

1. the whole run with 2 workers and with 1 (runs alternate): wall time and **CPU-seconds of
   the whole process tree** (main, forkserver, reader, workers, resource tracker: this
   script makes itself a child subreaper, reaps every orphan of a run and reads
   ``RUSAGE_CHILDREN``), the engine stages' wall times from ``-v``, and the 2-vs-1 speed-up;
2. the floor, measured in the same run: writing the same number of TIFFs of the same size
   with the same writer (:func:`nsgen.io.tiff.write_tiff`) from one process, wall and CPU;
   the ratios run/floor (target <= 2x) and the run's CPU-seconds (target <= 5);
3. a per-stage breakdown in one process (N <= 256 unless ``--no-profile``): the mode's own
   kernels called in the mode's order over the whole sample (phantom, projection,
   beam/flats/defect maps, noise draws, scratch-volume reads and writes, bounds, uint16
   images, TIFF encoding, TIFF files) and the fixed cost of a run (start-up: a whole N=16
   run; imports: ``import nsgen.modes.complex`` alone), each wall and CPU-seconds. Their
   sum against the run's CPU-seconds shows the engine's overhead.

Every whole run also records ``NSGEN_PROFILE``: per engine stage the workers' CPU-seconds
(all their threads: the TIFF writer's too), their busy and idle wall seconds, the reader's
CPU, and the start-up (the first stage's wall minus its busiest worker's); the run's
CPU-seconds are split into the main process's and the rest's (forkserver, reader,
workers, resource tracker). Every run is of this checkout (first on ``PYTHONPATH``, and
the script imports its ``nsgen``); ``--baseline ROOT`` runs another checkout alternately
with this one, against the same floors: before/after from one run. ``--mode simple`` times
simple mode's whole runs instead (2 TIFFs per detector row; no breakdown).

The machine this was tuned on has 2 cores shared with other jobs: wall times vary with
their load, CPU-seconds much less; both are printed. Peak memory comes from one more run
(sampling it slows a run down). No assertions: read the ratios.
``--formats tiff hdf5`` instead compares whole-sample wall times per output format
(runs alternate between formats; ratio against tiff in the same run).

    python scripts/bench_synthetic.py [--repeats 3] [--sizes 256 512] [--workers auto]
    python scripts/bench_synthetic.py --sizes 256 --samples 4 --output /dev/shm --no-profile
    python scripts/bench_synthetic.py --sizes 256 --formats tiff hdf5 zarr
    python scripts/bench_synthetic.py --sizes 256 --repeats 5 --baseline /tmp/base --no-profile
    python scripts/bench_synthetic.py --mode simple --sizes 256 --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from functools import partial
from typing import Any, Callable, Iterable

import numpy as np
import psutil
import tifffile

#: this checkout: the script imports its ``nsgen`` and every run is of it (:func:`tree_env`),
#: not the installed one, unless ``--baseline`` names another tree for half of the runs
HERE = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, HERE)
from nsgen.io.tiff import write_tiff  # noqa: E402


def tree_rss(proc: psutil.Process) -> int:
    """Memory of a process and all its descendants: the sum of their PSS.

    PSS (proportional set size) splits shared pages between the processes that map
    them, so shared-memory slots mapped by the main process, the reader and every worker
    count once (a plain RSS sum counts them once per process).
    """
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total


GENERATION_FLAGS = ("-v", "--no-progress", "--no-preview")
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants (the forkserver and its children) this process's children,
    so that their CPU time reaches ``RUSAGE_CHILDREN`` once they are reaped."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _reap_orphans() -> None:
    """Wait for every remaining child (orphans of the run that exit once its main is gone)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def tree_env(tree: str | None = None, **more: str) -> dict[str, str]:
    """The environment of an ``nsgen`` run of source tree ``tree`` (None: :data:`HERE`),
    first on ``PYTHONPATH`` (:func:`run_nsgen` then starts Python with ``-P``: the working
    directory, perhaps another checkout, does not come before it), without
    ``PYTHONDONTWRITEBYTECODE``: the runs use the tree's bytecode cache, as an installed
    nsgen does (:func:`compile_tree` fills it)."""
    env = {**os.environ, "PYTHONPATH": tree or HERE, **more}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_tree(tree: str | None = None) -> None:
    """Fill the bytecode cache of ``tree``'s ``nsgen`` (None: :data:`HERE`). Without it (a
    fresh work tree in an environment that sets ``PYTHONDONTWRITEBYTECODE``) every process
    of a run compiled ~40 modules from source: 0.07-0.1 CPU-s in the main process and as
    much in the forkserver, before any work."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(tree or HERE) / "nsgen")],
                   check=True, env=tree_env(tree))


def run_nsgen(args: list[str], extra: tuple[str, ...] = GENERATION_FLAGS,
              memory: bool = False, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run ``nsgen ARGS EXTRA``; return wall seconds, peak tree PSS and stderr.

    The peak (``memory=True``) is sampled every 0.1 s from ``/proc/<pid>/smaps``, which
    walks every page table of every process of the tree: that slows a run of a few GB by
    15-20 %, so timed runs leave it off (peak 0) and the scripts measure memory in a
    separate run.
    """
    t0 = time.perf_counter()
    # ``-P``: with a source tree on PYTHONPATH (a baseline), ``-m`` must not put the
    # current directory (often another checkout) before it
    isolate = ["-P"] if env is not None and env.get("PYTHONPATH") else []
    proc = subprocess.Popen([sys.executable, *isolate, "-m", "nsgen", *args, *extra],
                            stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]
    th = None
    if memory:
        ps = psutil.Process(proc.pid)

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss(ps))
                time.sleep(0.1)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    if th is not None:
        th.join()
    if proc.returncode != 0:
        raise SystemExit(f"nsgen failed:\n{err}")
    return wall, peak[0], err


def run_cpu(args: list[str], extra: tuple[str, ...] = GENERATION_FLAGS,
            env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``nsgen ARGS EXTRA``; return wall seconds, CPU-seconds of the whole tree (exact
    once this process is a child subreaper, :func:`become_subreaper`), stderr."""
    _reap_orphans()
    cpu0 = _children_cpu()
    wall, _, err = run_nsgen(args, extra, env=env)
    _reap_orphans()
    return wall, _children_cpu() - cpu0, err


def run_tree(args: list[str], tree: str | None = None) -> dict[str, Any]:
    """One whole ``nsgen ARGS`` run (``tree``: the source tree first on ``PYTHONPATH``; None:
    this checkout, :data:`HERE`), profiled: wall, CPU-seconds of the whole tree and of the
    main process alone, the ``-v`` stage times and the ``NSGEN_PROFILE`` lines."""
    from nsgen.engine import profile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "profile.jsonl"
        env = tree_env(tree, **{profile.ENV: str(path)})
        isolate = ["-P"]
        _reap_orphans()
        cpu0 = _children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *isolate, "-m", "nsgen", *args,
                                 *GENERATION_FLAGS], stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stderr is not None
        lines = []   # (seconds since the launch, line) as each -v line arrives
        for line in proc.stderr:
            lines.append((time.perf_counter() - t0, line))
        err = "".join(line for _, line in lines)
        _, status, usage = os.wait4(proc.pid, 0)   # the main process's own CPU
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
        if proc.returncode != 0:
            raise SystemExit(f"nsgen failed:\n{err}")
        _reap_orphans()
        prof = profile.load(path)
    return {"wall": wall, "cpu": _children_cpu() - cpu0,
            "main_cpu": usage.ru_utime + usage.ru_stime, "stages": stage_times(err),
            "profile": prof, "timeline": timeline(lines, wall)}


def timeline(lines: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """The serial parts of one run from its ``-v`` lines' arrival times (seconds after the
    launch): ``start-up`` (launch to the first stage's start: interpreter, imports, options,
    the sample's set-up), ``between stages`` (a stage's end to the next one's start, summed)
    and ``tail`` (the last stage's end to the process's exit: engine stop, manifest,
    interpreter exit). A stage's start is its line's arrival less the seconds it reports."""
    spans = [(t - float(m.group(2)), t) for t, line in lines
             if (m := re.search(r"\] (\w+): \d+ chunks in ([0-9.]+) s", line))]
    if not spans:
        return {}
    return {"start-up": spans[0][0],
            "between stages": sum(max(0.0, b[0] - a[1]) for a, b in zip(spans, spans[1:])),
            "tail": wall - spans[-1][1]}


def profile_breakdown(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Per engine stage of one run's ``NSGEN_PROFILE`` lines: the workers' CPU-seconds (every
    thread), busy and idle wall seconds (summed over workers), the reader's CPU-seconds and
    the main process's wall; ``wait for workers``: the first stage's wall minus its busiest
    worker's busy seconds (the processes' start, where it outlasts the main process's own
    start-up: :func:`timeline`)."""
    out: dict[str, float] = {}
    busy: dict[tuple[str, int], float] = {}
    first = None
    for r in lines:
        st, role = r["stage"], r["role"]
        if role == "main":
            out[f"{st} wall"] = out.get(f"{st} wall", 0.0) + r["seconds"].get("wall", 0.0)
            first = first or st
        elif role == "worker":
            for key, v in (("worker CPU", r["cpu"].get("process", 0.0)),
                           ("busy", r["seconds"].get("work", 0.0)),
                           ("idle", r["seconds"].get("idle", 0.0))):
                out[f"{st} {key}"] = out.get(f"{st} {key}", 0.0) + v
            busy[st, r["pid"]] = busy.get((st, r["pid"]), 0.0) + r["seconds"].get("work", 0.0)
        elif role == "reader":
            out[f"{st} reader CPU"] = (out.get(f"{st} reader CPU", 0.0)
                                       + r["cpu"].get("process", 0.0))
    if first is not None:
        most = max([v for (st, _), v in busy.items() if st == first] or [0.0])
        out["wait for workers"] = out[f"{first} wall"] - most
    return out


def stage_times(stderr: str) -> dict[str, float]:
    """Per-stage seconds from the ``-v`` log (summed over the run's samples)."""
    times: dict[str, float] = {}
    for m in re.finditer(r"\] (\w+): \d+ chunks in ([0-9.]+) s", stderr):
        times[m.group(1)] = times.get(m.group(1), 0.0) + float(m.group(2))
    return times


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``fn()`` in this process, and its value."""
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - w0, time.process_time() - c0, value


def tiff_floor(n_files: int, shape: tuple[int, int], directory: Path) -> tuple[float, float]:
    """Wall and CPU seconds to write ``n_files`` uint16 TIFFs of ``shape`` from one process."""
    img = np.random.default_rng(0).integers(0, 65535, shape, dtype=np.uint16)
    wall, cpu, _ = timed(lambda: [write_tiff(directory / f"f{i:05d}.tif", img)
                                  for i in range(n_files)])
    return wall, cpu


def tifffile_floor(n_files: int, shape: tuple[int, int], directory: Path) -> tuple[float, float]:
    """The floor with the writer before nsgen cached TIFF headers: ``tifffile.imwrite`` per
    file (the issue's 1.54 s), for comparison with the issue's figures."""
    img = np.random.default_rng(0).integers(0, 65535, shape, dtype=np.uint16)
    wall, cpu, _ = timed(lambda: [tifffile.imwrite(directory / f"f{i:05d}.tif", img,
                                                   photometric="minisblack", metadata=None,
                                                   software=False) for i in range(n_files)])
    return wall, cpu


def _listed(make: Callable[..., Iterable[Any]], *args: Any) -> list[Any]:
    """``list(make(*args))``: a generator's items, made now (timed)."""
    return list(make(*args))


def profile_stages(n: int, objects: int, shifts: int, flats: int, directory: Path
                   ) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each stage of one complex sample computed in this process.

    Calls the mode's kernels in the mode's order over every chunk of the sample (the
    chunking of a 2-worker run): pass one draws the photons, keeps the transmission in a
    scratch volume and finds the bounds; pass two reads it back, makes the images and
    writes them (:func:`write_tiff`: header lookup, then the file-system calls).
    """
    from nsgen.engine.pipeline import row_chunks
    from nsgen.io.spill import Spill
    from nsgen.io.tiff import tiff_header
    from nsgen.modes import complex as cx
    from nsgen.modes.synthetic import phantom
    from nsgen.prep.scaling import EMPTY
    from nsgen.rng import generator
    from nsgen.sim import flats as fl
    from nsgen.sim.projection import Geometry, project

    class Cfg:
        seed, object_type = 0, "sphere"

    Cfg.objects = objects   # type: ignore[attr-defined]
    out: dict[str, list[float]] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu, value = timed(fn)
        w, c = out.setdefault(name, [0.0, 0.0])
        out[name] = [w + wall, c + cpu]
        return value

    g = Geometry.for_size(n)
    objs = stage("phantom", lambda: phantom(Cfg, 0))   # type: ignore[arg-type]
    chunks = row_chunks(g.n_rows, 32)
    spill = Spill.create(directory / "projection.f32", g.shape)
    for c in chunks:
        p3 = stage("projection", partial(project, objs, g, (c.start, c.stop)))
        spill.write_rows(c.start, p3)
    pmax = max(float(spill.read_rows(c.start, c.stop).max()) for c in chunks)
    shape = (g.n_rows, g.n_columns)
    det = "flats (beam, flats, defect maps)"
    profile = stage(det, lambda: fl.beam_profile(shape, generator(0, "beam", 0)))
    stage(det, lambda: fl.flat_fields(profile, 40000.0, flats, generator(0, "flats", 0)))
    stage(det, lambda: fl.add_pixel_defects(fl.defect_maps(shape, generator(0, "defects", 0)),
                                            1.0, generator(0, "pixel-defects", 0)))
    model = cx.DetectorModel.simulate(0, 0, g, shifts, 2, flats, 40000.0, 1.0)
    rows = cx.ComplexRows(model, 0, 0, pmax)
    bounds = EMPTY
    for c in chunks:   # pass one
        p3 = stage("scratch volume reads and writes", partial(spill.read_rows, c.start, c.stop))
        tau = stage("noise draws (transmission)", partial(rows.transmission, c, p3))
        stage("scratch volume reads and writes", partial(spill.write_rows, c.start, tau))
        bounds = bounds.union(stage("bounds (clean extremes, defect pixels)",
                                    partial(rows.bounds, c, tau)))
    images = cx.ComplexImages(rows, bounds)
    for c in chunks:   # pass two
        tau = stage("scratch volume reads and writes", partial(spill.read_rows, c.start, c.stop))
        made = stage("uint16 images (clean -log, shifts)", partial(_listed, images, c, tau))
        for path, image in made:
            stage("TIFF encoding (header)", partial(tiff_header, image.shape))
            target = directory / path.replace("/", "_")
            stage("write (TIFF files)", partial(write_tiff, target, image))
    return {k: (v[0], v[1]) for k, v in out.items()}


def fixed_costs() -> dict[str, tuple[float, float]]:
    """(wall, CPU) of a whole N=16 run (start-up, forkserver, processes, imports) and of
    ``import nsgen.modes.complex`` in a fresh interpreter (this checkout's)."""
    with tempfile.TemporaryDirectory() as d:
        wall, cpu, _ = run_cpu(["-m", "complex", "-N", "16", "-o", "3", "-s", "2", "-f", "2",
                                "-r", d], env=tree_env())
    _reap_orphans()
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", "import nsgen.modes.complex"], check=True,
                   env=tree_env())
    imp = (time.perf_counter() - t0, _children_cpu() - cpu0)
    return {"start-up (whole N=16 run)": (wall, cpu), "imports (one interpreter)": imp}


def med(values: list[float]) -> float:
    return statistics.median(values)


def compare_formats(n: int, workers: str, repeats: int, formats: list[str]) -> None:
    """Median wall time of a complex sample per output format, runs alternating."""
    args = ["-m", "complex", "-N", str(n), "-o", "300", "-s", "5", "-f", "20",
            "--workers", workers]
    walls: dict[str, list[float]] = {f: [] for f in formats}
    for _ in range(repeats):
        for fmt in formats:
            with tempfile.TemporaryDirectory() as d:
                walls[fmt].append(run_nsgen([*args, "-r", d, "--format", fmt],
                                            env=tree_env())[0])
    ref = med(walls[formats[0]])
    print(f"N={n}: complex sample, {repeats} runs per format (alternating)")
    for fmt, w in walls.items():
        print(f"  {fmt:<5} wall median {med(w):.2f} s (runs: {', '.join(f'{x:.2f}' for x in w)}); "
              f"ratio to {formats[0]} {med(w) / ref:.2f}")


#: (label, source tree) of the checkouts section 1 runs, alternately
TREES: list[tuple[str, str | None]] = [("this", HERE)]


#: per mode: the options of its runs (beside -N, -S) and its files per detector row
MODE_ARGS = {"complex": (["-o", "300", "-s", "5", "-f", "20"], 6), "simple": (["-o", "300"], 2)}


def bench_size(n: int, workers: str, reps: int, profile: bool, samples: int = 1,
               base: str | None = None, mode: str = "complex") -> None:
    """Whole runs (2 and 1 workers, alternating, of every tree in :data:`TREES`), floor,
    breakdown (complex mode) for one size ``n``; ``samples`` per run, written under ``base``
    (default: the temporary directory)."""
    options, per_row = MODE_ARGS[mode]
    args = ["-m", mode, "-N", str(n), *options, "-S", str(samples)]
    p, dh = int(0.5 * np.pi * n), int(np.sqrt(2) * n)
    n_files = n * per_row * samples
    counts = [workers, "1"] if workers != "1" else ["1"]
    load0 = os.getloadavg()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (label, w): [] for label, _ in TREES for w in counts}
    floors, old_floors = [], []
    for _ in range(reps):
        for w in counts:
            for label, tree in TREES:
                with tempfile.TemporaryDirectory(dir=base) as d:
                    runs[label, w].append(run_tree([*args, "--workers", w, "-r", d], tree))
        with tempfile.TemporaryDirectory(dir=base) as d:
            floors.append(tiff_floor(n_files, (p, dh), Path(d)))
        with tempfile.TemporaryDirectory(dir=base) as d:
            old_floors.append(tifffile_floor(n_files, (p, dh), Path(d)))
    with tempfile.TemporaryDirectory() as d:
        peak = run_nsgen([*args, "--workers", workers, "-r", d], memory=True,
                         env=tree_env(TREES[-1][1]))[1]
    floor_w, floor_c = med([f[0] for f in floors]), med([f[1] for f in floors])
    old_w, old_c = med([f[0] for f in old_floors]), med([f[1] for f in old_floors])
    print(f"N={n}: {samples} {mode} sample(s) per run ({n_files} TIFFs of {p}x{dh}"
          f"{', under ' + base if base else ''}), medians of {reps} "
          f"(2 shared cores: wall varies with other jobs' load, CPU-seconds much less); "
          f"load average (1 min) {load0[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"  floor: writing {n_files} TIFFs with write_tiff from one process: wall "
          f"{floor_w:.2f} s, CPU {floor_c:.2f} s; with tifffile.imwrite per file (the "
          f"writer before, the issue's floor) wall {old_w:.2f} s, CPU {old_c:.2f} s")
    for (label, w), rs in runs.items():
        wall, cpu = med([r["wall"] for r in rs]), med([r["cpu"] for r in rs])
        main_cpu = med([r["main_cpu"] for r in rs])
        stages = {k: med([r["stages"].get(k, float("nan")) for r in rs]) for k in rs[0]["stages"]}
        parts = [profile_breakdown(r["profile"]) for r in rs]
        prof = {k: med([x.get(k, float("nan")) for x in parts]) for k in parts[0]}
        walls = ", ".join(f"{r['wall']:.2f}" for r in rs)
        cpus = ", ".join(f"{r['cpu']:.2f}" for r in rs)
        print(f"  {label}, --workers {w}: wall {wall:.2f} s (runs {walls}), CPU {cpu:.2f} s "
              f"(runs {cpus}); main process {main_cpu:.2f}, the rest {cpu - main_cpu:.2f}")
        print(f"    ratio to the floor: wall {wall / floor_w:.2f}x, CPU {cpu / floor_c:.2f}x; to "
              f"the tifffile.imwrite floor: wall {wall / old_w:.2f}x (target <= 2), CPU "
              f"{cpu / old_c:.2f}x; CPU-seconds per sample {cpu / samples:.2f} (target <= 5)")
        print("    engine stages (wall): " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
              + f"; outside them {wall - sum(stages.values()):.2f} s")
        print("    profile (medians): " + ", ".join(f"{k} {v:.2f}" for k, v in prof.items()))
        tl = [r["timeline"] for r in rs]
        serial = {k: med([x.get(k, float("nan")) for x in tl]) for k in tl[0]}
        passes = ", ".join(f"{st} {prof[f'{st} wall']:.2f} / {prof[f'{st} worker CPU'] / int(w):.2f}"
                           for st in stages if f"{st} worker CPU" in prof)
        print("    serial (medians): " + ", ".join(f"{k} {v:.2f} s" for k, v in serial.items())
              + f"; per pass, wall / workers' CPU per worker: {passes}; cores busy on "
              f"average (CPU / wall) {med([r['cpu'] / r['wall'] for r in rs]):.2f}")
    for label, _ in TREES:
        if len(counts) == 2:
            w2 = med([r["wall"] for r in runs[label, counts[0]]])
            w1 = med([r["wall"] for r in runs[label, "1"]])
            print(f"  {label}: scaling 1 worker {w1:.2f} s / {counts[0]} workers {w2:.2f} s = "
                  f"{w1 / w2:.2f}x (target >= 1.7x)")
    if len(TREES) == 2:
        (before, _), (after, _) = TREES
        for w in counts:
            b, a = runs[before, w], runs[after, w]
            print(f"  --workers {w}: {after} / {before}: wall "
                  f"{med([r['wall'] for r in a]) / med([r['wall'] for r in b]):.3f}, CPU "
                  f"{med([r['cpu'] for r in a]) / med([r['cpu'] for r in b]):.3f}")
    print(f"  peak memory (PSS) of the process tree {peak / 2**20:.0f} MiB (separate run)")
    if not profile:
        return
    prof_runs: list[dict[str, tuple[float, float]]] = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as d:
            one = fixed_costs()
            one.update(profile_stages(n, 300, 5, 20, Path(d)))
            prof_runs.append(one)
    print(f"  per-stage breakdown, one process, medians of {reps} (wall / CPU seconds):")
    total_c = 0.0
    for k in prof_runs[0]:
        wall, cpu = med([x[k][0] for x in prof_runs]), med([x[k][1] for x in prof_runs])
        if not k.startswith("imports"):
            total_c += cpu
        print(f"    {k:<36} {wall:6.2f} {cpu:6.2f}")
    print(f"    {'sum (imports are inside start-up)':<36} {'':6} {total_c:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--mode", choices=sorted(MODE_ARGS), default="complex",
                    help="the synthetic mode of the whole runs (the breakdown is complex's)")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--samples", type=int, default=1,
                    help="samples per run (start-up paid once, as when making a dataset)")
    ap.add_argument("--output", default=None,
                    help="write under this directory (e.g. /dev/shm: no disk write-back)")
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the one-process per-stage breakdown")
    ap.add_argument("--formats", nargs="+", default=None,
                    help="compare these --format values (first = reference) instead")
    ap.add_argument("--baseline", help="root of another nsgen checkout (e.g. `git worktree "
                    "add /tmp/base main`): whole runs alternate between it and this one")
    a = ap.parse_args()
    if a.baseline:
        here = str(Path(__file__).resolve().parents[1])
        TREES[:] = [(f"baseline ({a.baseline})", a.baseline), (f"this ({here})", here)]
    for _, tree in TREES:
        compile_tree(tree)
    if not become_subreaper():
        print("(cannot become a child subreaper: CPU-seconds miss the engine's processes)")
    if a.formats:
        for n in a.sizes:
            compare_formats(n, a.workers, a.repeats, a.formats)
        return
    workers = a.workers if a.workers != "auto" else str(min(2, os.cpu_count() or 1))
    for n in a.sizes:
        bench_size(n, workers, a.repeats,
                   profile=not a.no_profile and n <= 256 and a.mode == "complex",
                   samples=a.samples, base=a.output, mode=a.mode)


if __name__ == "__main__":
    main()
