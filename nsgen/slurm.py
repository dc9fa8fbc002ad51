"""SLURM array jobs: one sample per array task (see ``docs/slurm.md``).

``nsgen submit [--config FILE] [--samples N] [--scan-list FILE] [--dry-run] [--wait]
[sbatch options] [-- nsgen options]``

writes the batch script it submits next to the dataset (``<root>/.slurm/``), submits an
array of N tasks with ``sbatch`` and prints the job id. Array task ``i`` runs
``nsgen --config FILE --samples N [nsgen options] --array-task i``, which generates
sample ``start + i`` only; with ``--scan-list`` (real-data modes) task ``i`` also reads
the ``i``-th scan of the list as ``--hdf-root``.

The batch script is :func:`batch_script`: the body of ``scripts/nsgen.sbatch``
(:func:`static_script`, the same text with nothing filled in) plus a settings block
with this submission's arguments.

``python -m nsgen.slurm merge-masks ARCHIVE PART...`` merges per-task mask archives
(``scripts/mask.sbatch``); ``python -m nsgen.slurm static-script`` prints
``scripts/nsgen.sbatch``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nsgen.errors import NsgenError
from nsgen.slurm_fit import (
    DEFAULT_DIRECTIVES,
    fitted_directives,
    hopeless,
    partition_of,
    partition_resources,
    pending_reasons,
)

#: where ``nsgen submit`` keeps scripts, scan lists and task logs, below the dataset root
SLURM_DIR = ".slurm"
#: task log name pattern (``%A`` array job id, ``%a`` task id), in SLURM_DIR
LOG_PATTERN = "nsgen-%A_%a.log"


SBATCH_MISSING = "sbatch not found; run on a SLURM login node or use scripts/slurm-local.sh up"

_STATIC_HEADER = """\
# nsgen.sbatch: one nsgen sample per SLURM array task (docs/slurm.md).
#
#   sbatch --array=0-<N-1> [sbatch options] nsgen.sbatch [--scan-list FILE] \\
#          --config nsgen.ini --samples <N> [nsgen options]
#
# Array task i runs `nsgen <arguments> --array-task i`: sample start + i of the run
# start..start+N-1 (start from the config or the options), nothing else. With
# --scan-list FILE (real-data modes; first argument) task i also reads entry i of FILE
# (one scan path per line, blank and # lines skipped) as --hdf-root.
# `nsgen submit --config nsgen.ini --samples N [sbatch options]` writes a copy of this
# script with the arguments filled in next to the dataset and submits it.
# The #SBATCH lines are defaults: options on the sbatch command line override them.
"""

_SUBMIT_HEADER = """\
# Written by `nsgen submit` ({when}); docs/slurm.md.
# Submitted as: {command}
# Array task i generates sample {start} + i ({start:04d}..{last:04d}){scans}.
# Resubmit tasks (finished samples are skipped): sbatch --array=<ids> {script}
"""

_STATIC_SETTINGS = """\
NSGEN=(nsgen)   # how to run nsgen on the compute nodes, e.g. (/path/to/venv/bin/nsgen)
SCAN_LIST=""    # or pass --scan-list FILE as the first argument
"""

_BODY = r"""
if [ "${1:-}" = --scan-list ]; then
    SCAN_LIST=${2:?--scan-list needs a file}
    shift 2
fi
task=${SLURM_ARRAY_TASK_ID:-}
if [ -z "$task" ]; then
    echo "nsgen.sbatch: error: SLURM_ARRAY_TASK_ID is not set; submit an array:" \
         "sbatch --array=0-<N-1> nsgen.sbatch ... or nsgen submit" >&2
    exit 2
fi
echo "nsgen.sbatch: task ${SLURM_ARRAY_JOB_ID:-?}_$task (job ${SLURM_JOB_ID:-?}) on" \
     "${SLURMD_NODENAME:-$HOSTNAME}, restart ${SLURM_RESTART_COUNT:-0}, cpus" \
     "${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-?}}, $(date '+%F %T')"
