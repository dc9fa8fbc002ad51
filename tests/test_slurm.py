"""SLURM array jobs: submit path, batch scripts, and runs on a real SLURM cluster.

The cluster tests use a real single-node SLURM on localhost: the one ``sbatch`` reaches
(``.ci/run`` installs and starts one with ``scripts/slurm-local.sh up``), or else, as root
with SLURM installed, a private one the session fixture starts with ``scripts/slurm-local.sh
up`` and stops with ``down`` at the end (also when tests fail). Pytest never installs
packages: without SLURM the tests skip, naming the command that installs it; under CI
(``CI=true``) that is a failure instead, so CI cannot skip them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from helpers import HANG, all_files, nsgen, tree_digest, unavailable, wait_for
from nsgen.errors import NsgenError
from nsgen.slurm import (SBATCH_MISSING, parse_submit_args,
                         static_script)

REPO = Path(__file__).resolve().parents[1]
SLURM_LOCAL = REPO / "scripts" / "slurm-local.sh"
#: small synthetic config: 4 samples take a few seconds on 2 cores
SMALL = {"mode": "complex", "size": 32, "objects": 8, "shifts": 2, "flatsnum": 4}
#: one sample that runs ~10 s (its write stage alone several seconds): time to requeue it
SLOW = {"mode": "complex", "size": 256, "objects": 100, "shifts": 3, "flatsnum": 8}
SBATCH_SMALL = ["--cpus-per-task=1", "--mem-per-cpu=500M", "--job-name=nsgen-test"]


@pytest.fixture(scope="module")
def script_env(tmp_path_factory) -> dict[str, str]:
    """Environment for running the batch scripts by hand: their ``nsgen`` is this tree's
    (``python -m nsgen`` of the running interpreter, with the inherited PYTHONPATH)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "nsgen"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m nsgen "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "NSGEN_NO_PROGRESS": "true"}


