"""Exact percentile bounds: two-level counting of float32 keys, chunking-independent, and
--bounds-percentile end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import nsgen

from nsgen.config import parse_config
from nsgen.errors import NsgenError
from nsgen.io.scan_writer import write_scan
from nsgen.modes.real import OUT_SHAPE, interior
from nsgen.prep.normalise import flat_field_log
from nsgen.prep.percentile import (
    KeyCounts,
    exact_bounds,
    key_value,
    level_two,
    order_keys,
)
from nsgen.prep.resize import downsample
from nsgen.scan import open_scan


def test_keys_sort_like_the_values_and_invert():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(scale=10.0 ** rng.integers(-30, 30, 500)),
                        [0.0, -0.0, 13.8, -13.8]]).astype(np.float32)
    keys = order_keys(x)
    assert np.array_equal(x[np.argsort(keys)], np.sort(x))
    assert all(key_value(int(k)) == float(v) for k, v in zip(keys[:50], x[:50]))


@pytest.mark.parametrize("percentile", [0.1, 1.0, 25.0, 49.9])
@pytest.mark.parametrize("pieces", [1, 3, 17])
def test_two_level_counts_give_numpys_percentiles_whatever_the_chunking(percentile, pieces):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=20000), rng.exponential(size=3000) * 50,
                        np.full(100, 2.5)]).astype(np.float32)
    chunks = np.array_split(rng.permutation(x), pieces)
    one = KeyCounts()
    for c in chunks:
        one = one.union(_counted(c))
    where = level_two(one, percentile)
    bins = tuple({b for b, _ in where})
    two = KeyCounts()
    for c in chunks:
        two = two.union(_counted(c, bins))
    assert exact_bounds(two, where) == (
        float(np.percentile(x, percentile, method="lower")),
        float(np.percentile(x, 100 - percentile, method="higher")))


def _counted(values, bins=()):
    c = KeyCounts()
    c.add(np.concatenate([values, [np.nan, np.inf]]), bins)   # non-finite values ignored
    return c


@pytest.mark.parametrize("value", ["-0.1", "50", "nan"])
def test_percentile_out_of_range_is_one_line(value):
    with pytest.raises(NsgenError) as info:
        parse_config(["--bounds-percentile", value], env={})
    assert str(info.value).startswith("--bounds-percentile must be a percentile in [0, 50)")
    assert "\n" not in str(info.value)


def test_bounds_percentile_end_to_end(tmp_path):
    scan = tmp_path / "7.nxs"
    write_scan(scan, n_angles=91, n_rows=48, n_columns=96, seed=1)
    with open_scan(str(scan)) as s:
        rows = slice(0, s.shape[1])
        small = downsample(flat_field_log(s.read_projections(rows), s.flat_mean(rows),
                                          s.dark_mean(rows)), OUT_SHAPE)
    inner = small[interior(48).start:interior(48).stop]
    runs = {}
    for args in ([], ["-C", "5", "--workers", "1"]):
        root = tmp_path / f"out{len(args)}"
        nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(root),
              "--bounds-percentile", "0.5", "--no-preview", *args)
        m = json.loads((root / "0000" / "manifest.json").read_text())
        runs[len(args)] = m["files"][0]["bounds"]
        assert m["bounds_method"] == "exact percentiles 0.5 and 99.5 of the interior rows"
    assert runs[0] == runs[4] == [float(np.percentile(inner, 0.5, method="lower")),
                                  float(np.percentile(inner, 99.5, method="higher"))]
    r = nsgen("-m", "raw", "--hdf-root", str(scan), "-s", "1", "-r", str(tmp_path / "bad"),
              "--bounds-percentile", "60", check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