scan=()
if [ -n "$SCAN_LIST" ]; then
    if [ ! -r "$SCAN_LIST" ]; then
        echo "nsgen.sbatch: error: scan list $SCAN_LIST is not readable; pass an existing" \
             "file of scans, one per line" >&2
        exit 2
    fi
    entry=$(grep -v -E '^[[:space:]]*(#|$)' "$SCAN_LIST" |
            sed -n "$((task + 1)){s/^[[:space:]]*//;s/[[:space:]]*\$//;p}" || true)
    if [ -z "$entry" ]; then
        echo "nsgen.sbatch: error: array task $task has no scan: $SCAN_LIST lists fewer" \
             "than $((task + 1)) scans; submit --array=0-<number of scans - 1>" >&2
        exit 2
    fi
    echo "nsgen.sbatch: array task $task -> scan $entry (entry $((task + 1)) of $SCAN_LIST)"
    scan=(--hdf-root "$entry")
fi
echo "nsgen.sbatch: running $(printf '%q ' "${NSGEN[@]}" "$@" "${scan[@]}")--array-task $task"
exec "${NSGEN[@]}" "$@" "${scan[@]}" --array-task "$task"
"""


def _render(header: str, directives: Sequence[str], settings: str) -> str:
    lines = ["#!/bin/bash", header.rstrip("\n")]
    lines += [f"#SBATCH {d}" for d in directives]
    lines += ["set -euo pipefail", "", "# ---- settings ----", settings.rstrip("\n"),
              "# ---- end of settings ----"]
    return "\n".join(lines) + "\n" + _BODY


def static_script() -> str:
    """Text of ``scripts/nsgen.sbatch``: the batch script with nothing filled in."""
    return _render(_STATIC_HEADER, [*DEFAULT_DIRECTIVES, "--output=nsgen-%A_%a.log"],
                   _STATIC_SETTINGS)


@dataclass
class Submission:
    """Everything ``nsgen submit`` derived from its arguments (nothing written yet)."""

    samples: int
    start: int
    root: Path
    workdir: Path
    nsgen_args: list[str]
    sbatch_args: list[str]
    scans: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    #: the script's default resources (:func:`fitted_directives` at submission)
    directives: tuple[str, ...] = DEFAULT_DIRECTIVES

    @property
    def slurm_dir(self) -> Path:
        """``<root>/.slurm``: scripts, scan lists and task logs of the dataset's jobs."""
        return self.root / SLURM_DIR

    @property
    def user_array(self) -> bool:
        """True when the sbatch options choose the array (e.g. ``--array=0-99%10``)."""
        return any(_is_array_option(a) for a in self.sbatch_args)

    def sbatch_command(self, script: Path) -> list[str]:
        """``sbatch --parsable [--array=0-(N-1)] [sbatch options] SCRIPT``."""
        array = [] if self.user_array else [f"--array=0-{self.samples - 1}"]
        return ["sbatch", "--parsable", *array, *self.sbatch_args, str(script)]


def _is_array_option(arg: str) -> bool:
    """``--array``, ``--array=...``, ``-a`` or ``-a...`` (sbatch's array option)."""
    return arg == "--array" or arg.startswith("--array=") or \
        (arg.startswith("-a") and not arg.startswith("--"))


def batch_script(sub: Submission, script: Path, scan_file: Path | None) -> str:
    """The batch script of one submission (see :func:`static_script` for the body).

    Parameters
    ----------
    sub : Submission
        The parsed submission.
    script : Path
        Where the script will be written (named in its header).
    scan_file : Path, optional
        The copy of the scan list the tasks read.
    """
    directives = [*sub.directives, f"--array=0-{sub.samples - 1}",
                  f"--output={sub.slurm_dir / LOG_PATTERN}"]
    if sub.sbatch_args:  # later directives win: a hand resubmission keeps the options
        directives.append(shlex.join(sub.sbatch_args))
    args = (["--scan-list", str(scan_file)] if scan_file else []) + sub.nsgen_args
    settings = [f"cd {shlex.quote(str(sub.workdir))}   # relative paths resolve where "
                f"nsgen submit ran"]
    settings += [f"export {k}={shlex.quote(v)}" for k, v in sorted(sub.env.items())]
    settings += [f"NSGEN=({shlex.quote(sub.python)} -m nsgen)",
                 'SCAN_LIST=""',
                 "set -- " + " ".join(shlex.quote(a) for a in args) + ' "$@"']
    header = _SUBMIT_HEADER.format(
        when=time.strftime("%Y-%m-%d %H:%M:%S"),
        command=shlex.join(sub.sbatch_command(script)), start=sub.start,
        last=sub.start + sub.samples - 1, script=script,
        scans=f"; task i reads scan i of {scan_file}" if scan_file else "")
    return _render(header, directives, "\n".join(settings))


# --------------------------------------------------------------------------- arguments

