"""PairDataset: pairs from manifests, leak-free splits by sample (or shift), loader use."""

from __future__ import annotations

import json
import pickle
import random
import warnings

import numpy as np
import pytest

from helpers import nsgen, unavailable
from nsgen.dataset import SPLITS, PairDataset, assign_splits, no_pairs_reason
from nsgen.errors import NsgenError
from nsgen.io.manifest import write_manifest
from nsgen.io.tiff import write_tiff

SHAPE = (6, 5)


def fake_dataset(root, samples, *, layout="simple", shifts=1, rows=4, write_files=True,
                 start=0):
    """A dataset of tiny TIFFs and manifests in the layout of a mode.

    Clean pixels hold ``code = 1000 * sample + 100 * shift + row``; inputs hold
    ``code + 1``, so a loaded pair identifies itself. Bounds differ per sample.
    """
    for s in range(start, start + samples):
        tag = f"{s:04d}"
        bounds = [float(-s), float(s + 1)]
        files = []

        def add(path, role, v, value, files=files, bounds=bounds, **more):
            if write_files:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                write_tiff(root / path, np.full(SHAPE, value, np.uint16))
            files.append({"path": path, "role": role, "index": v, "shape": list(SHAPE),
                          "bounds": bounds, **more})

        for v in range(rows):
            if layout == "simple":
                clean = f"{tag}/clean/{tag}_clean_{v:04d}.tif"
                add(clean, "clean", v, 1000 * s + v)
                add(f"{tag}/stripe/{tag}_stripe_{v:04d}.tif", "stripe", v, 1000 * s + v + 1,
                    target=clean)
            elif layout == "complex":
                clean = f"{tag}/clean/{tag}_clean_{v:04d}.tif"
                add(clean, "clean", v, 1000 * s + v)
                for i in range(shifts):
                    add(f"{tag}/shift{i:02d}/{tag}_shift{i:02d}_{v:04d}.tif", "stripe", v,
                        1000 * s + v + 1, shift=i, target=clean)
            elif layout in ("paired", "raw"):
                for i in range(shifts):
                    name = f"{tag}_shift{i:02d}_{v:04d}.tif"
                    code = 1000 * s + 100 * i + v
                    if layout == "raw":
                        add(f"{tag}/shift{i:02d}/{name}", "raw", v, code, shift=i)
                    elif v % 2 == 0:      # even rows clean in the scan: fake artefacts
                        clean = f"{tag}/fake_artifacts/clean/{name}"
                        add(clean, "clean", v, code, shift=i, artefact="fake")
                        add(f"{tag}/fake_artifacts/stripe/{name}", "stripe", v, code + 1,
                            shift=i, artefact="fake", target=clean)
                    else:                 # real artefacts: no target
                        add(f"{tag}/real_artifacts/clean/{name}", "clean", v, code, shift=i,
                            artefact="real")
                        add(f"{tag}/real_artifacts/stripe/{name}", "stripe", v, code + 1,
                            shift=i, artefact="real")
        (root / tag).mkdir(parents=True, exist_ok=True)
        write_manifest(root / tag / "manifest.json",
                       {"nsgen_version": "test", "mode": layout, "sample": s, "seed": 0,
                        "config": {}, "files": files})
    return root


@pytest.fixture(scope="module")
def simple_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("simple") / "data"
    nsgen("-m", "simple", "-N", "8", "-o", "2", "-r", str(root), "-S", "4", "--no-preview")
    return root


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """200 samples, manifests only (the split never reads pixels)."""
    return fake_dataset(tmp_path_factory.mktemp("many"), 200, rows=2, write_files=False)


def test_generated_simple_dataset_pairs(simple_root):
    ds = PairDataset(simple_root, method="exact")
    assert len(ds) == 4 * 8
    for i, p in enumerate(ds.pairs):
        assert p.input.endswith(f"_stripe_{p.index:04d}.tif")
        assert p.target == p.input.replace("stripe", "clean")
        x, y = ds[i]
        assert x.dtype == y.dtype == np.float32 and x.shape == y.shape == (12, 11)
        assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 1
    phys = PairDataset(simple_root, units="physical", method="exact")
    lo, hi = phys.pairs[0].target_bounds
    x, y = phys[0]
    assert lo - 1e-6 <= y.min() and y.max() <= hi + 1e-6
    assert np.allclose(y, lo + ds[0][1] * (hi - lo), atol=1e-6)


