#!/usr/bin/env python
"""Engine benchmarks: real-data throughput vs an h5py read, worker scaling, memory vs rows.

1. Real modes: a scan of 1801 projections x ROWS x 2560 uint16 is made with the project's
   scan writer (cached under --cache), and its stripe mask with ``nsgen mask`` (cached).
   The floor is reading its projection frames once with h5py, in the same run; then each
   of ``nsgen -m raw``, ``paired --mask``, ``dynamic`` and ``patch --mask`` runs on it
   with ``--memory-limit``, alternating with the floor. Printed per mode: medians, the
   ratios to the cold read (scan evicted from the page cache before each timing:
   ``posix_fadvise(DONTNEED)``; target <= 1.5) and to the warm read (raw: target <= 3),
   and the per-stage breakdown of the cold runs (``NSGEN_PROFILE``,
   :mod:`nsgen.engine.profile`: wall seconds of each stage; the reader's read and wait for
   a free slot; the workers' phases, wall and CPU seconds summed over the workers; the main
   process outside the stages = start-up, checks, manifest). Patch mode writes about twice
   the scan's bytes: it gets a second floor, measured in each repeat, writing the files of
   its first run (the same paths and shapes: the same count and bytes; distinct images made
   beforehand) with the project's TIFF writer (:class:`nsgen.io.tiff.TiffWriter`) from one
   process and, each every other file, from two, started together (:func:`write_floor`).
   Then the peak PSS of raw mode against the limit, and raw mode with 1 worker against 2.
   On a machine shared with other jobs only ratios within one run mean anything: the
   floors are measured in the same run, alternating with the modes; CPU seconds are
   steadier than wall seconds.
2. Scaling: a compute-bound mode (complex, N=256) with --workers 1 and 2 (target >= 1.7x):
   4 samples in one run (how datasets are made: the ~1 s of interpreter, import and
   process start-up is paid once) written to /dev/shm, so that the disk's write-back of
   1536 TIFFs per sample (it varies 2x from run to run on a shared VM) does not stand in
   for the engine; and, for reference, a single sample written to disk.
3. Memory: peak PSS of raw mode at ROWS and 4 x ROWS rows (should not grow).
4. Compressed: raw mode on a gzip scan of ROWS / 4 rows compressed a frame per chunk, against
   h5py reading (decompressing) it once.

Wall times come from runs without memory sampling (reading ``smaps`` every 0.1 s slows
a multi-GB run by 15-20 %); each peak PSS from one separate, sampled run.

    python scripts/bench_engine.py [--rows 256] [--repeats 3] [--memory-limit 4GB]
        [--modes raw paired dynamic patch] [--skip scaling memory compressed]
        [--baseline ROOT]

Every ``nsgen`` run is of this checkout (the one the script is in, first on
``PYTHONPATH``), whatever ``nsgen`` is installed. With ``--baseline ROOT`` section 1 runs
another checkout (its code and compiled kernels) and this one alternately in every repeat,
against the same floors: a before/after whose load changes affect both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

#: this checkout (the one the script is in): every run has it first on ``PYTHONPATH``, and
#: the script imports its ``nsgen`` too
HERE = str(Path(__file__).resolve().parents[1])
sys.path[:0] = [str(Path(__file__).parent), HERE]
from bench_synthetic import (GENERATION_FLAGS, compile_tree, run_nsgen,  # noqa: E402
                             tree_env)


def make_scan(path: Path, rows: int, columns: int, angles: int,
              compression: str | None = None) -> None:
    """Write (once) a scan of the given size with the project's scan writer (under a
    temporary name, renamed when complete: an interrupted write is never used)."""
    if path.exists():
        return
    from nsgen.io.scan_writer import write_scan
    t0 = time.perf_counter()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    write_scan(tmp, n_angles=angles, n_rows=rows, n_columns=columns, n_flats=20, n_darks=10,
               chunks=(1, rows, columns), compression=compression)
    tmp.rename(path)
    print(f"  made {path} in {time.perf_counter() - t0:.0f} s")


def make_mask(scan: Path, limit: str) -> Path:
    """The scan's stripe mask archive (made once with ``nsgen mask``, cached beside it)."""
    archive = scan.with_name(f"masks_{scan.stem}.npz")
    if not archive.exists():
        tmp = archive.with_name(f".{archive.stem}.{os.getpid()}.npz")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-P", "-m", "nsgen", "mask", "--h5", str(scan), "-a",
                        str(tmp), "--memory-limit", limit], check=True, capture_output=True,
                       env=tree_env())
        tmp.rename(archive)
        print(f"  made {archive} in {time.perf_counter() - t0:.0f} s")
    return archive


