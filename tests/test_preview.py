"""Preview contact sheets: written by a run, panel counts, PNG size, determinism, CLI."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
from matplotlib.image import imread

from helpers import nsgen
from nsgen.cli import main as cli_main
from nsgen.io.manifest import load_manifests
from nsgen.io.tiff import write_tiff
from nsgen.preview import render_preview, spread


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("prev") / "data"
    nsgen("-m", "complex", "-N", "16", "-o", "3", "-s", "3", "-f", "2", "-r", str(root))
    return root


def _png_shape(path):
    return imread(path).shape


def test_a_run_writes_and_lists_its_preview(root):
    m = load_manifests(root)[0]
    assert m["preview"] == "0000/preview.png"
    h, w, channels = _png_shape(root / "0000" / "preview.png")
    assert channels in (3, 4) and h > w > 500        # 4 rows x 3 columns of panels


def test_panels_rows_columns_and_png_size(root, tmp_path):
    m = load_manifests(root)[0]
    r = render_preview(root, m, tmp_path / "p.png")
    assert (r.rows, r.columns, r.panels) == (4, 3, 12)
    assert _png_shape(r.path)[:2] == r.size_px
    # rows are clean/stripe pairs of the manifest, cycling over shifts, distinct indices
    pairs = list(zip(r.files[::2], r.files[1::2]))
    by_path = {f["path"]: f for f in m["files"]}
    assert all(by_path[s]["target"] == c for c, s in pairs)
    assert [by_path[s]["shift"] for _, s in pairs] == [0, 1, 2, 0]
    assert len({by_path[s]["index"] for _, s in pairs}) == 4
    r2 = render_preview(root, m, tmp_path / "p2.png", pairs=2)
    assert (r2.rows, r2.panels) == (2, 6)
    assert r2.size_px[0] < r.size_px[0] and r2.size_px[1] == r.size_px[1]


def test_preview_bytes_are_deterministic(root, tmp_path):
    m = load_manifests(root)[0]
    render_preview(root, m, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes() == (root / "0000" / "preview.png").read_bytes()


def test_a_mask_adds_a_column(root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(root, data)
    m = load_manifests(data)[0]
    mask = np.zeros(m["files"][0]["shape"], np.uint16)
    mask[:, 3:5] = 1
    write_tiff(data / "0000" / "mask.tif", mask)
    for f in m["files"]:
        if "target" in f:
            f["mask"] = "0000/mask.tif"
    r = render_preview(data, m, tmp_path / "mask.png")
    assert (r.rows, r.columns, r.panels) == (4, 4, 16)
    assert _png_shape(r.path)[:2] == r.size_px


def test_inputs_without_targets_make_a_grid(root, tmp_path):
    m = copy.deepcopy(load_manifests(root)[0])
    m["files"] = [dict({k: v for k, v in f.items() if k != "target"}, role="raw")
                  for f in m["files"] if f["role"] == "stripe"]
    r = render_preview(root, m, tmp_path / "raw.png", pairs=2)
    assert (r.rows, r.columns, r.panels) == (2, 3, 6)
    assert len(set(r.files)) == 6


def test_spread_is_deterministic_distinct_and_covers_groups():
    e = [{"path": f"{s}/{v}", "index": v, "shift": s} for s in range(5) for v in range(100)]
    a = spread(e, 7)
    assert a == spread(list(reversed(e)), 7)
    assert len({x["path"] for x in a}) == 7
    assert [x["shift"] for x in a] == [0, 1, 2, 3, 4, 0, 1]
    assert len(spread(e[:3], 10)) == 3


def test_cli_writes_where_asked_and_rejects_bad_input(root, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert cli_main(["preview", str(root), "--sample", "0", "-o", str(out), "--pairs", "1"]) == 0
    assert "1 rows x 3 columns (3 panels)" in capsys.readouterr().out
    assert _png_shape(out)[0] < _png_shape(root / "0000" / "preview.png")[0]
    assert cli_main(["preview", str(root), "--sample", "5"]) == 2
    assert "sample 5 of" in capsys.readouterr().err
    assert cli_main(["preview", str(root), "--pairs", "0", "-o", str(out)]) == 2
    assert cli_main(["preview", str(tmp_path / "none")]) == 2


@pytest.fixture(scope="module")
def reference_density_root(tmp_path_factory):
    """A complex sample at the reference's defect density: many inputs equal their target."""
    root = tmp_path_factory.mktemp("prev_ref") / "data"
    nsgen("-m", "complex", "-N", "16", "-o", "3", "-s", "3", "-f", "2", "--defect-density", "0",
          "-r", str(root), "--no-preview")
    return root


def test_preview_counts_identical_pairs_and_shows_pairs_that_differ(reference_density_root,
                                                                      tmp_path, capsys):
    import tifffile
    root = reference_density_root
    m = load_manifests(root)[0]
    by_path = {f["path"]: f for f in m["files"]}
    inputs = [f for f in m["files"] if "target" in f]
    same = {f["path"] for f in inputs if np.array_equal(tifffile.imread(root / f["path"]),
                                                        tifffile.imread(root / f["target"]))}
    assert 4 <= len(same) <= len(inputs) - 4          # both kinds present
    r = render_preview(root, m, tmp_path / "p.png")
    assert (r.identical, r.pairs) == (len(same), len(inputs))
    shown_inputs = r.files[1::2]
    assert len(shown_inputs) == 4 and not set(shown_inputs) & same
    assert all(by_path[s]["target"] == c for c, s in zip(r.files[::2], shown_inputs))
    # the manifest-only choice would have shown identical pairs here
    assert {f["path"] for f in spread(inputs, 4)} & same
    assert cli_main(["preview", str(root), "-o", str(tmp_path / "c.png")]) == 0
    assert f"{len(same)} of {len(inputs)} pairs identical (input = target)" in \
        capsys.readouterr().out


def test_preview_falls_back_to_identical_pairs_when_too_few_differ(reference_density_root,
                                                                    tmp_path):
    m = copy.deepcopy(load_manifests(reference_density_root)[0])
    clean = [f for f in m["files"] if "target" not in f]
    for f in m["files"]:               # every input its own target: all identical
        if "target" in f:
            f["target"] = f["path"]
    r = render_preview(reference_density_root, m, tmp_path / "p.png", pairs=3)
    assert r.rows == 3 and r.identical == r.pairs == len(m["files"]) - len(clean)