USAGE = """\
usage: nsgen submit [--config FILE] [--samples N] [--scan-list FILE] [--dry-run] [--wait]
                    [sbatch options] [-- nsgen options]

Submit a SLURM array of N tasks; task i generates sample start + i of the run
`nsgen --config FILE --samples N [nsgen options]` (docs/slurm.md).

  --config FILE     nsgen INI file (as for `nsgen --config`)
  --samples N       number of tasks and samples (default: samples of the config, or the
                    number of scans of --scan-list)
  --scan-list FILE  real-data modes: one scan per line; task i reads scan i as --hdf-root
  --dry-run         print the batch script and the sbatch command; submit nothing
  --wait            wait until every task has ended; exit 1 if one did not complete
  sbatch options    passed to sbatch, e.g. --partition=gpu --time=2:00:00 --cpus-per-task=8
                    --array=0-99%10 (your own array: throttle, or rerun some tasks)
  -- nsgen options  generation options for every task, e.g. -- --seed 3 -v
"""


@dataclass
class SubmitArgs:
    """``nsgen submit``'s arguments: its own options, sbatch's and nsgen's."""

    config: str | None = None
    samples: int | None = None
    scan_list: str | None = None
    dry_run: bool = False
    wait: bool = False
    help: bool = False
    sbatch: list[str] = field(default_factory=list)
    nsgen: list[str] = field(default_factory=list)


def parse_submit_args(argv: Sequence[str]) -> SubmitArgs:
    """Split ``nsgen submit`` arguments into its own, sbatch's and nsgen's.

    Only long options are nsgen's own (``-c``, ``-N``, ``-o``, ``-p`` mean other things
    to sbatch); everything else before ``--`` is passed to sbatch unchanged.
    """
    argv = list(argv)
    out = SubmitArgs()
    if "--" in argv:
        i = argv.index("--")
        argv, out.nsgen = argv[:i], argv[i + 1:]
    valued = {"--config": "config", "--samples": "samples", "--scan-list": "scan_list"}
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, value = a.partition("=")
        if name in valued:
            if not eq:
                if i + 1 >= len(argv):
                    raise NsgenError(f"{name} needs a value; see nsgen submit --help")
                i += 1
                value = argv[i]
            setattr(out, valued[name], value)
        elif a in ("--dry-run", "--wait"):
            setattr(out, a[2:].replace("-", "_"), True)
        elif a in ("-h", "--help"):
            out.help = True
        else:
            out.sbatch.append(a)
        i += 1
    if out.samples is not None:
        try:
            out.samples = int(out.samples)
        except ValueError:
            raise NsgenError(f"--samples must be a positive integer, got "
                             f"{out.samples!r}") from None
        if out.samples < 1:
            raise NsgenError(f"--samples must be a positive integer, got {out.samples}")
    return out