def evict(path: Path) -> bool:
    """Drop one file's pages from the page cache (``posix_fadvise(DONTNEED)``).

    Only the scan goes cold: Python, the libraries and nsgen's compiled kernels stay
    cached, as on a machine that runs nsgen on one new scan after another. Needs no
    privileges (the file's pages are clean). Returns False where it is not supported.
    """
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def read_once(path: Path) -> float:
    """Seconds to read every projection frame of a scan once with h5py."""
    from nsgen.scan import open_scan
    with open_scan(str(path)) as scan:
        first, last = int(scan.projection_indices[0]), int(scan.projection_indices[-1]) + 1
        dpath = scan.data_path
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        d = f[dpath]
        buf = np.empty((64, *d.shape[1:]), d.dtype)
        for a in range(first, last, 64):
            n = min(64, last - a)
            d.read_direct(buf, np.s_[a:a + n], np.s_[:n])
    return time.perf_counter() - t0


def time_against_read(scan: Path, repeats: int, cold: bool, args: Callable[[str], list[str]],
                      extra: tuple[str, ...] = GENERATION_FLAGS) -> tuple[list[float], list[float]]:
    """Seconds of ``repeats`` h5py reads of the scan and of as many ``nsgen`` runs
    (``args(temporary directory)`` + ``extra``, unsampled), alternating; with ``cold`` the
    scan is evicted from the page cache before each of them, without it the scan is read
    once untimed first (so that a warm figure never includes a cold first read)."""
    floors, runs = [], []
    if not cold:
        read_once(scan)
    for _ in range(repeats):
        if cold:
            evict(scan)
        floors.append(read_once(scan))
        with tempfile.TemporaryDirectory() as d:
            if cold:
                evict(scan)
            runs.append(run_nsgen(args(d), extra, env=tree_env())[0])
    return floors, runs


def bench_raw(scan: Path, repeats: int, limit: str, cold: bool) -> tuple[float, float]:
    """Median seconds of the h5py read and of ``nsgen -m raw`` (unsampled runs)."""
    floors, runs = time_against_read(scan, repeats, cold,
                                     lambda d: [*raw_args(scan, limit), "-r", d])
    return statistics.median(floors), statistics.median(runs)


def raw_args(scan: Path, limit: str, *more: str) -> list[str]:
    """``nsgen`` arguments of a one-shift raw-mode run (without ``-r``)."""
    return ["-m", "raw", "--hdf-root", str(scan), "-s", "1", "--memory-limit", limit, *more]


#: the real modes measured (paired and patch read the cached ``nsgen mask`` archive)
MODES = ("raw", "paired", "dynamic", "patch")
#: modes measured against a second floor, writing their own output (:func:`write_floor`)
WRITE_FLOOR_MODES = ("patch",)


def mode_args(mode: str, scan: Path, limit: str, mask: Path | None, *more: str) -> list[str]:
    """``nsgen`` arguments of a one-shift run of ``mode`` (without ``-r``); ``patch-onthefly``
    and ``paired-onthefly`` detect the stripes on the fly instead of reading ``mask``."""
    name, _, how = mode.partition("-")
    args = ["-m", name, "--hdf-root", str(scan), "-s", "1", "--memory-limit", limit]
    if name in ("paired", "patch") and how != "onthefly":
        assert mask is not None
        args += ["--mask", str(mask)]
    return [*args, *more]


def profiled_run(args: list[str], tree: str | None = None,
                 files: list[tuple[str, list[int]]] | None = None
                 ) -> tuple[float, list[dict[str, Any]]]:
    """Wall seconds of one ``nsgen`` run (``args`` without ``-r``) and its profile lines;
    ``tree``: the source tree to run (:func:`tree_env`; None: this one); ``files``
    (when given and empty): filled with the run's :func:`written_files`."""
    from nsgen.engine import profile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "profile.jsonl"
        wall = run_nsgen([*args, "-r", str(Path(d) / "out")],
                         env=tree_env(tree, **{profile.ENV: str(path)}))[0]
        if files is not None and not files:
            files += written_files(Path(d) / "out")
        return wall, profile.load(path)


