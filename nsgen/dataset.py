"""Leak-free loading of a generated dataset as (input, target) pairs.

:class:`PairDataset` reads the manifests of a dataset root and serves every input that
has a target (simple: stripe -> clean; complex: each shift -> clean; paired/patch:
fake-artefact stripe -> clean) as a pair of float32 arrays. It has no deep-learning
dependency: it is a plain sequence (``len`` and integer indexing) of numpy arrays, which
``torch.utils.data.DataLoader`` accepts as a map-style dataset (the default collate
turns the arrays into tensors; the object pickles for worker processes).
``SyntheticPairs`` (:mod:`nsgen.onthefly`, importable from here) serves the same pairs
of synthetic modes simulated on the fly instead of read from disk.

Splits without leakage
----------------------
The reference loader shuffles individual sinograms, so neighbouring sinograms of one
sample (nearly identical) end up in both train and test (docs/science.md B 6.8 item 9). Here
whole *groups* are assigned to a split: a group is a sample (``group_by="sample"``) or,
for real data with a single scan, a (sample, shift) pair (``group_by="sample+shift"``).

Each group gets a number ``u`` in [0, 1) drawn from ``nsgen.rng.generator(seed,
"split", sample[, shift])``: a hash of (seed, group) alone. With ``method="hash"``
(default) the group goes to train if ``u < r_train``, to validate if
``u < r_train + r_validate``, else to test. A group's split therefore never changes
when samples are added to or removed from the dataset, so a test set stays a test set
as the dataset grows; the price is that the split sizes only match the ratios on
average (with 10 samples a 10 % split is empty one time in three, which is warned
about). ``method="exact"`` instead ranks the groups by ``u`` and cuts the ranking at
the ratios (largest-remainder rounding, every split with a positive ratio gets at least
one group when there are enough groups): exact sizes for this set of groups, but adding
groups can move others across a boundary. Both are stable for a given seed and set of
groups, and a different seed gives a different assignment.

Caveat for ``sample+shift``: the shifts of one scan image the same object a few
detector rows apart, so sinogram ``v`` of one shift resembles sinogram ``v + offset``
of another; splitting by shift removes exact duplicates but not this similarity. Where
inputs of different shifts share one target (complex mode), splitting by shift would
put the same target in two splits, and is refused.

Units
-----
``units="unit"`` (default) returns ``u / 65535`` in [0, 1], the reference's convention;
note that each sample (each file, in general) has its own scale. ``units="physical"``
decodes with each file's manifest bounds, ``lo + u (hi - lo) / 65535``: ``-log``
transmission (projection values in simple mode), comparable across samples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nsgen.errors import NsgenError
from nsgen.io.manifest import load_manifests
from nsgen.rng import generator

SPLITS = ("train", "validate", "test")
GROUP_BY = ("sample", "sample+shift")
METHODS = ("hash", "exact")
UNITS = ("unit", "physical")

Group = tuple[int, ...]
Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Pair:
    """One training pair as listed by the manifest (paths relative to the root)."""

    input: str
    target: str
    sample: int
    shift: int | None
    index: int
    input_bounds: tuple[float, float]
    target_bounds: tuple[float, float]
    group: Group


def group_uniform(seed: int, group: Group) -> float:
    """The split number ``u`` in [0, 1) of a group: depends on (seed, group) only.

    Examples
    --------
    >>> group_uniform(0, (3,)) == group_uniform(0, (3,))
    True
    >>> 0.0 <= group_uniform(0, (3, 1)) < 1.0
    True
    """
    return float(generator(seed, "split", *group).random())


def assign_splits(groups: Sequence[Group], ratios: Sequence[float], seed: int,
                  method: str = "hash") -> dict[Group, str]:
    """Assign every group to one of :data:`SPLITS`.

    Parameters
    ----------
    groups : sequence of tuple of int
        Distinct groups (``(sample,)`` or ``(sample, shift)``).
    ratios : sequence of 3 float
        Non-negative train/validate/test fractions (normalised to sum 1).
    seed : int
        Split seed.
    method : {"hash", "exact"}
        See the module docstring.

    Returns
    -------
    dict
        Group -> split name.

    Examples
    --------
    >>> s = assign_splits([(k,) for k in range(10)], (0.8, 0.1, 0.1), 0, "exact")
    >>> sorted(list(s.values()).count(n) for n in ("train", "validate", "test"))
    [1, 1, 8]
    """
    r = np.asarray(ratios, dtype=float)
    if r.shape != (3,) or not np.all(np.isfinite(r)) or np.any(r < 0) or r.sum() <= 0:
        raise NsgenError(f"ratios must be three non-negative numbers (train, validate, test) "
                         f"with a positive sum, got {tuple(ratios)}")
    if method not in METHODS:
        raise NsgenError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    r = r / r.sum()
    u = {g: group_uniform(seed, g) for g in groups}
    if method == "hash":
        edges = np.cumsum(r)[:2]
        return {g: SPLITS[int(np.searchsorted(edges, x, side="right"))] for g, x in u.items()}
    n = len(u)
    counts = _exact_counts(n, r)
    ranked = sorted(u, key=lambda g: (u[g], g))
    out: dict[Group, str] = {}
    start = 0
    for name, c in zip(SPLITS, counts):
        for g in ranked[start:start + c]:
            out[g] = name
        start += c
    return out


def _exact_counts(n: int, r: np.ndarray) -> list[int]:
    """Largest-remainder split of ``n`` items by fractions ``r``; every positive
    fraction gets at least one item when ``n`` allows."""
    raw = r * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[:n - counts.sum()]:
        counts[i] += 1
    positive = np.flatnonzero(r > 0)
    if n >= len(positive):
        for i in positive:
            if counts[i] == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[i] += 1
    return [int(c) for c in counts]


class PairDataset:
    """(input, target) pairs of a dataset root, optionally one split of it.

    Parameters
    ----------
    root : path
        Dataset root (the ``--root`` of the runs that wrote it).
    split : {None, "train", "validate", "test"}
        Which part to serve; None serves every pair.
    ratios : 3 floats
        Train/validate/test fractions of the groups (default 0.8, 0.1, 0.1).
    seed : int
        Split seed (independent of the generation seed).
    group_by : {"sample", "sample+shift"}
        What is kept whole in one split (see the module docstring).
    method : {"hash", "exact"}
        How groups are assigned (see the module docstring).
    units : {"unit", "physical"}
        ``u / 65535`` or values decoded with the manifest bounds.
    transform : callable, optional
        ``transform(input, target) -> (input, target)``, applied after decoding (e.g.
        ``lambda x, y: (x[None], y[None])`` for a channel axis, or a joint flip).

    Examples
    --------
    A small simple-mode dataset of three samples, its training split (one sample each
    for training, validation and test: ``method="exact"`` suits so few samples) and one pair:

    >>> import tempfile, nsgen
    >>> root = tempfile.mkdtemp()
    >>> nsgen.generate(mode="simple", root=root, samples=3, size=16, objects=5, preview=False)
    [0, 1, 2]
    >>> ds = PairDataset(root, split="train", method="exact")
    >>> [len(ds.samples_in(split)) for split in ("train", "validate", "test")]
    [1, 1, 1]
    >>> x, y = ds[0]
    >>> x.shape == y.shape, x.dtype, bool((x != y).any())
    (True, dtype('float32'), True)

    With PyTorch: ``torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True,
    num_workers=4)``.
    """

    def __init__(self, root: str | Path, split: str | None = None,
                 ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                 group_by: str = "sample", method: str = "hash", units: str = "unit",
                 transform: Transform | None = None) -> None:
        if split is not None and split not in SPLITS:
            raise NsgenError(f"split must be None or one of {', '.join(SPLITS)}, got {split!r}")
        if group_by not in GROUP_BY:
            raise NsgenError(f"group_by must be one of {', '.join(GROUP_BY)}, got {group_by!r}")
        if units not in UNITS:
            raise NsgenError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
        self.root = Path(root)
        self.split = split
        self.seed = seed
        self.group_by = group_by
        self.units = units
        self.transform = transform
        manifests = load_manifests(self.root)
        if not manifests:
            raise NsgenError(f"no sample manifest under {self.root}; give the --root of a "
                             f"generated dataset")
        every = _pairs(manifests, group_by)
        if not every:
            raise NsgenError(f"{self.root} holds no input/target pairs: "
                             f"{no_pairs_reason(manifests)}")
        _refuse_shared_targets(every)
        groups = sorted({p.group for p in every})
        self.assignment: dict[Group, str] = assign_splits(groups, ratios, seed, method)
        empty = [s for s, r in zip(SPLITS, ratios) if r > 0
                 and s not in self.assignment.values()]
        if empty:
            fix = ("too few groups for every split" if method == "exact"
                   else "use method='exact' for small datasets")
            warnings.warn(f"{self.root}: split {', '.join(empty)} got none of the "
                          f"{len(groups)} groups (group_by={group_by!r}, method={method!r}); "
                          f"{fix}", stacklevel=2)
        self.pairs: list[Pair] = [p for p in every
                                  if split is None or self.assignment[p.group] == split]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        from nsgen.io.formats import read_item   # TIFF files or images in containers
        p = self.pairs[i]
        try:
            x = read_item(self.root, p.input)
            y = read_item(self.root, p.target)
        except FileNotFoundError as exc:
            raise NsgenError(f"{exc.filename} is listed in sample {p.sample:04d}'s manifest "
                             f"but missing; run 'nsgen check {self.root}' and regenerate the "
                             f"sample") from None
        out = (self._decode(x, p.input_bounds), self._decode(y, p.target_bounds))
        return self.transform(*out) if self.transform is not None else out

    def _decode(self, u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        return decode(u, bounds, self.units)

    def split_of(self, sample: int, shift: int | None = None) -> str:
        """The split a sample (or, with ``group_by="sample+shift"``, a shift) belongs to."""
        if self.group_by == "sample+shift":
            if shift is None:
                raise NsgenError("this dataset is split by sample and shift; give shift=")
            g: Group = (sample, shift)
        else:
            g = (sample,)
        if g not in self.assignment:
            raise NsgenError(f"group {g} has no pairs in {self.root}")
        return self.assignment[g]

    def samples_in(self, split: str) -> list[int]:
        """Sample numbers with at least one group in ``split``."""
        if split not in SPLITS:
            raise NsgenError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return sorted({g[0] for g, s in self.assignment.items() if s == split})

    def __repr__(self) -> str:
        return (f"PairDataset({str(self.root)!r}, split={self.split!r}, seed={self.seed}, "
                f"group_by={self.group_by!r}, units={self.units!r}: {len(self)} pairs)")


def decode(u: np.ndarray, bounds: tuple[float, float], units: str) -> np.ndarray:
    """Stored uint16 values as float32: ``u / 65535`` (``units="unit"``) or
    ``lo + u (hi - lo) / 65535`` (``"physical"``, ``bounds = (lo, hi)``).

    Examples
    --------
    >>> decode(np.array([0, 65535], np.uint16), (2.0, 4.0), "physical").tolist()
    [2.0, 4.0]
    """
    v = u.astype(np.float32) / np.float32(65535)
    if units == "physical":
        lo, hi = bounds
        v = np.float32(lo) + v * np.float32(hi - lo)
    return v


def __getattr__(name: str) -> Any:
    if name == "SyntheticPairs":   # pairs simulated on the fly (imports the simulation)
        from nsgen.onthefly import SyntheticPairs
        return SyntheticPairs
    raise AttributeError(f"module 'nsgen.dataset' has no attribute {name!r}")


def no_pairs_reason(manifests: Sequence[dict[str, Any]]) -> str:
    """Why samples hold no input/target pair, and the fix, in one line.

    Raw and dynamic modes write inputs without targets. Paired and patch modes make fake
    pairs only from what the stripe mask calls stripe-free; a mask that flags everything
    leaves only real-artefact inputs (the manifest's ``pairs`` record gives the reason).

    Examples
    --------
    >>> m = {"mode": "paired", "sample": 0, "files": [
    ...     {"path": "a", "role": "stripe", "artefact": "real"}]}
    >>> no_pairs_reason([m])  # doctest: +ELLIPSIS
    'sample 0000 (paired): 0 fake pairs, 1 real-artefact input: the stripe mask flagged every ...'
    """
    reasons: list[str] = []
    for m in manifests:
        tag, mode = f"{m['sample']:04d}", m["mode"]
        if mode in ("raw", "dynamic"):
            reasons.append(f"sample {tag} ({mode}) has inputs without targets by design; "
                           f"generate pairs with -m simple, complex, paired or patch")
            continue
        real = sum(1 for f in m["files"] if f.get("artefact") == "real" and f["role"] != "clean")
        record = m.get("pairs") or {}
        unit = "patch" if mode == "patch" else "sinogram"
        why = record.get("reason") or (
            f"the stripe mask flagged every {unit} ({real} of {real}) as having real stripes"
            if real else "it lists no input with a target")
        fix = ("" if "--detector" in why   # a run's reason names its fix already
               else "; rerun with a mask that flags fewer (see --detector, or give --mask)"
               if real else "; regenerate the sample")
        reasons.append(f"sample {tag} ({mode}): 0 fake pairs, {real} real-artefact "
                       f"input{'' if real == 1 else 's'}: {why}{fix}")
    more = len(reasons) - 1
    return reasons[0] + (f" (and {more} more sample{'s' if more > 1 else ''} without pairs)"
                         if more > 0 else "")


def _pairs(manifests: list[dict[str, Any]], group_by: str) -> list[Pair]:
    out = []
    for m in manifests:
        by_path = {f["path"]: f for f in m["files"]}
        for f in m["files"]:
            t = f.get("target")
            if t is None:
                continue
            target = by_path[t]   # load_manifests checked that targets are listed
            shift = f.get("shift")
            if group_by == "sample+shift" and shift is None:
                raise NsgenError(f"{f['path']} has no shift; use group_by='sample'")
            group = (m["sample"], shift) if group_by == "sample+shift" else (m["sample"],)
            out.append(Pair(f["path"], t, m["sample"], shift, int(f["index"]),
                            (float(f["bounds"][0]), float(f["bounds"][1])),
                            (float(target["bounds"][0]), float(target["bounds"][1])), group))
    return out


def _refuse_shared_targets(pairs: list[Pair]) -> None:
    seen: dict[str, Group] = {}
    for p in pairs:
        g = seen.setdefault(p.target, p.group)
        if g != p.group:
            raise NsgenError(f"target {p.target} is shared by groups {g} and {p.group}, so "
                             f"they could land in different splits (leakage); use "
                             f"group_by='sample'")