def read_scan_list(path: Path) -> list[str]:
    """Scans of a scan list: one path per line; blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NsgenError(f"cannot read scan list {path} ({exc.__class__.__name__}); pass a "
                         f"text file with one scan path per line") from None
    scans = [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("#")]
    if not scans:
        raise NsgenError(f"scan list {path} has no scans; write one scan path per line")
    return scans


def plan_submission(args: SubmitArgs, cwd: Path | None = None,
                    env: dict[str, str] | None = None) -> Submission:
    """Validate a submission as ``nsgen`` would validate each task; write nothing.

    Raises
    ------
    NsgenError
        Bad options, a config the tasks would reject, a scan list that does not match.
    """
    from nsgen.config import REAL_MODES, parse_config

    cwd = Path.cwd() if cwd is None else Path(cwd)
    env = dict(os.environ if env is None else env)
    if any(a == "--array-task" or a.startswith("--array-task=") for a in args.nsgen) \
            or "NSGEN_ARRAY_TASK" in env:
        raise NsgenError("--array-task is set by the batch script for each task; remove it "
                         "from the nsgen options (and NSGEN_ARRAY_TASK from the environment)")
    config = args.config or env.pop("NSGEN_CONFIG", None) or None
    base = ["--config", os.path.abspath(cwd / config)] if config else []
    scans: list[str] = []
    if args.scan_list:
        scans = [os.path.abspath(cwd / s) for s in read_scan_list(cwd / args.scan_list)]
        if args.samples is not None and args.samples != len(scans):
            raise NsgenError(f"--samples {args.samples} does not match the {len(scans)} scans "
                             f"of {args.scan_list}; drop --samples (one task per scan)")
    probe = ["--hdf-root", scans[0]] if scans else []
    samples = len(scans) or args.samples or parse_config([*base, *args.nsgen, *probe],
                                                         env=env).samples
    nsgen_args = [*base, "--samples", str(samples), *args.nsgen]
    config_ = parse_config([*nsgen_args, *probe], env=env)
    if scans and config_.mode not in REAL_MODES:
        raise NsgenError(f"--scan-list is for the real-data modes ({', '.join(REAL_MODES)}); "
                         f"--mode {config_.mode} simulates its samples: drop --scan-list")
    if config_.mode in REAL_MODES and samples > 1 and not scans:
        raise NsgenError(f"{samples} tasks of --mode {config_.mode} would all read the same "
                         f"scan; give one scan per task with --scan-list FILE")
    root = Path(os.path.abspath(cwd / config_.root))
    exported = {k: v for k, v in env.items() if k.startswith("NSGEN_") and k != "NSGEN_CONFIG"}
    return Submission(samples=samples, start=config_.start, root=root, workdir=cwd,
                      nsgen_args=nsgen_args, sbatch_args=args.sbatch, scans=scans,
                      env=exported)


# --------------------------------------------------------------------------- submit

def _create_unique(directory: Path, stem: str, suffix: str) -> Path:
    """Create an empty ``directory/stem[-k]suffix`` that did not exist; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        path = directory / f"{stem}{'' if k == 0 else f'-{k}'}{suffix}"
        try:
            with open(path, "x"):
                return path
        except FileExistsError:
            continue
    raise NsgenError(f"too many scripts named {stem}* in {directory}; clean it up")


def task_states(job_id: str) -> dict[int, tuple[str, str]]:
    """Array task id -> (state, exit code) from ``scontrol show job`` (empty if unknown).

    Tasks that have not started yet share one record (``ArrayTaskId=2-3``) and are
    left out; finished tasks stay listed for ``MinJobAge`` (default 300 s).
    """
    r = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                       text=True)
    out: dict[int, tuple[str, str]] = {}
    for line in r.stdout.splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        if f.get("ArrayTaskId", "").isdigit():
            out[int(f["ArrayTaskId"])] = (f.get("JobState", "?"), f.get("ExitCode", "?"))
    return out


def _say_pending(job_id: str, reasons: dict[str, str], said: str) -> str:
    """Print the pending reasons when they change; return what was printed."""
    text = ", ".join(sorted(set(reasons.values())))
    if text and text != said:
        print(f"nsgen: job {job_id}: pending ({text})", file=sys.stderr, flush=True)
    return text or said


def wait_for_array(job_id: str, poll: float = 1.0, max_poll: float = 15.0,
                   partition: str | None = None) -> dict[int, tuple[str, str]]:
    """Poll until no task of ``job_id`` is queued or running; return the final states.

    Polls ``squeue`` every ``poll`` seconds, growing to ``max_poll`` (``sbatch --wait``
    sleeps 2, 8, then 32 s, which makes short jobs look slow).

    Pending reasons are printed as they change; a reason that never clears
    (:func:`hopeless`) cancels the job and raises.

    Raises
    ------
    NsgenError
        When ``squeue`` keeps failing (the controller is unreachable), or the job can
        never start.
    """
    failures = 0
    said = ""
    while True:
        time.sleep(poll)
        r = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True,
                           text=True)
        if r.returncode != 0 and "Invalid job id" not in r.stderr:
            failures += 1
            if failures >= 10:
                raise NsgenError(f"squeue keeps failing while waiting for job {job_id} "
                                 f"({r.stderr.strip()}); check the cluster, then squeue -j "
                                 f"{job_id}")
            continue
        failures = 0
        if not r.stdout.strip():  # nothing pending, running or completing
            return task_states(job_id)
        reasons = pending_reasons(job_id)
        said = _say_pending(job_id, reasons, said)
        stuck = sorted({why for why in reasons.values() if hopeless(why, partition)})
        if stuck:
            subprocess.run(["scancel", job_id], capture_output=True, check=False)
            raise NsgenError(f"job {job_id} can never start ({'; '.join(stuck)}): the request does "
                             f"not fit the partition; cancelled it; ask for fewer resources "
                             f"(--cpus-per-task, --mem-per-cpu, --time) or another --partition")
        poll = min(max_poll, poll * 1.5)