def write_ini(path: Path, root: Path, **options) -> Path:
    """An nsgen INI file with ``root`` and ``options``."""
    lines = ["[nsgen]", f"root = {root}"] + [f"{k} = {v}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def sample_digest(root: Path, sample: int) -> dict[str, str]:
    """md5 of every .tif of one sample directory."""
    return tree_digest(root / f"{sample:04d}")


def sample_files(root: Path, sample: int) -> list[str]:
    """Every file of one sample directory (manifest, preview and TIFFs)."""
    return all_files(root / f"{sample:04d}")


@pytest.fixture(scope="module")
def local_small(tmp_path_factory) -> Path:
    """The 4 samples of SMALL generated locally by one plain ``nsgen`` run."""
    d = tmp_path_factory.mktemp("local")
    ini = write_ini(d / "small.ini", d / "data", **SMALL)
    nsgen("--config", str(ini), "--samples", "4")
    return d / "data"


# --------------------------------------------------------------------------- no cluster

def test_scripts_nsgen_sbatch_is_the_template():
    """scripts/nsgen.sbatch is the submit template with nothing filled in (no drift)."""
    assert (REPO / "scripts" / "nsgen.sbatch").read_text() == static_script()


def test_shell_scripts_parse():
    for name in ("nsgen.sbatch", "mask.sbatch", "slurm-local.sh"):
        r = subprocess.run(["bash", "-n", str(REPO / "scripts" / name)], capture_output=True,
                           text=True)
        assert r.returncode == 0, (name, r.stderr)


def test_dry_run_prints_the_script_and_writes_nothing(tmp_path):
    ini = write_ini(tmp_path / "small.ini", "data", **SMALL)
    r = nsgen("submit", "--config", "small.ini", "--samples", "4", "--dry-run",
              "--partition=debug", "-c", "1", "--", "--seed", "3", cwd=tmp_path,
              env={"NSGEN_OBJECTS": "9"})
    text = r.stdout
    root = tmp_path / "data"
    assert text.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-3\n" in text
    assert f"#SBATCH --output={root}/.slurm/nsgen-%A_%a.log\n" in text
    assert "#SBATCH --partition=debug -c 1\n" in text  # sbatch options, in order, last
    assert f"cd {tmp_path}  " in text
    assert "export NSGEN_OBJECTS=9\n" in text
    assert f"NSGEN=({sys.executable} -m nsgen)\n" in text
    assert f'set -- --config {ini} --samples 4 --seed 3 "$@"\n' in text
    assert 'exec "${NSGEN[@]}" "$@" "${scan[@]}" --array-task "$task"' in text
    assert re.search(r"would write \S+/data/\.slurm/nsgen-\d{8}-\d{6}\.sbatch and run: "
                     r"sbatch --parsable --array=0-3 --partition=debug -c 1 ", r.stderr)
    assert sorted(os.listdir(tmp_path)) == ["small.ini"]


def test_arguments_split_into_submit_sbatch_and_nsgen():
    a = parse_submit_args(["--config=x.ini", "-c", "2", "--samples", "5", "-p", "short",
                           "--wait", "--array=0-4%2", "--", "-c", "y.ini", "--seed", "1"])
    assert (a.config, a.samples, a.wait, a.dry_run) == ("x.ini", 5, True, False)
    assert a.sbatch == ["-c", "2", "-p", "short", "--array=0-4%2"]
    assert a.nsgen == ["-c", "y.ini", "--seed", "1"]
    with pytest.raises(NsgenError, match="--config needs a value"):
        parse_submit_args(["--config"])


def test_own_array_replaces_the_default_one(tmp_path):
    """--array=... of the user (throttle, rerun some tasks) is the one submitted."""
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    r = nsgen("submit", "--config", "small.ini", "--samples", "4", "-a", "1,3%1", "--dry-run",
              cwd=tmp_path)
    directives = re.findall(r"^#SBATCH (.*)$", r.stdout, re.M)
    assert directives[-1] == "-a 1,3%1" and "--array=0-3" in directives  # the later wins
    assert re.search(r"run: sbatch --parsable -a 1,3%1 \S+\.sbatch$", r.stderr.strip())


def test_samples_default_to_the_config(tmp_path):
    write_ini(tmp_path / "c.ini", "data", samples=3, start=5, **SMALL)
    r = nsgen("submit", "--config", "c.ini", "--dry-run", cwd=tmp_path)
    assert "#SBATCH --array=0-2\n" in r.stdout and "--samples 3" in r.stdout
    assert "Array task i generates sample 5 + i (0005..0007)" in r.stdout


def test_dry_run_script_maps_task_to_sample_without_slurm(tmp_path, local_small):
    """The submitted script itself, run by bash as task 2 of 4: sample 0002, same bytes."""
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    r = nsgen("submit", "--config", "small.ini", "--samples", "4", "--dry-run",
              cwd=tmp_path)
    (tmp_path / "task.sbatch").write_text(r.stdout)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_JOB_ID": "77",
           "NSGEN_NO_PROGRESS": "true"}
    t = subprocess.run(["bash", "task.sbatch"], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert t.returncode == 0, t.stderr
    assert "nsgen.sbatch: task 77_2 " in t.stdout
    assert f"nsgen: array task 2 -> sample 0002 (start 0 + task 2) under " \
           f"{tmp_path / 'data'}" in t.stderr
    assert sorted(os.listdir(tmp_path / "data")) == ["0002"]
    assert sample_files(tmp_path / "data", 2) == sample_files(local_small, 2)
    assert sample_digest(tmp_path / "data", 2) == sample_digest(local_small, 2)


def test_static_script_maps_start_plus_task(tmp_path, local_small, script_env):
    """scripts/nsgen.sbatch as task 1 of a run starting at 2 makes sample 0003."""
    ini = write_ini(tmp_path / "s.ini", tmp_path / "data", start=2, **SMALL)
    env = {**script_env, "SLURM_ARRAY_TASK_ID": "1"}
    r = subprocess.run(["bash", str(REPO / "scripts" / "nsgen.sbatch"), "--config", str(ini),
                        "--samples", "2"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "array task 1 -> sample 0003 (start 2 + task 1)" in r.stderr
    assert sample_digest(tmp_path / "data", 3) == sample_digest(local_small, 3)
    again = subprocess.run(["bash", str(REPO / "scripts" / "nsgen.sbatch"), "--config",
                            str(ini), "--samples", "2"], env=env, capture_output=True,
                           text=True)
    assert "array task 1 -> sample 0003 (start 2 + task 1) under" in again.stderr
    assert "finished earlier, nothing to do" in again.stderr


def test_static_script_picks_the_tasks_scan(tmp_path, script_env):
    scans = tmp_path / "scans.txt"
    scans.write_text("# scans of the beamtime\n/data/a 1.nxs\n\n  /data/b.nxs  \n")
    env = {**script_env, "SLURM_ARRAY_TASK_ID": "1"}
    cmd = ["bash", str(REPO / "scripts" / "nsgen.sbatch"), "--scan-list", str(scans),
           "-m", "raw", "-r", str(tmp_path / "out"), "--samples", "2"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert f"array task 1 -> scan /data/b.nxs (entry 2 of {scans})" in r.stdout
    assert "--hdf-root /data/b.nxs --array-task 1" in r.stdout
    assert "/data/b.nxs" in r.stderr and r.returncode == 2  # nsgen: no such scan
    r = subprocess.run(cmd, env={**env, "SLURM_ARRAY_TASK_ID": "2"}, capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert f"array task 2 has no scan: {scans} lists fewer than 3 scans" in r.stderr


def test_scan_list_real_mode_task_makes_its_scan_sample(tmp_path, script_env):
    """Real data: task 1 of a scan list is `nsgen -m raw --hdf-root <scan 1> --start 1`."""
    for name, seed in (("a.nxs", 1), ("b.nxs", 2)):
        nsgen("make-scan", str(tmp_path / name), "--angles", "91", "--rows", "8",
              "--columns", "64", "--seed", str(seed))
    (tmp_path / "scans.txt").write_text("a.nxs\nb.nxs\n")
    raw = ["-m", "raw", "--shifts", "1"]
    nsgen(*raw, "--hdf-root", "b.nxs", "--start", "1", "-r", "local", cwd=tmp_path)
    env = {**script_env, "SLURM_ARRAY_TASK_ID": "1"}
    r = subprocess.run(["bash", str(REPO / "scripts" / "nsgen.sbatch"), "--scan-list",
                        "scans.txt", *raw, "-r", "array", "--samples", "2"], cwd=tmp_path,
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "array task 1 -> scan b.nxs (entry 2 of scans.txt)" in r.stdout
    assert "array task 1 -> sample 0001 (start 0 + task 1)" in r.stderr
    assert sorted(os.listdir(tmp_path / "array")) == ["0001"]
    assert sample_files(tmp_path / "array", 1) == sample_files(tmp_path / "local", 1)
    assert sample_digest(tmp_path / "array", 1) == sample_digest(tmp_path / "local", 1)


def test_script_outside_an_array_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    r = subprocess.run(["bash", str(REPO / "scripts" / "nsgen.sbatch")], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "SLURM_ARRAY_TASK_ID is not set" in r.stderr


def test_array_task_outside_the_run_is_an_error(tmp_path):
    r = nsgen("-m", "simple", "-r", str(tmp_path / "d"), "--samples", "3", "--array-task", "3",
              check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == ("nsgen: error: --array-task 3 is outside the run's 3 samples "
                                "(tasks 0..2); submit --array=0-2 or raise --samples")
    assert not (tmp_path / "d").exists()


def test_submit_without_sbatch_is_one_clear_line(tmp_path):
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    r = nsgen("submit", "--config", "small.ini", cwd=tmp_path, check=False,
              env={"PATH": str(tmp_path / "nothing")})
    assert r.returncode == 2
    assert r.stderr == f"nsgen: error: {SBATCH_MISSING}\n"
    assert sorted(os.listdir(tmp_path)) == ["small.ini"]


@pytest.mark.parametrize("args, message", [
    (["--samples", "0"], "--samples must be a positive integer, got 0"),
    (["--", "--array-task", "1"], "--array-task is set by the batch script for each task"),
    (["--scan-list", "scans.txt"], "--scan-list is for the real-data modes"),
    (["--scan-list", "scans.txt", "--samples", "3", "--", "-m", "raw"],
     "--samples 3 does not match the 2 scans of scans.txt"),
    (["--samples", "2", "--", "-m", "raw", "--hdf-root", "x.nxs"],
     "2 tasks of --mode raw would all read the same scan; give one scan per task with "
     "--scan-list FILE"),
    (["--scan-list", "missing.txt", "--", "-m", "raw"], "missing.txt (FileNotFoundError); pass a text file"),
    (["--", "--size", "2"], "--size must be an integer in 8..4096"),
])
def test_submit_rejects_bad_input_before_writing(tmp_path, args, message):
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    (tmp_path / "scans.txt").write_text("a.nxs\nb.nxs\n")
    r = nsgen("submit", "--config", "small.ini", "--dry-run", *args, cwd=tmp_path,
              check=False)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_scan_list_dry_run(tmp_path):
    (tmp_path / "scans.txt").write_text("a.nxs\n# skipped\n/abs/b.nxs\n")
    r = nsgen("submit", "--scan-list", "scans.txt", "--dry-run", "--", "-m", "raw", "-r",
              "out", cwd=tmp_path)
    assert "#SBATCH --array=0-1\n" in r.stdout
    assert re.search(r"set -- --scan-list \S+/out/\.slurm/nsgen-[0-9-]+\.scans --samples 2 "
                     r"-m raw -r out", r.stdout)
    assert "task i reads scan i of" in r.stdout


def test_mask_script_merge_role(tmp_path):
    scans = tmp_path / "scans.txt"
    scans.write_text("/d/x.nxs\n/d/y.nxs\n")
    parts = tmp_path / "masks.parts"
    parts.mkdir()
    np.savez(parts / "task-0000.npz", mx=np.zeros(2, np.uint8))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = ["bash", str(REPO / "scripts" / "mask.sbatch"), "--merge", str(scans),
           str(tmp_path / "masks.npz")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "task-0001.npz is missing; rerun its array task" in r.stderr
    assert not (tmp_path / "masks.npz").exists()
    np.savez(parts / "task-0001.npz", my=np.ones(2, np.uint8))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "masks.npz") as z:
        assert sorted(z.files) == ["mx", "my"]
    assert not parts.exists()
    r = subprocess.run(["bash", str(REPO / "scripts" / "mask.sbatch"), str(scans),
                        str(tmp_path / "m.npz")], env={**env, "SLURM_ARRAY_TASK_ID": "2"},
                       capture_output=True, text=True)
    assert r.returncode == 2 and "array task 2 has no scan" in r.stderr


def test_mask_script_tasks_then_merge_equal_direct_masks(tmp_path):
    """mask.sbatch as tasks 0 and 1, then --merge: the archive of two direct nsgen mask runs."""
    for name, seed in (("a.nxs", 1), ("b.nxs", 2)):
        nsgen("make-scan", str(tmp_path / name), "--angles", "181", "--rows", "8",
              "--columns", "64", "--seed", str(seed))
    (tmp_path / "scans.txt").write_text("a.nxs\nb.nxs\n")
    opts = ["--median-size", "40", "--min-stripe-length", "50", "--min-stripe-depth", "3",
            "--min-stripe-width", "5"]
    for scan in ("a.nxs", "b.nxs"):
        nsgen("mask", "--h5", scan, "-a", "direct.npz", *opts, cwd=tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = str(REPO / "scripts" / "mask.sbatch")
    for task in ("1", "0", "1"):  # the second run of task 1 finds its part and does nothing
        r = subprocess.run(["bash", script, "scans.txt", "masks.npz", *opts], cwd=tmp_path,
                           env={**env, "SLURM_ARRAY_TASK_ID": task}, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    assert "task 1 finished earlier, nothing to do" in r.stdout
    assert sorted(os.listdir(tmp_path / "masks.parts")) == ["task-0000.npz", "task-0001.npz"]
    r = subprocess.run(["bash", script, "--merge", "scans.txt", "masks.npz"], cwd=tmp_path,
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "direct.npz") as d, np.load(tmp_path / "masks.npz") as m:
        assert sorted(d.files) == sorted(m.files) == ["ma", "mb"]
        for key in d.files:
            assert np.array_equal(d[key], m[key])
    assert not (tmp_path / "masks.parts").exists()


# --------------------------------------------------------------------------- cluster

def _controller_up() -> bool:
    """sbatch/scontrol exist, their slurm.conf exists and the controller answers."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    if not Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf").is_file():
        return False  # scontrol would retry for 60 s
    try:
        r = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and "is UP" in r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def slurm(request):
    """A usable SLURM controller for the session.

    The cluster ``sbatch`` already reaches (a real one, or ``SLURM_CONF`` of a cluster
    started by hand) is used and left alone. Otherwise, as root, a private
    ``scripts/slurm-local.sh`` cluster is started in a new ``/tmp/nsgen-slurm-*``
    directory on free ports (concurrent sessions do not meet) and stopped at the end;
    the directory (daemon logs) is removed unless a test failed.
    """
    if _controller_up():
        yield None
        return
    if not all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        unavailable(f"SLURM is not installed; install and start a local cluster with `sudo "
                    f"{SLURM_LOCAL} up` and then `eval \"$({SLURM_LOCAL} env)\"`")
    if os.geteuid() != 0:
        unavailable(f"sbatch reaches no SLURM controller and starting one needs root: run "
                    f"`sudo {SLURM_LOCAL} up` and then `eval \"$({SLURM_LOCAL} env)\"`")
    # munged wants every directory above its socket world-executable (pytest's are 0700)
    root = Path(tempfile.mkdtemp(prefix="nsgen-slurm-"))
    root.chmod(0o755)
    settings = {"SLURM_LOCAL_ROOT": str(root), "SLURM_CONF": str(root / "etc" / "slurm.conf"),
                "SLURM_LOCAL_CTLD_PORT": str(_free_port()),
                "SLURM_LOCAL_SLURMD_PORT": str(_free_port()), "SLURM_LOCAL_NO_INSTALL": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in settings.items():
            mp.setenv(key, value)
        t0 = time.monotonic()
        up = subprocess.run(["bash", str(SLURM_LOCAL), "up"], capture_output=True, text=True)
        try:
            assert up.returncode == 0, f"scripts/slurm-local.sh up failed:\n{up.stderr}"
            print(f"\n[slurm-local up in {time.monotonic() - t0:.1f} s, {root}]",
                  file=sys.stderr)
            yield root
        finally:
            down = subprocess.run(["bash", str(SLURM_LOCAL), "down"], capture_output=True,
                                  text=True)
            assert down.returncode == 0, f"scripts/slurm-local.sh down failed:\n{down.stderr}"
            if request.session.testsfailed:
                print(f"\n[slurm-local logs kept in {root / 'log'}]", file=sys.stderr)
            else:
                shutil.rmtree(root, ignore_errors=True)


def job_records(job: str) -> dict[int, dict[str, str]]:
    """Array task id -> fields of ``scontrol show job -o`` (final states included)."""
    r = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True,
                       text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        if f.get("ArrayTaskId", "").isdigit():
            out[int(f["ArrayTaskId"])] = f
    return out


def wait_gone(job: str, timeout: float = HANG) -> None:
    """Wait until no task of ``job`` is pending or running (``timeout`` only catches hangs)."""
    wait_for(lambda: not subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"],
                                        capture_output=True, text=True).stdout.strip(),
             f"job {job} left the queue", timeout=timeout)


def _stepd_alive() -> bool:
    """Whether a ``slurmstepd`` (the daemon that runs and cleans up one job) still runs:
    the test cluster runs one job at a time, so any of them is the job's."""
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "slurmstepd" or \
                " ".join(p.info["cmdline"] or []).startswith("slurmstepd"):
            return True
    return False


def submit(*args: str, cwd: Path, check: bool = True) -> tuple[str, subprocess.CompletedProcess]:
    r = nsgen("submit", *args, cwd=cwd, check=check, timeout=300)
    job = r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
    assert job.isdigit(), r.stdout + r.stderr
    return job, r


def test_array_of_4_on_slurm_is_byte_identical_to_a_local_run(slurm, tmp_path, local_small):
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    job, r = submit("--config", "small.ini", "--samples", "4", *SBATCH_SMALL, "--wait",
                    cwd=tmp_path)
    root = tmp_path / "data"
    assert f"nsgen: array job {job}: all 4 tasks completed" in r.stderr
    assert sorted(os.listdir(root)) == [".slurm", "0000", "0001", "0002", "0003"]
    for s in range(4):
        assert sample_files(root, s) == sample_files(local_small, s)
        assert sample_digest(root, s) == sample_digest(local_small, s)
        log = (root / ".slurm" / f"nsgen-{job}_{s}.log").read_text()
        assert f"nsgen.sbatch: task {job}_{s} " in log and ", cpus 1, " in log
        assert f"nsgen: array task {s} -> sample {s:04d} (start 0 + task {s})" in log
    states = job_records(job)
    assert sorted(states) == [0, 1, 2, 3]
    assert {(f["JobState"], f["ExitCode"]) for f in states.values()} == {("COMPLETED", "0:0")}
    scripts = sorted((root / ".slurm").glob("nsgen-*.sbatch"))
    assert len(scripts) == 1 and "#SBATCH --array=0-3" in scripts[0].read_text()


def test_failing_task_is_reported_failed_with_its_error_in_its_log(slurm, tmp_path):
    """An array larger than the run: task 3 fails; SLURM and nsgen submit say so."""
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    job, r = submit("--config", "small.ini", "--samples", "3", "--array=0-3", *SBATCH_SMALL,
                    "--wait", cwd=tmp_path, check=False)
    assert r.returncode == 1
    assert f"nsgen: error: array job {job} failed: task 3 FAILED (exit 2:0)" in r.stderr
    states = job_records(job)
    assert {t: f["JobState"] for t, f in states.items()} == \
        {0: "COMPLETED", 1: "COMPLETED", 2: "COMPLETED", 3: "FAILED"}
    assert states[3]["ExitCode"] == "2:0"
    log = (tmp_path / "data" / ".slurm" / f"nsgen-{job}_3.log").read_text()
    assert "nsgen: error: --array-task 3 is outside the run's 3 samples (tasks 0..2)" in log
    assert sorted(os.listdir(tmp_path / "data")) == [".slurm", "0000", "0001", "0002"]


def test_requeued_task_completes_its_sample(slurm, tmp_path):
    """scontrol requeue while the task writes its TIFFs: SIGTERM, rerun, same bytes."""
    write_ini(tmp_path / "slow.ini", "data", **SLOW)
    job, _ = submit("--config", "slow.ini", "--samples", "1", "--cpus-per-task=2",
                    "--job-name=nsgen-requeue", cwd=tmp_path)
    sample = tmp_path / "data" / "0000"
    log = tmp_path / "data" / ".slurm" / f"nsgen-{job}_0.log"
    wait_for(lambda: any(sample.rglob("*.tif")), f"task {job}_0 wrote a TIFF")
    assert not (sample / "manifest.json").exists()
    task = f"{job}_0"
    subprocess.run(["scontrol", "requeue", task], check=True)
    # a requeued job waits ~2 min (BeginTime) before it may start again: let it start now
    wait_for(lambda: subprocess.run(["squeue", "-h", "-j", task, "-o", "%T"],
                                    capture_output=True, text=True).stdout.strip()
             == "PENDING", "the requeued task is PENDING")
    # slurmd refuses to relaunch a job id it killed moments ago ("Job N already killed,
    # do not launch batch job" -> FAILED): wait until the killed task's step daemon is gone
    wait_for(lambda: not _stepd_alive(), f"the step daemon of job {job} exited")
    subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now"], check=True)
    wait_gone(job)
    record = job_records(job)[0]
    assert (record["JobState"], record["Restarts"]) == ("COMPLETED", "1")
    log = log.read_text()
    assert "DUE TO JOB REQUEUE" in log
    assert log.count("nsgen: array task 0 -> sample 0000 (start 0 + task 0)") == 2
    assert "restart 1" in log and "finished earlier" not in log
    local = tmp_path / "local"
    nsgen("--config", str(tmp_path / "slow.ini"), "-r", str(local))
    assert sample_files(tmp_path / "data", 0) == sample_files(local, 0)
    assert sample_digest(tmp_path / "data", 0) == sample_digest(local, 0)


def test_submit_with_defaults_completes_on_the_cluster(slurm, tmp_path, local_small):
    """No resource options: the defaults are what the cluster's nodes can give."""
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    job, r = submit("--config", "small.ini", "--samples", "1", "--wait", cwd=tmp_path)
    assert f"nsgen: array job {job}: all 1 tasks completed" in r.stderr
    assert sample_digest(tmp_path / "data", 0) == sample_digest(local_small, 0)


def test_impossible_request_stops_with_its_reason_and_is_cancelled(slurm, tmp_path):
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    job, r = submit("--config", "small.ini", "--samples", "1", "--cpus-per-task=4096",
                    "--wait", cwd=tmp_path, check=False)
    assert r.returncode == 2
    assert f"nsgen: job {job}: pending (" in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"nsgen: error: job {job} can never start (") and "cancelled" in last
    wait_gone(job, timeout=60)


def test_rejected_submission_leaves_nothing_under_the_root(slurm, tmp_path):
    write_ini(tmp_path / "small.ini", "data", **SMALL)
    r = nsgen("submit", "--config", "small.ini", "--samples", "1", "--nodelist=nosuchnode",
              cwd=tmp_path, check=False, timeout=120)
    assert r.returncode == 2 and "sbatch rejected the job" in r.stderr
    assert not (tmp_path / "data").exists()
