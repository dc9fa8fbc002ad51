"""Complex mode: no wasted pairs by default; the reference's defect density stays reachable."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import tifffile

from helpers import nsgen

SMALL = ("-N", "16", "-o", "3", "-s", "2", "-f", "2", "--no-preview")

#: sha256 of the concatenated TIFFs (sorted relative paths) of ``nsgen -m complex SMALL --seed
#: S`` made by commit 993091a, before --defect-density existed: the reference's density
#: (--defect-density 0) must keep reproducing these bytes.
REFERENCE_SHA256 = {
    0: "d0fecba914cdf804dbbdada328db5e0dee7dae3b059b79c8430e4e8f86712836",
    1: "e3fde677460ad774e5440f8b6334b419b8b5f74b501b03016310275e1c8e53f5",
}


def tiff_sha256(root) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.tif"), key=lambda p: str(p.relative_to(root))):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def identical_rows(sample) -> list[tuple[str, int]]:
    """(shift directory, row) of every input byte-identical to its clean target."""
    same = []
    for clean in sorted((sample / "clean").glob("*.tif")):
        target = tifffile.imread(clean)
        row = int(clean.stem.rsplit("_", 1)[1])
        for shift in sorted(sample.glob("shift*")):
            image = tifffile.imread(shift / f"{sample.name}_{shift.name}_{row:04d}.tif")
            if np.array_equal(image, target):
                same.append((shift.name, row))
    return same


def test_reference_density_reproduces_the_reference_bytes(tmp_path):
    wasted = []
    for seed, expected in REFERENCE_SHA256.items():
        root = tmp_path / f"seed{seed}"
        nsgen("-m", "complex", *SMALL, "--seed", str(seed), "--defect-density", "0",
              "-r", str(root))
        assert tiff_sha256(root) == expected
        wasted += identical_rows(root / "0000")
    # ... and that density leaves sinograms of a shift without a stripe
    assert wasted


def test_default_density_leaves_no_identical_pair(tmp_path):
    for seed in (0, 1, 2):
        root = tmp_path / f"seed{seed}"
        nsgen("-m", "complex", *SMALL, "--seed", str(seed), "-r", str(root))
        assert identical_rows(root / "0000") == []
        detector = json.loads((root / "0000" / "manifest.json").read_text())["detector"]
        assert detector["defect_density"] == 1.0


def test_density_out_of_range_is_one_line_exit_2(tmp_path):
    root = tmp_path / "data"
    r = nsgen("-m", "complex", *SMALL, "--defect-density", "100", "-r", str(root), check=False)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "--defect-density must be a number of defective pixels per detector row in 0..22" \
        in r.stderr
    assert not root.exists()
