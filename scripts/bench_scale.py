#!/usr/bin/env python
"""Do real modes scale linearly to a full-size scan? Time per GiB and peak PSS, 2.25 GiB vs 20 GB.

Two uint16 scans of 1801 projections x ROWS x 2560 (plus 20 flats and 10 darks), made once
with ``nsgen make-scan`` and kept in the cache directory (``--cache``, else
``$NSGEN_BENCH_CACHE``, else ``/tmp/nsgen-bench-scale``): ROWS = 256 (2.25 GiB of
projections) and ROWS = 2160 (the full detector, 19 GiB). Before making a scan the free
space is checked (the scan plus its outputs); short, the script stops with one line.

For each scan, each figure with the scan out of the page cache first (``echo 3 >
/proc/sys/vm/drop_caches`` as root; else ``posix_fadvise(DONTNEED)`` on the scan file,
which needs no privilege; else warm, and the table says which):

* cold read: h5py reads every projection frame once (the floor);
* raw: ``nsgen -m raw -s 1 --memory-limit LIMIT``;
* paired: ``nsgen -m paired -s 1 --memory-limit LIMIT`` (stripe mask computed on the fly).

Printed per scan and mode: median seconds of ``--repeats`` unsampled runs, seconds per GiB
of projections, the ratio to the cold read (targets: raw <= 1.5, paired <= 3) and the peak
PSS of the process tree in one separate, sampled run, against the limit (target <= 75 %).
Timings on a shared machine vary with the other load: the ratios are what to compare.

With ``--baseline ROOT`` another checkout's runs alternate with this one's (before/after
from one run; ``--no-baseline-peak`` skips the baseline's PSS run); ``--modes paired``
times one mode only. This checkout's runs import this checkout's ``nsgen`` (first on
``PYTHONPATH``), whatever ``nsgen`` is installed.

    python scripts/bench_scale.py [--cache DIR] [--memory-limit 4GB] [--repeats 1]
                                  [--only small|full] [--modes raw paired] [--baseline ROOT]
                                  [--no-baseline-peak]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import evict, read_once  # noqa: E402
from bench_mask import python_path  # noqa: E402
from bench_synthetic import run_nsgen  # noqa: E402

ANGLES, COLUMNS, FLATS, DARKS = 1801, 2560, 20, 10
SCANS = {"small": 256, "full": 2160}
TARGETS = {"raw": 1.5, "paired": 3.0}
#: outputs of one run as a fraction of the scan's bytes (measured: raw ~0.6, paired ~1.3)
OUTPUT_FRACTION = 1.5


def scan_bytes(rows: int) -> int:
    """Bytes of a scan's frames."""
    return (ANGLES + FLATS + DARKS) * rows * COLUMNS * 2


def make_scan(cache: Path, rows: int) -> Path:
    """The cached scan of ``rows`` rows, made (in parallel) if missing; refuses when short of disk."""
    path = cache / f"scale_{ANGLES}x{rows}x{COLUMNS}.nxs"
    need = int(OUTPUT_FRACTION * scan_bytes(rows)) + (0 if path.exists() else scan_bytes(rows))
    free = shutil.disk_usage(cache).free
    if free < need:
        raise SystemExit(f"bench_scale: {cache} has {free / 1e9:.1f} GB free, the {rows}-row scan and "
                         f"its outputs need {need / 1e9:.1f} GB; free space or pass --cache DIR")
    if not path.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nsgen", "make-scan", str(path), "--angles", str(ANGLES),
                        "--rows", str(rows), "--columns", str(COLUMNS), "--flats", str(FLATS),
                        "--darks", str(DARKS)], check=True, stdout=subprocess.DEVNULL)
        print(f"  made {path} ({scan_bytes(rows) / 1e9:.1f} GB) in {time.perf_counter() - t0:.0f} s")
    return path


