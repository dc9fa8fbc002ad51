"""nsgen.stages.fused: two passes on one read of each chunk; paired and patch runs that
detect stripes on the fly carry their pass one on the robust detector's first pass and give
the bytes of the flags-first path."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers import tree_digest

import nsgen
from nsgen.engine.pipeline import Chunk, WorkResult
from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan
from nsgen.modes import real
from nsgen.scan import ScanLayout
from nsgen.stages.fused import FusedStage
from nsgen.stages.scan_source import ScanSource
from nsgen.stages.scan_stages import ScanStage


class _Sum(ScanStage):
    def process(self, chunk: Chunk, sinos: np.ndarray) -> WorkResult:
        return WorkResult(float(sinos.sum()), files=1, nbytes=chunk.rows)


class _Rows(ScanStage):
    def work(self, chunk: Chunk, data: list[np.ndarray]) -> WorkResult:
        return WorkResult((chunk.start, chunk.stop, int(data[0].sum())), files=2,
                          checksums={"x": "1"})


def test_fused_stage_gives_each_stage_the_chunk_it_reads_and_pairs_their_values(tmp_path):
    path = tmp_path / "s.nxs"
    write_scan(path, n_angles=20, n_rows=9, n_columns=16, seed=2)
    source, shape = ScanSource(str(path), ScanLayout()), (20, 9, 16)
    one, two = _Sum(source, shape, "<u2", chunk_rows=4), _Rows(source, shape, "<u2", 4)
    fused = FusedStage(one, two)
    assert fused.chunks() == one.chunks() and fused.label == "normalise + normalise"
    for chunk in fused.chunks():
        data = [np.empty(s, d) for s, d in fused.slot_spec(chunk)]
        fused.read(chunk, data)
        alone = [np.empty(s, d) for s, d in one.slot_spec(chunk)]
        one.read(chunk, alone)
        got = fused.work(chunk, data)
        assert got.value == (one.work(chunk, alone).value, two.work(chunk, alone).value)
        assert (got.files, got.nbytes, got.checksums) == (3, chunk.rows, {"x": "1"})


def test_fused_stages_must_read_the_same_rows():
    source, shape = ScanSource("s.nxs", ScanLayout()), (20, 9, 16)
    with pytest.raises(ValueError, match="the same chunks"):
        FusedStage(_Sum(source, shape, "<u2", 4), _Sum(source, shape, "<u2", 4, halo=1))


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "7.nxs"
    write_scan(path, n_angles=601, n_rows=48, n_columns=64, seed=3)
    return path


def _run(root, scan, caplog, **options) -> list[str]:
    """Generate in this process; the labels of the stages that ran."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nsgen"):
        nsgen.generate(hdf_root=str(scan), root=root, samples=1, preview=False,
                       progress=False, verbose=True, **options)
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("options", [
    dict(mode="paired", workers=2),
    dict(mode="paired", workers=1, chunk_size=5),
    dict(mode="paired", workers=2, chunk_size=6, bounds_percentile=0.5),
    dict(mode="patch", patch_size=(120, 16), workers=2, chunk_size=7),
], ids=["paired", "paired-C5", "paired-percentile", "patch-C7"])
def test_on_the_fly_pass_one_rides_on_the_detector_and_gives_the_same_bytes(
        scan, tmp_path, caplog, monkeypatch, options):
    """With the robust detector on the fly, pass one runs on the chunks the detector's
    first pass reads (one stage, one read of the scan for both; paired percentile bounds
    counted from the scratch volume after); the dataset is the one of the flags-first path
    (the detector's passes, then pass one reading the scan again)."""
    fused = _run(tmp_path / "fused", scan, caplog, **options)
    monkeypatch.setattr(real, "FUSED_DETECTOR", "none")
    apart = _run(tmp_path / "apart", scan, caplog, **options)
    label = "detect stripes (robust, rows) + normalise+"
    assert any(label in m for m in fused) and not any(label in m for m in apart)
    assert tree_digest(tmp_path / "fused") == tree_digest(tmp_path / "apart")
    sample = tmp_path / "fused" / "0000"
    assert any((sample / "real_artifacts" / "stripe").iterdir())     # the flags matter
    assert any((sample / "fake_artifacts" / "stripe").iterdir())


def test_a_pass_one_that_does_not_fit_with_the_detector_runs_on_its_own(
        scan, tmp_path, caplog, monkeypatch):
    """When the two passes do not fit the memory limit together, the detector's first pass
    runs alone and pass one after the flags (the same bytes)."""
    from nsgen.stages import robust_sizing

    options = dict(mode="paired", workers=2, chunk_size=6)
    _run(tmp_path / "fused", scan, caplog, **options)
    sizings = robust_sizing.sizings

    def no_room(*args, **kw):
        if (args[5:] or [kw.get("alongside", 0.0)])[0]:
            raise NsgenError("no room")
        return sizings(*args, **kw)

    monkeypatch.setattr(robust_sizing, "sizings", no_room)
    alone = _run(tmp_path / "alone", scan, caplog, **options)
    assert not any("+ normalise+pair" in m for m in alone)
    assert sum("detect stripes (robust, rows):" in m for m in alone) == 1
    assert tree_digest(tmp_path / "fused") == tree_digest(tmp_path / "alone")


def test_a_run_stopped_in_its_second_shift_resumes_to_the_same_bytes(tmp_path, caplog,
                                                                      monkeypatch):
    """Two shifts detected on the fly: a run that fails as shift 1's fused pass ends keeps
    shift 0; the rerun redoes shift 1 alone and gives the dataset of an uninterrupted run."""
    from nsgen.modes import paired

    for k in (0, 1):
        write_scan(tmp_path / f"{100 + k}.nxs", n_angles=601, n_rows=40, n_columns=64,
                   seed=3 + k)
    scan, options = tmp_path / "100.nxs", dict(mode="paired", workers=2, shifts=2)
    _run(tmp_path / "whole", scan, caplog, **options)
    summary = paired.flagged_summary
    calls: list[int] = []

    def fail_second(rows, flags):
        calls.append(1)
        if len(calls) == 2:
            raise NsgenError("stopped")
        return summary(rows, flags)

    monkeypatch.setattr(paired, "flagged_summary", fail_second)
    with pytest.raises(NsgenError, match="stopped"):
        _run(tmp_path / "stopped", scan, caplog, **options)
    monkeypatch.setattr(paired, "flagged_summary", summary)
    again = _run(tmp_path / "stopped", scan, caplog, **options)
    assert any("shift00: finished earlier, kept" in m for m in again)
    assert sum("+ normalise+pair:" in m for m in again) == 1
    assert tree_digest(tmp_path / "stopped") == tree_digest(tmp_path / "whole")
