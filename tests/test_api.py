"""The in-process API: arrays equal to the command's TIFFs, Config validation,
generate() from a thread, logging, exports."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile
from helpers import nsgen as run_cli
from helpers import tree_digest

import nsgen
from nsgen.api import iter_sample, make_config, sample_scale, simulate_sample

SMALL = {"size": 24, "objects": 10, "shifts": 3, "flatsnum": 4, "seed": 5}
FLAGS = ["-N", "24", "-o", "10", "-s", "3", "-f", "4", "--seed", "5"]


@pytest.fixture(scope="module", params=["simple", "complex"])
def written(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "data"
    run_cli("-m", request.param, *FLAGS, "-r", str(root), "--start", "2", "--no-preview",
            "--workers", "1")
    return request.param, root


def _folder(root, sample, name):
    d = root / f"{sample:04d}" / name
    return np.stack([tifffile.imread(p) for p in sorted(d.glob("*.tif"))])


def test_simulate_sample_quantises_to_the_tiff_values(written):
    mode, root = written
    s = simulate_sample(mode=mode, sample=2, **SMALL)
    assert s.clean.dtype == np.float32 and s.clean.shape == s.scale.geometry.shape
    names = ["stripe"] if mode == "simple" else ["shift00", "shift01", "shift02"]
    assert sorted(s.inputs) == names
    np.testing.assert_array_equal(s.quantised("clean"), _folder(root, 2, "clean"))
    for name in names:
        assert s.inputs[name].dtype == np.float32
        np.testing.assert_array_equal(s.quantised(name), _folder(root, 2, name))
    manifest = json.loads((root / "0002" / "manifest.json").read_text())
    assert s.metadata["objects"] == manifest["objects"]
    assert list(s.metadata["geometry"]) == manifest["geometry"]
    if mode == "complex":   # the stored scale is the manifest's
        assert s.metadata["bounds"] == manifest["files"][0]["bounds"]
        assert s.metadata["detector"] == manifest["detector"]
    else:
        assert s.metadata["projection_bounds"] == manifest["files"][0]["bounds"]


@pytest.mark.parametrize("mode", ["simple", "complex"])
def test_row_range_and_chunks_equal_the_whole_sample(mode):
    whole = simulate_sample(mode=mode, **SMALL)
    part = simulate_sample(mode=mode, rows=(5, 9), **SMALL)
    assert part.rows == range(5, 9) and part.scale.bounds == whole.scale.bounds
    np.testing.assert_array_equal(part.clean, whole.clean[5:9])
    for name, vol in whole.inputs.items():
        np.testing.assert_array_equal(part.inputs[name], vol[5:9])
    chunks = list(iter_sample(mode=mode, chunk_rows=7, **SMALL))
    assert [c.rows.start for c in chunks] == [0, 7, 14, 21]
    for name, vol in whole.inputs.items():
        np.testing.assert_array_equal(np.concatenate([c.inputs[name] for c in chunks]), vol)
    assert sample_scale(mode=mode, chunk_rows=5, **SMALL).bounds == whole.scale.bounds


def test_deterministic_by_seed_and_sample():
    a = simulate_sample(mode="complex", sample=3, **SMALL)
    b = simulate_sample(make_config(mode="complex", **SMALL), 3)
    c = simulate_sample(mode="complex", sample=4, **SMALL)
    np.testing.assert_array_equal(a.inputs["shift01"], b.inputs["shift01"])
    assert not np.array_equal(a.clean, c.clean)


def test_bad_arguments_are_nsgen_errors_with_the_cli_message():
    with pytest.raises(nsgen.NsgenError, match=r"^--size must be an integer in 8\.\.4096, "
                                               r"got 4$"):
        nsgen.Config(size=4)
    with pytest.raises(ValueError, match="--shifts must be an integer in 1..100, got 0"):
        simulate_sample(mode="complex", shifts=0)
    with pytest.raises(nsgen.NsgenError, match="only the synthetic modes"):
        simulate_sample(mode="raw", hdf_root=("x.nxs",))
    with pytest.raises(nsgen.NsgenError, match=r"rows must be a range .* <= 24, got \(3, 30\)"):
        simulate_sample(mode="simple", rows=(3, 30), **SMALL)
    with pytest.raises(nsgen.NsgenError, match="unknown option sizes"):
        simulate_sample(sizes=3)
    with pytest.raises(nsgen.NsgenError, match="sample must be an integer in 0..9999"):
        simulate_sample(sample=-1)


def test_config_validates_like_the_command_line(tmp_path):
    r = run_cli("-r", str(tmp_path / "d"), "--mode", "paired", check=False)
    with pytest.raises(nsgen.NsgenError) as exc:
        nsgen.Config(mode="paired", root=tmp_path / "d")
    assert r.stderr.strip() == f"nsgen: error: {exc.value}"
    cfg = nsgen.Config(root=str(tmp_path), hdf_root="a.nxs", mode="raw")
    assert cfg.root == tmp_path and cfg.hdf_root == (tmp_path.__class__("a.nxs").absolute(),)


def test_generate_from_a_thread_logs_and_equals_the_command(written, tmp_path, caplog):
    mode, reference = written
    with caplog.at_level(logging.INFO, logger="nsgen"), \
            ThreadPoolExecutor(1) as pool:   # a thread that is not the main thread
        done = pool.submit(nsgen.generate, mode=mode, root=tmp_path / "data", start=2,
                           preview=False, workers=1, progress=False, **SMALL).result()
    assert done == [2]
    assert tree_digest(tmp_path / "data") == tree_digest(reference)
    assert any(r.name == "nsgen" and "[0002] done:" in r.getMessage() for r in caplog.records)


def test_cli_keeps_its_one_line_messages(tmp_path):
    r = run_cli("-m", "simple", "-N", "16", "-o", "3", "-r", str(tmp_path / "d"),
                "--no-preview", "-v")
    lines = r.stderr.strip().splitlines()
    assert lines and all(line.startswith("nsgen: ") for line in lines)
    assert any("[0000] done:" in line for line in lines)
    quiet = run_cli("-m", "simple", "-N", "16", "-o", "3", "-r", str(tmp_path / "e"),
                    "--no-preview")
    # without -v only the summary line (the interpreter may add its own shutdown warnings)
    ours = [line for line in quiet.stderr.splitlines() if line.startswith("nsgen:")]
    assert len(ours) == 1 and ours[0].startswith("nsgen: made 1 sample (0000)")


def test_api_md_examples_run(tmp_path, monkeypatch):
    """Every example of docs/api.md, in an empty directory."""
    import doctest
    from pathlib import Path
    monkeypatch.chdir(tmp_path)
    doc = Path(__file__).parents[1] / "docs" / "api.md"
    result = doctest.testfile(str(doc), module_relative=False, verbose=False,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted > 20 and result.failed == 0


def test_run_warnings_go_to_the_nsgen_logger(caplog, capsys):
    from nsgen.cli import quiet_stderr
    from nsgen.preview import attach_preview
    quiet_stderr()   # a command called in this process earlier (e.g. nsgen mask's main)
    with caplog.at_level(logging.WARNING, logger="nsgen"):
        attach_preview("no-such-root", {"sample": 3, "files": []}, lambda m: None)
    assert [r.getMessage()[:35] for r in caplog.records] == ["warning: no preview for sample 0003"]
    assert capsys.readouterr().err == ""   # nothing printed by the library itself


def test_root_is_checked_when_writing_not_when_simulating(tmp_path):
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "data"
    cfg = nsgen.Config(mode="simple", size=16, objects=3, root=bad)   # nothing written yet
    assert simulate_sample(cfg).clean.shape == (16, 25, 22)
    r = run_cli("-m", "simple", "-r", str(bad), check=False)
    with pytest.raises(nsgen.NsgenError) as exc:
        nsgen.generate(cfg)
    assert r.returncode == 2 and r.stderr == f"nsgen: error: {exc.value}\n"
    assert "is not writable" in str(exc.value)