def written_files(root: Path) -> list[tuple[str, list[int]]]:
    """``(path, shape)`` of every image of a dataset (its manifests' file records)."""
    out = []
    for manifest in sorted(root.rglob("manifest.json")):
        out += [(f["path"], f["shape"]) for f in json.loads(manifest.read_text())["files"]]
    return out


#: the write floor's process: writes the ``(path, shape)`` list of the JSON file argv[2]
#: under argv[1] with the project's TIFF writer (distinct images, made before it says
#: "ready"), starting when it reads a line; prints the start and end (``time.time()``)
_WRITER = """
import json, sys, time
from pathlib import Path
import numpy as np
from nsgen.io.tiff import TiffWriter
root, listing = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
rng = np.random.default_rng(0)
pool = {tuple(s): [rng.integers(0, 65536, s, dtype=np.uint16) for _ in range(8)]
        for s in {tuple(s) for _, s in listing}}
for d in {str(Path(p).parent) for p, _ in listing}:
    (root / d).mkdir(parents=True, exist_ok=True)
items = [(p, pool[tuple(s)][i % 8]) for i, (p, s) in enumerate(listing)]
print("ready", flush=True)
sys.stdin.readline()
t0, c0 = time.time(), time.process_time()
files, nbytes, _ = TiffWriter(root).write(items)
print(json.dumps([t0, time.time(), files, nbytes, time.process_time() - c0]), flush=True)
"""


