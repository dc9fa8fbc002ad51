"""Option parsing: precedence, validation, config files, one-line errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from nsgen.config import Config, parse_bytes, parse_config
from nsgen.errors import NsgenError


def test_defaults_follow_the_seed():
    c = parse_config([], env={})
    assert (c.mode, str(c.root), c.samples, c.start, c.size, c.objects, c.shifts, c.shiftstep,
            c.flatsnum, c.I0, c.frame_angles, c.patch_size, c.seed) == \
        ("complex", "data", 1, 0, 256, 300, 5, 2, 20, 40000.0, 900, (1801, 256), 0)
    assert c.object_type == "sphere" and c.chunk_size is None and c.workers is None


def test_short_and_long_names():
    c = parse_config(["-m", "simple", "-r", "out", "-S", "3", "-N", "64", "-o", "10", "-s", "3",
                      "-p", "4", "-f", "7", "-I", "1000", "-v"], env={})
    assert (c.mode, str(c.root), c.samples, c.size, c.objects, c.shifts, c.shiftstep,
            c.flatsnum, c.I0, c.verbose) == ("simple", "out", 3, 64, 10, 3, 4, 7, 1000.0, True)
    c = parse_config(["--hdf-file", "a.nxs", "-m", "raw", "-C", "17"], env={})
    assert c.hdf_root == (Path("a.nxs").absolute(),) and c.chunk_size == 17


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text("[nsgen]\nsize = 64\nobjects = 5\nshifts = 2\n")
    c = parse_config(["--config", str(ini), "-N", "40"], env={"NSGEN_SIZE": "48",
                                                              "NSGEN_OBJECTS": "6"})
    assert (c.size, c.objects, c.shifts, c.flatsnum) == (40, 6, 2, 20)


def test_config_file_lists_and_flags(tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text("mode = raw\nhdf-root = [1000.nxs, 1001.nxs]\npatch-size = [100, 50]\n"
                   "verbose = true\n# comment\n; comment\n")
    c = parse_config(["--config", str(ini)], env={})
    assert c.hdf_root == (Path("1000.nxs").absolute(), Path("1001.nxs").absolute())
    assert c.patch_size == (100, 50) and c.verbose


def test_shipped_ini_is_the_default_complex_job():
    ini = Path(__file__).parents[1] / "nsgen.ini"
    c = parse_config(["--config", str(ini)], env={})
    assert c.mode == "complex" and c.samples == 1 and c.size == 256
    assert c.config_file == ini


@pytest.mark.parametrize("argv,message", [
    (["-m", "foo"], "--mode must be one of simple, complex, raw, paired, dynamic, patch"),
    (["-N", "4"], "--size must be an integer in 8..4096, got 4"),
    (["-o", "0"], "--objects must be an integer >= 1, got 0"),
    (["-s", "0"], "--shifts must be an integer in 1..100, got 0"),
    (["--start", "-1"], "--start must be an integer in 0..9999, got -1"),
    (["-I", "0"], "--I0 must be a positive finite photon count, got 0.0"),
    (["-f", "0"], "--flatsnum must be an integer >= 1, got 0"),
    (["--object-type", "cube"], "--object-type must be one of sphere, ellipsoid"),
    (["--workers", "0"], "--workers must be an integer >= 1 or 'auto', got '0'"),
    (["--memory-limit", "lots"], "--memory-limit must be a size such as 4GB"),
    (["-m", "raw"], "--mode raw reads a real scan: give it with --hdf-root"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--detector", "vo"], "unknown --detector 'vo'; choose one of: robust, larix"),
    (["--defect-density", "-1"], "--defect-density must be a number of defective pixels per "
                                 "detector row in 0..362"),
    (["-N", "16", "--defect-density", "23"], "in 0..22 (the detector columns at --size 16), "
                                             "got 23.0"),
    (["--defect-density", "nan"], "--defect-density must be a number"),
    (["-N", "abc"], "argument --size/-N: invalid int value: 'abc'"),
])
def test_bad_values_are_one_line_errors(argv, message):
    with pytest.raises(NsgenError) as info:
        parse_config(argv, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)



def test_every_bad_value_is_listed_in_the_one_line(tmp_path):
    """Issue 17: validate all options together and report every problem in one message
    (the first one alone was reported: fixing it only revealed the next)."""
    with pytest.raises(NsgenError) as info:
        parse_config(["-m", "paired", "--hdf-root", "s.nxs", "-r", str(tmp_path / "o"),
                      "--detector", "foo", "--bounds-percentile", "60", "--workers", "0",
                      "-C", "x", "--memory-limit", "lots", "--format", "bad"], env={})
    message = str(info.value)
    assert "\n" not in message
    for part in ("--workers must be an integer >= 1 or 'auto', got '0'",
                 "--chunk-size must be an integer >= 1 or 'auto', got 'x'",
                 "--memory-limit must be a size such as 4GB", "--bounds-percentile must be",
                 "unknown --detector 'foo'", "--format must be one of tiff, hdf5, zarr"):
        assert message.count(part) == 1, part
    assert not (tmp_path / "o").exists()

def test_config_file_errors(tmp_path):
    with pytest.raises(NsgenError, match="does not exist"):
        parse_config(["--config", str(tmp_path / "missing.ini")], env={})
    bad = tmp_path / "bad.ini"
    bad.write_text("size = 64\nthis is not a setting\n")
    with pytest.raises(NsgenError, match="line 2 is not 'key = value'"):
        parse_config(["--config", str(bad)], env={})
    bad.write_text("size = 64\nobject = 5\n")
    with pytest.raises(NsgenError, match="line 2: unknown key 'object'"):
        parse_config(["--config", str(bad)], env={})


def test_unwritable_root(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NsgenError, match="is not writable"):
        parse_config(["-r", str(f / "sub")], env={})


def test_parse_bytes():
    assert parse_bytes("4GB") == 4 * 10**9
    assert parse_bytes("1.5GiB") == int(1.5 * 2**30)
    assert parse_bytes("100") == 100
    with pytest.raises(ValueError):
        parse_bytes("4 parsecs")


def test_config_is_immutable():
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.size = 3  # type: ignore[misc]


def test_cli_error_is_one_line_exit_2_and_writes_nothing(tmp_path):
    root = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "nsgen", "-r", str(root), "-N", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "nsgen: error: --size must be an integer in 8..4096, got 2"
    assert not root.exists()


@pytest.mark.parametrize("root, want", [("/proc/nsgen", "not writable"),
                                        ("/sys/nsgen", "not writable"),
                                        ("FILE", "is a file"), ("FILE/sub", "below the file")])
def test_unwritable_roots_are_one_line(tmp_path, root, want):
    """Also where os.access says yes (root on /proc, /sys): a probe file is tried."""
    from helpers import nsgen
    (tmp_path / "f").write_text("x")
    root = root.replace("FILE", str(tmp_path / "f"))
    r = nsgen("-m", "simple", "-N", "16", "-r", root, check=False)
    assert r.returncode == 2 and want in r.stderr and r.stderr.count("\n") == 1