def test_pairs_load_their_own_target_in_both_units(tmp_path):
    root = fake_dataset(tmp_path, 3, layout="complex", shifts=2)
    ds = PairDataset(root, method="exact")
    assert len(ds) == 3 * 4 * 2
    for i, p in enumerate(ds.pairs):
        x, y = ds[i]
        code = 1000 * p.sample + p.index
        assert np.all(y == np.float32(code / 65535)) and np.all(x == np.float32((code + 1) / 65535))
    phys = PairDataset(root, units="physical", method="exact",
                       transform=lambda x, y: (x[None], y[None]))
    x, y = phys[len(phys) - 1]
    assert x.shape == (1, *SHAPE)
    lo, hi = -2.0, 3.0                     # sample 2
    assert np.allclose(y, lo + (2000 + 3) * (hi - lo) / 65535)


def test_no_sample_in_two_splits_and_all_covered(many):
    parts = {s: PairDataset(many, split=s) for s in SPLITS}
    samples = {s: {p.sample for p in parts[s].pairs} for s in SPLITS}
    assert not samples["train"] & samples["validate"]
    assert not samples["train"] & samples["test"]
    assert not samples["validate"] & samples["test"]
    assert samples["train"] | samples["validate"] | samples["test"] == set(range(200))
    assert sum(len(d) for d in parts.values()) == len(PairDataset(many)) == 400
    for s in SPLITS:
        assert parts[s].samples_in(s) == sorted(samples[s])
        assert all(parts[s].split_of(k) == s for k in samples[s])


def test_ratios_are_respected(many):
    ds = PairDataset(many, ratios=(0.7, 0.2, 0.1))
    fractions = [len(ds.samples_in(s)) / 200 for s in SPLITS]
    assert np.allclose(fractions, [0.7, 0.2, 0.1], atol=0.08)
    exact = PairDataset(many, ratios=(7, 2, 1), method="exact")
    assert [len(exact.samples_in(s)) for s in SPLITS] == [140, 40, 20]


def test_split_is_stable_for_a_seed_and_when_samples_are_added(many, tmp_path):
    a, b = PairDataset(many, seed=3), PairDataset(many, seed=3)
    assert a.assignment == b.assignment and a.pairs == b.pairs
    more = fake_dataset(tmp_path / "more", 100, rows=2, write_files=False)
    more = fake_dataset(more, 150, rows=2, write_files=False, start=100)  # 0..249
    grown = PairDataset(more, seed=3)
    assert all(grown.assignment[g] == s for g, s in a.assignment.items())
    assert PairDataset(many, seed=4).assignment != a.assignment


def test_exact_method_gives_every_split_a_group_in_small_datasets():
    groups = [(k,) for k in range(3)]
    for seed in range(20):
        s = assign_splits(groups, (0.8, 0.1, 0.1), seed, "exact")
        assert sorted(s.values()) == ["test", "train", "validate"]
    with pytest.raises(NsgenError, match="ratios"):
        assign_splits(groups, (0.8, -0.1, 0.3), 0)