def write_floor(files: list[tuple[str, list[int]]], processes: int
                ) -> tuple[float, float, int]:
    """Seconds to write the same files (paths, shapes, so the same bytes) with the project's
    TIFF writer (:class:`nsgen.io.tiff.TiffWriter`: the mode's own writes, page cache
    included) from ``processes`` processes, each every ``processes``-th file, started
    together; their CPU seconds; and the bytes written."""
    with tempfile.TemporaryDirectory() as d:
        procs = []
        for k in range(processes):
            listing = Path(d) / f"files{k}.json"
            listing.write_text(json.dumps(files[k::processes]))
            procs.append(subprocess.Popen([sys.executable, "-c", _WRITER, str(Path(d) / "out"),
                                           str(listing)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True))
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        ends = [json.loads(proc.communicate()[0]) for proc in procs]
        if any(proc.returncode for proc in procs):
            raise RuntimeError("a write-floor process failed")
    return (max(e[1] for e in ends) - min(e[0] for e in ends), sum(e[4] for e in ends),
            sum(e[3] for e in ends))


#: worker phases that are not part of a chunk's ``work`` (:mod:`nsgen.engine.children`)
OUTSIDE_WORK = ("work", "idle", "prepare", "process")


def fused_labels(stage: str) -> tuple[str, str] | None:
    """The labels of the two passes of a fused stage's label (``"first + then"``,
    :class:`nsgen.stages.fused.FusedStage`), None for another stage's.

    Examples
    --------
    >>> fused_labels("detect stripes (robust, rows) + normalise+pair")
    ('detect stripes (robust, rows)', 'normalise+pair')
    >>> fused_labels("normalise+pair") is None
    True
    """
    first, plus, then = stage.partition(" + ")
    return (first, then) if plus else None


def breakdown(wall: float, lines: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """One run's seconds by ``(stage, role, phase)`` (summed over processes; phase
    ``"<name> cpu"`` for CPU seconds), with ``("outside stages", "main", "wall")``: the
    run's wall time less its stages' (start-up, checks, manifest).

    A fused stage's workers (:func:`fused_labels`: the detector's first pass and the
    mode's pass one on each chunk) time only the mode's pass in named phases: the rest of
    their ``work`` is the first pass's, a phase named by its label."""
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for line in lines:
        for name, s in line["seconds"].items():
            out[line["stage"], line["role"], name] += s
        for name, s in line.get("cpu", {}).items():
            out[line["stage"], line["role"], f"{name} cpu"] += s
    for stage in {st for st, _, _ in out}:
        labels = fused_labels(stage)
        if labels is None or (stage, "worker", "work") not in out:
            continue
        named = [n for (st, role, n) in out if st == stage and role == "worker"
                 and not n.endswith(" cpu") and n not in OUTSIDE_WORK]
        for cpu in ("", " cpu"):
            if (stage, "worker", f"work{cpu}") in out:
                out[stage, "worker", labels[0] + cpu] = out[stage, "worker", f"work{cpu}"] - sum(
                    out.get((stage, "worker", n + cpu), 0.0) for n in named)
    staged = sum(s for (st, role, name), s in out.items() if role == "main" and name == "wall"
                 and st != "outside stages")
    out["outside stages", "main", "wall"] = wall - staged
    return out


def median_breakdown(runs: list[dict[tuple[str, str, str], float]]
                     ) -> dict[tuple[str, str, str], float]:
    """Median of each figure over runs (0 where a run lacks it)."""
    keys = dict.fromkeys(k for r in runs for k in r)
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}


def print_breakdown(b: dict[tuple[str, str, str], float]) -> None:
    """The per-stage table of :func:`breakdown` (wall / CPU seconds)."""
    stages = list(dict.fromkeys(st for st, _, _ in b))
    stages.remove("outside stages")
    stages.append("outside stages")

    def phases(stage: str, role: str, skip: tuple[str, ...] = ()) -> str:
        names = [n for (st, r, n) in b if st == stage and r == role and not n.endswith(" cpu")
                 and n not in skip]
        names.sort(key=lambda n: -b[stage, role, n])
        return ", ".join(f"{n} {b[stage, role, n]:.2f}"
                         + (f"/{b[stage, role, n + ' cpu']:.2f}"
                            if (stage, role, n + " cpu") in b else "") for n in names)

    total = sum(s for (_, _, n), s in b.items() if n == "process cpu")
    width = max(22, *(len(st) for st in stages))
    print(f"    CPU seconds of the run's processes (forkserver aside): {total:.2f}")
    print(f"    {'stage':<{width}} {'wall s':>7}  reader (wall/cpu s) | workers, summed "
          f"(wall/cpu s)")
    for st in stages:
        wall = b.get((st, "main", "wall"), 0.0)
        if st == "outside stages":
            print(f"    {'main, outside stages':<{width}} {wall:7.2f}  start-up, checks, "
                  f"manifest; " + phases(st, "main", ("wall",)))
            continue
        print(f"    {st:<{width}} {wall:7.2f}  {phases(st, 'reader')} | "
              f"{phases(st, 'worker', ('work',))}")


def print_write_cost(b: dict[tuple[str, str, str], float], files: int,
                     floor_cpu: dict[int, float]) -> None:
    """The write stage's CPU seconds per file (the writer threads: encoding, writing,
    checksums; the image makers; the whole stage, reader aside) against the write floor's
    (:func:`write_floor`, same files)."""
    if not files:
        return
    writer = b.get(("write", "worker", "encode+write files cpu"), 0.0)
    maker = b.get(("write", "worker", "images cpu"), 0.0)
    stage = b.get(("write", "worker", "process cpu"), 0.0)
    print(f"    write stage, CPU ms per file ({files} files): writer threads "
          f"{1e3 * writer / files:.2f}, image makers {1e3 * maker / files:.2f}, workers "
          f"{1e3 * stage / files:.2f}; write floor "
          + ", ".join(f"{n} process{'es' if n > 1 else ''} {1e3 * s / files:.2f}"
                      for n, s in floor_cpu.items()))


#: the source trees section 1 runs, alternating: ``(name, tree or None for this one)``
TREES: list[tuple[str, str | None]] = [("", HERE)]


#: processes of the write floors (:func:`write_floor`) measured beside a mode's runs
WRITE_PROCESSES = (1, 2)


def time_mode(scan: Path, args: list[str], repeats: int, writes: bool = False
              ) -> dict[str, Any]:
    """Cold reads and runs (profiled), then warm reads and runs of one mode, alternating
    (each repeat reads once, then runs every tree of :data:`TREES` in turn); returns the
    lists ``cold_floor``, ``warm_floor`` and, per tree name, ``cold``, ``warm`` and the
    breakdowns ``parts`` of its cold runs (warm ones where the scan cannot be evicted).
    With ``writes``, each repeat also measures the :func:`write_floor` of the files the
    first run wrote, from each number of :data:`WRITE_PROCESSES`: lists ``write <n>`` and
    ``write <n> cpu`` (seconds, CPU seconds), and ``files`` and ``bytes`` (the files' count
    and bytes)."""
    out: dict[str, Any] = {"cold_floor": [], "warm_floor": [], "files": [], "bytes": 0}
    out.update({f"write {n}{cpu}": [] for n in WRITE_PROCESSES for cpu in ("", " cpu")})
    for name, _ in TREES:
        out[name] = {"cold": [], "warm": [], "parts": []}

    def floors() -> None:
        for n in WRITE_PROCESSES if writes else ():
            seconds, cpu, out["bytes"] = write_floor(out["files"], n)
            out[f"write {n}"].append(seconds)
            out[f"write {n} cpu"].append(cpu)

    can_evict = evict(scan)
    for _ in range(repeats if can_evict else 0):
        evict(scan)
        out["cold_floor"].append(read_once(scan))
        for name, tree in TREES:
            evict(scan)
            wall, lines = profiled_run(args, tree, out["files"])
            out[name]["cold"].append(wall)
            out[name]["parts"].append(breakdown(wall, lines))
        floors()
    read_once(scan)
    for _ in range(repeats):
        out["warm_floor"].append(read_once(scan))
        for name, tree in TREES:
            wall, lines = profiled_run(args, tree, out["files"])
            out[name]["warm"].append(wall)
            if not can_evict:
                out[name]["parts"].append(breakdown(wall, lines))
        floors()
    return out


def bench_modes(scan: Path, modes: list[str], repeats: int, limit: str) -> list[str]:
    """Section 1: every mode against the cold and warm read; returns the summary rows."""
    mask = make_mask(scan, limit) if any(m in ("paired", "patch") for m in modes) else None
    rows = []
    med = statistics.median
    for mode in modes:
        writes = mode.partition("-")[0] in WRITE_FLOOR_MODES
        t = time_mode(scan, mode_args(mode, scan, limit, mask), repeats, writes)
        cf, wf = t["cold_floor"], t["warm_floor"]
        if writes:
            walls = {n: med(t[f"write {n}"]) for n in WRITE_PROCESSES}
            print(f"  {mode}: write floor, its {len(t['files'])} files ({t['bytes'] / 2**30:.2f} "
                  f"GiB) with the project's TIFF writer: "
                  + ", ".join(f"{n} process{'es' if n > 1 else ''} {s:.2f} s "
                              f"({med(t[f'write {n} cpu']):.2f} CPU-s)"
                              for n, s in walls.items()))
        for name, _ in TREES:
            cr, wr = t[name]["cold"], t[name]["warm"]
            label = f"{mode}{' ' + name if name else ''}"
            cold = (f"cold read {med(cf):.2f} s -> {med(cr):.2f} s = {med(cr) / med(cf):.2f}x"
                    if cf else "cold: posix_fadvise unavailable")
            print(f"  {label}: {cold}; warm read {med(wf):.2f} s -> {med(wr):.2f} s = "
                  f"{med(wr) / med(wf):.2f}x")
            if writes:
                print("    against the write floor: "
                      + "; ".join(f"{n} process{'es' if n > 1 else ''}: cold "
                                  + (f"{med(cr) / s:.2f}x" if cr else "-")
                                  + f", warm {med(wr) / s:.2f}x" for n, s in walls.items())
                      + "; against a read and the best write floor, one after the other: "
                      + (f"cold {med(cr) / (med(cf) + min(walls.values())):.2f}x, " if cr
                         else "")
                      + f"warm {med(wr) / (med(wf) + min(walls.values())):.2f}x")
            parts = median_breakdown(t[name]["parts"])
            print_breakdown(parts)
            if writes:
                print_write_cost(parts, len(t["files"]),
                                 {n: med(t[f"write {n} cpu"]) for n in WRITE_PROCESSES})
            rows.append(f"| {label} | {med(cr) if cr else float('nan'):.2f} | "
                        f"{med(cf) if cf else float('nan'):.2f} | "
                        f"{med(cr) / med(cf) if cf else float('nan'):.2f}x | {med(wr):.2f} | "
                        f"{med(wf):.2f} | {med(wr) / med(wf):.2f}x |")
    return rows


def bench_workers(scan: Path, repeats: int, limit: str) -> None:
    """Raw mode with 1 worker against 2 (warm scan: compute, not the disk)."""
    read_once(scan)
    walls: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for w in (1, 2):
            walls[w].append(profiled_run(raw_args(scan, limit, "--workers", str(w)))[0])
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"  raw, warm scan: 1 worker {one:.2f} s, 2 workers {two:.2f} s -> speed-up "
          f"{one / two:.2f}x")