def submit(sub: Submission, *, dry_run: bool = False, wait: bool = False) -> int:
    """Write the batch script next to the dataset and submit it (or print it).

    Returns
    -------
    int
        0 when submitted (and, with ``wait``, every task completed), else 1.
    """
    stem = f"nsgen-{sub.stamp}"
    partition = partition_of(sub.sbatch_args)
    sub.directives = fitted_directives(partition_resources(partition), sub.sbatch_args)
    if dry_run:
        script = sub.slurm_dir / f"{stem}.sbatch"
        scan_file = sub.slurm_dir / f"{stem}.scans" if sub.scans else None
        sys.stdout.write(batch_script(sub, script, scan_file))
        print(f"nsgen: dry run: would write {script} and run: "
              f"{shlex.join(sub.sbatch_command(script))}", file=sys.stderr)
        return 0
    if shutil.which("sbatch") is None:
        raise NsgenError(SBATCH_MISSING)
    created = [d for d in (sub.root, sub.slurm_dir) if not d.exists()]
    script = _create_unique(sub.slurm_dir, stem, ".sbatch")
    scan_file = None
    if sub.scans:
        scan_file = script.with_suffix(".scans")
        scan_file.write_text("".join(f"{s}\n" for s in sub.scans), encoding="utf-8")
    script.write_text(batch_script(sub, script, scan_file), encoding="utf-8")
    script.chmod(0o755)
    cmd = sub.sbatch_command(script)
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    job_id = r.stdout.strip().split(";")[0]
    if r.returncode != 0 or not job_id.isdigit():
        script.unlink(missing_ok=True)
        if scan_file is not None:
            scan_file.unlink(missing_ok=True)
        for d in reversed(created):       # nothing left under the root
            try:
                d.rmdir()
            except OSError:
                pass
        err = (r.stderr + r.stdout).strip().splitlines()
        detail = err[-1] if err else f"exit {r.returncode}"
        raise NsgenError(f"sbatch rejected the job ({detail}); fix the sbatch options "
                         f"(command: {shlex.join(cmd)})")
    print(job_id, flush=True)
    logs = sub.slurm_dir / LOG_PATTERN.replace("%A", job_id)
    print(f"nsgen: submitted array job {job_id}: task i -> sample {sub.start} + i "
          f"({sub.start:04d}..{sub.start + sub.samples - 1:04d}) under {sub.root}; script "
          f"{script}; logs {logs.with_name(logs.name.replace('%a', '<task>'))}",
          file=sys.stderr, flush=True)
    if not wait:
        return 0
    states = wait_for_array(job_id, partition=partition)
    if not states:
        print(f"nsgen: error: array job {job_id} ended but SLURM no longer lists its tasks; "
              f"check sacct -j {job_id} and {logs}", file=sys.stderr)
        return 1
    bad = [f"task {t} {s} (exit {e})" for t, (s, e) in sorted(states.items())
           if (s, e) != ("COMPLETED", "0:0")]
    if not bad:
        print(f"nsgen: array job {job_id}: all {len(states)} tasks completed", file=sys.stderr)
        return 0
    print(f"nsgen: error: array job {job_id} failed: {', '.join(bad)}; see {logs}",
          file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``nsgen submit``: submit an array job, one sample per task."""
    args = parse_submit_args(sys.argv[1:] if argv is None else argv)
    if args.help:
        print(USAGE, end="")
        return 0
    return submit(plan_submission(args), dry_run=args.dry_run, wait=args.wait)


# --------------------------------------------------------------------------- masks

def _module_main(argv: Sequence[str]) -> int:
    """``python -m nsgen.slurm merge-masks ARCHIVE PART...`` | ``static-script``."""
    if argv[:1] == ["static-script"]:
        sys.stdout.write(static_script())
        return 0
    if argv[:1] == ["merge-masks"] and len(argv) >= 3:
        from nsgen.io.mask_archive import merge_archives
        keys = merge_archives(Path(argv[1]), [Path(p) for p in argv[2:]])
        print(f"nsgen: merged {len(argv) - 2} part(s) into {argv[1]}: {len(keys)} keys")
        return 0
    raise NsgenError("usage: python -m nsgen.slurm merge-masks ARCHIVE PART... | "
                     "static-script")


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(_module_main(sys.argv[1:]))
    except NsgenError as exc:
        print(f"nsgen: error: {exc}", file=sys.stderr)
        sys.exit(2)