def test_small_hash_split_warns_about_empty_parts(tmp_path):
    root = fake_dataset(tmp_path, 2, rows=1, write_files=False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        PairDataset(root, seed=0)
    assert any("method='exact'" in str(x.message) for x in w)


def test_real_data_split_by_shift_and_real_artefacts_excluded(tmp_path):
    root = fake_dataset(tmp_path, 1, layout="paired", shifts=5, rows=6)
    ds = PairDataset(root, group_by="sample+shift", method="exact")
    assert len(ds) == 5 * 3                 # even rows only: fake artefacts with targets
    assert all("fake_artifacts/stripe" in p.input for p in ds.pairs)
    seen = {}
    for s in SPLITS:
        for p in PairDataset(root, split=s, group_by="sample+shift", method="exact").pairs:
            assert seen.setdefault((p.sample, p.shift), s) == s
    assert sorted(seen.values()).count("train") == 3 and len(seen) == 5
    assert ds.split_of(0, shift=2) == seen[(0, 2)]
    with pytest.raises(NsgenError, match="give shift="):
        ds.split_of(0)
    for i in range(len(ds)):
        x, y = ds[i]
        p = ds.pairs[i]
        assert np.all(y * 65535 == 100 * p.shift + p.index)


def test_shift_split_refused_when_shifts_share_a_target(tmp_path):
    root = fake_dataset(tmp_path, 2, layout="complex", shifts=2, write_files=False)
    with pytest.raises(NsgenError, match="shared by groups"):
        PairDataset(root, group_by="sample+shift")


def test_datasets_without_targets_are_refused(tmp_path):
    root = fake_dataset(tmp_path, 1, layout="raw", shifts=2, write_files=False)
    with pytest.raises(NsgenError, match="no input/target pairs: sample 0000 \\(raw\\) has "
                       "inputs without targets by design; generate pairs with -m simple"):
        PairDataset(root)
    with pytest.raises(NsgenError, match="no sample manifest"):
        PairDataset(tmp_path / "0000")
    with pytest.raises(NsgenError, match="split must be"):
        PairDataset(root, split="training")
    with pytest.raises(NsgenError, match="units must be"):
        PairDataset(root, units="raw")


def test_a_paired_root_without_fake_pairs_names_the_mask(tmp_path):
    root = fake_dataset(tmp_path, 2, layout="paired", shifts=1, rows=6, write_files=False)
    for tag in ("0000", "0001"):       # every sinogram flagged: only real artefacts remain
        path = root / tag / "manifest.json"
        m = json.loads(path.read_text())
        m["files"] = [f for f in m["files"] if f.get("artefact") == "real"]
        if tag == "0001":
            m["pairs"] = {"fake": 0, "real": 3, "reason": "mask flagged 100 % of rows"}
        write_manifest(path, m)
    with pytest.raises(NsgenError) as info:
        PairDataset(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(
        "holds no input/target pairs: sample 0000 (paired): 0 fake pairs, 3 real-artefact "
        "inputs: the stripe mask flagged every sinogram (3 of 3) as having real stripes; rerun "
        "with a "
        "mask that flags fewer (see --detector, or give --mask) (and 1 more sample without "
        "pairs)")
    m = json.loads((root / "0001" / "manifest.json").read_text())
    assert "0 fake pairs, 3 real-artefact inputs: mask flagged 100 % of rows; rerun" in \
        no_pairs_reason([m])
    # the reason a run records names its fix: not repeated
    m["pairs"]["reason"] = ("the stripe mask flagged 100 % of sinograms (3 of 3) as holding "
                            "real stripes; see --detector, or give a mask that flags fewer "
                            "with --mask")
    assert no_pairs_reason([m]).endswith("3 real-artefact inputs: " + m["pairs"]["reason"])


def test_a_missing_file_is_named(tmp_path):
    root = fake_dataset(tmp_path, 1, layout="simple", rows=2)
    ds = PairDataset(root, ratios=(1, 0, 0))   # one sample: all of it in train
    (root / ds.pairs[1].target).unlink()
    with pytest.raises(NsgenError, match=f"{ds.pairs[1].target} is listed in sample 0000's "
                                         f"manifest but missing; run 'nsgen check"):
        ds[1]


def test_works_as_a_map_style_dataset_for_a_loader(tmp_path):
    root = fake_dataset(tmp_path, 4, layout="simple", rows=5)
    ds = pickle.loads(pickle.dumps(PairDataset(root, split="train", method="exact")))
    order = list(range(len(ds)))
    random.Random(0).shuffle(order)
    seen = 0
    for start in range(0, len(order), 4):        # what DataLoader(batch_size=4) does
        batch = [ds[i] for i in order[start:start + 4]]
        x = np.stack([b[0] for b in batch])
        y = np.stack([b[1] for b in batch])
        assert x.shape == y.shape == (len(batch), *SHAPE)
        assert np.allclose((x - y) * 65535, 1, atol=1e-3)
        seen += len(batch)
    assert seen == len(ds) > 0
    torch = pytest.importorskip("torch")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True)
    assert sum(xb.shape[0] for xb, _ in loader) == len(ds)


def test_torch_dataloader_with_worker_processes_yields_every_pair_once(tmp_path):
    """The documented training path: torch's DataLoader, its worker processes each
    unpickling the dataset, batches in order equal to indexing the dataset directly."""
    try:
        import torch
    except ImportError:
        unavailable("torch is not installed (.ci/run installs it: pip install torch)")
    root = fake_dataset(tmp_path, 4, layout="complex", shifts=2, rows=5)
    ds = PairDataset(root, split="train", method="exact")
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    xs, ys = zip(*[(xb, yb) for xb, yb in loader])
    x, y = torch.cat(xs).numpy(), torch.cat(ys).numpy()
    assert x.shape == y.shape == (len(ds), *SHAPE)
    assert np.array_equal(x, np.stack([ds[i][0] for i in range(len(ds))]))
    assert np.array_equal(y, np.stack([ds[i][1] for i in range(len(ds))]))
    assert not np.array_equal(x, y)