def peak_memory(args: list[str]) -> int:
    """Peak PSS of the process tree of one separate, sampled run of this checkout (``args``
    without -r)."""
    with tempfile.TemporaryDirectory() as d:
        return run_nsgen([*args, "-r", d], memory=True, env=tree_env())[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--columns", type=int, default=2560)
    ap.add_argument("--angles", type=int, default=1801)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--cache", default="/tmp/nsgen-bench")
    ap.add_argument("--modes", nargs="*", default=list(MODES),
                    choices=[*MODES, "paired-onthefly", "patch-onthefly"])
    ap.add_argument("--baseline", help="root of another nsgen checkout (e.g. `git worktree "
                    "add /tmp/base main`): section 1 runs it and this one alternately, "
                    "against the same floors")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["throughput", "workers", "scaling", "memory", "compressed"])
    a = ap.parse_args()
    if a.baseline:
        TREES[:] = [(f"baseline ({a.baseline})", a.baseline), (f"this ({HERE})", HERE)]
    for _, tree in TREES:
        compile_tree(tree)
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    from nsgen.config import parse_bytes
    limit = parse_bytes(a.memory_limit)
    scan = cache / f"scan_{a.angles}x{a.rows}x{a.columns}.nxs"
    if "throughput" not in a.skip:
        print(f"1. real modes on {a.angles} x {a.rows} x {a.columns} uint16, medians of "
              f"{a.repeats} (targets: raw <= 1.5x cold, <= 3x warm; paired, dynamic, patch "
              f"<= 1.5x cold); breakdown: medians of the cold runs")
        make_scan(scan, a.rows, a.columns, a.angles)
        rows = bench_modes(scan, a.modes, a.repeats, a.memory_limit)
        print("  | mode | run s (cold) | cold read s | ratio | run s (warm) | warm read s | "
              "ratio |")
        print("  |---|---|---|---|---|---|---|")
        for row in rows:
            print(f"  {row}")
        peak = peak_memory(raw_args(scan, a.memory_limit))
        print(f"  raw: peak PSS (separate run) {peak / 2**20:.0f} MiB of "
              f"{limit / 2**20:.0f} MiB limit")
    if "workers" not in a.skip:
        print("1b. workers: raw mode, 1 vs 2 workers")
        make_scan(scan, a.rows, a.columns, a.angles)
        bench_workers(scan, a.repeats, a.memory_limit)
    if "scaling" not in a.skip:
        print("2. scaling: complex mode N=256, 1 vs 2 workers")
        shm = Path("/dev/shm")
        cases = [(4, shm if shm.is_dir() and os.access(shm, os.W_OK) else None,
                  "4 samples, output in RAM (/dev/shm): the engine's scaling"),
                 (1, None, "1 sample, output on disk: what one small run sees")]
        for samples, base, what in cases:
            walls = {}
            for w in (1, 2):
                ts = []
                for _ in range(a.repeats):
                    with tempfile.TemporaryDirectory(dir=base) as d:
                        ts.append(run_nsgen(["-m", "complex", "-r", d, "--workers", str(w),
                                             "-S", str(samples)], env=tree_env())[0])
                walls[w] = statistics.median(ts)
            print(f"  {what}: 1 worker {walls[1]:.2f} s, 2 workers {walls[2]:.2f} s -> "
                  f"speed-up {walls[1] / walls[2]:.2f}x (target >= 1.7x)")
    if "memory" not in a.skip:
        print(f"3. memory: raw mode peak PSS at {a.rows} and {4 * a.rows} rows "
              f"(1801 x rows x 2560, 16 rows per chunk)")
        peaks = {}
        for rows in (a.rows, 4 * a.rows):
            s = cache / f"scan_{a.angles}x{rows}x{a.columns}.nxs"
            make_scan(s, rows, a.columns, a.angles)
            peaks[rows] = peak_memory(raw_args(s, a.memory_limit, "-C", "16"))
        r0, r1 = sorted(peaks)
        print(f"  peak PSS {peaks[r0] / 2**20:.0f} MiB at {r0} rows, {peaks[r1] / 2**20:.0f} MiB "
              f"at {r1} rows -> ratio {peaks[r1] / peaks[r0]:.2f} (should stay ~1)")
    if "compressed" not in a.skip:
        rows = a.rows // 4
        gz = cache / f"scan_gzip_{a.angles}x{rows}x{a.columns}.nxs"
        print(f"4. compressed: raw mode on a gzip scan {a.angles} x {rows} x {a.columns} "
              f"(one frame per HDF5 chunk)")
        make_scan(gz, rows, a.columns, a.angles, compression="gzip")
        floor, run = bench_raw(gz, a.repeats, a.memory_limit, cold=False)
        print(f"  h5py read (decompressing every frame once) {floor:.2f} s, nsgen raw "
              f"{run:.2f} s -> ratio {run / floor:.2f}")


if __name__ == "__main__":
    main()