def drop_caches(path: Path) -> str:
    """Take ``path`` out of the page cache; return how ('drop_caches', 'fadvise' or 'warm')."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "drop_caches"
    except OSError:
        return "fadvise" if evict(path) else "warm"


def mode_args(mode: str, scan: Path, limit: str) -> list[str]:
    """``nsgen`` arguments of a one-shift run of ``mode`` (without ``-r``)."""
    return ["-m", mode, "--hdf-root", str(scan), "-s", "1", "--memory-limit", limit]


#: this checkout (the one the script is in): its runs have it first on ``PYTHONPATH``, not
#: the installed ``nsgen`` (which may be another checkout's editable install)
HERE = str(Path(__file__).resolve().parents[1])


def measure(scan: Path, rows: int, limit: str, limit_bytes: int, repeats: int,
            modes: list[str], baseline: str | None = None,
            baseline_peak: bool = True) -> list[str]:
    """Table lines of one scan: cold read, then each mode (this checkout's, and with
    ``baseline`` that checkout's too, the runs alternating; its peak PSS unless not
    ``baseline_peak``)."""
    gib = ANGLES * rows * COLUMNS * 2 / 2**30
    how = set()
    reads = []
    for _ in range(repeats):
        how.add(drop_caches(scan))
        reads.append(read_once(scan))
    floor = statistics.median(reads)
    lines = [f"{rows:5d} rows {gib:6.2f} GiB  cold read {floor:7.1f} s {floor / gib:6.2f} s/GiB"]
    roots = [HERE] if baseline is None else [baseline, HERE]
    for mode in modes:
        times: dict[str | None, list[float]] = {root: [] for root in roots}
        for _ in range(repeats):
            for root in roots:
                with tempfile.TemporaryDirectory(dir=scan.parent) as d, python_path(root):
                    how.add(drop_caches(scan))
                    times[root].append(run_nsgen([*mode_args(mode, scan, limit), "-r", d])[0])
                print(f"  ({mode} of {root}: {times[root][-1]:.1f} s, cold read {floor:.1f} s)",
                      file=sys.stderr, flush=True)
        for root in roots:
            peak_text = "peak PSS not measured"
            if root == HERE or baseline_peak:
                with tempfile.TemporaryDirectory(dir=scan.parent) as d, python_path(root):
                    drop_caches(scan)
                    peak = run_nsgen([*mode_args(mode, scan, limit), "-r", d], memory=True)[1]
                peak_text = (f"peak PSS {peak / 2**30:5.2f} GiB = {100 * peak / limit_bytes:3.0f} "
                             f"% of the limit (target <= 75 %)")
            t = statistics.median(times[root])
            name = f"{mode} ({'this tree' if root == HERE else 'baseline'})" if baseline else mode
            lines.append(f"{'':22s} {name:6s} {t:9.1f} s {t / gib:6.2f} s/GiB  {t / floor:5.2f} x "
                         f"cold (target <= {TARGETS[mode]})  {peak_text}"
                         f"{'' if repeats == 1 else f' (runs: {times[root]})'}")
    lines.append(f"{'':22s} page cache before each figure: {', '.join(sorted(how))}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--cache", type=Path,
                    default=Path(os.environ.get("NSGEN_BENCH_CACHE", "/tmp/nsgen-bench-scale")))
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--only", choices=sorted(SCANS), action="append")
    ap.add_argument("--modes", nargs="+", choices=sorted(TARGETS), default=["raw", "paired"])
    ap.add_argument("--baseline", help="root of another nsgen checkout (e.g. `git worktree "
                    "add /tmp/base main`) whose runs alternate with this one's")
    ap.add_argument("--no-baseline-peak", action="store_true",
                    help="skip the baseline's separate peak-PSS run (a full-size run takes minutes)")
    a = ap.parse_args()
    from nsgen.config import parse_bytes
    limit = parse_bytes(a.memory_limit)
    a.cache.mkdir(parents=True, exist_ok=True)
    print(f"scans {ANGLES} x ROWS x {COLUMNS} uint16 under {a.cache}; --memory-limit {a.memory_limit}; "
          f"{a.repeats} run(s) each; load average {os.getloadavg()[0]:.1f}")
    for name, rows in SCANS.items():
        if a.only and name not in a.only:
            continue
        scan = make_scan(a.cache, rows)
        for line in measure(scan, rows, a.memory_limit, limit, a.repeats, a.modes, a.baseline,
                            not a.no_baseline_peak):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
