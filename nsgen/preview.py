"""Contact sheets: look at a sample before training on it.

``nsgen preview ROOT [--sample N] [-o FILE] [--pairs K]`` draws ``K`` input/target pairs
of one sample as rows of a PNG with columns *clean | stripe | stripe - clean* (and
*mask* when the manifest references one). Values are decoded to the units of the data
(``-log`` units; projection values in simple mode) with the manifest bounds, so the
difference panel shows the artefact in physical units. Samples without targets (raw,
dynamic) are shown as a grid of inputs instead.

Pairs whose input is identical to its target teach a network nothing: every pair's files
are compared (bytes, which depend only on the pixels), the sheet states how many pairs are
identical and shows pairs that differ (identical ones only when too few differ). The choice
is deterministic: rows cycle over the sample's shifts/frames/patches and spread evenly over
sinogram indices. The runner calls :func:`attach_preview` at the end of every sample
unless ``--no-preview``; the PNG is byte-identical for identical data.
"""

from __future__ import annotations

import filecmp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nsgen.errors import NsgenError
from nsgen.io.manifest import MANIFEST, manifest_paths, manifest_problems, read_manifest
from nsgen.io.tiff import TMP_MARK
from nsgen.prep.scaling import Bounds

PREVIEW = "preview.png"
DEFAULT_PAIRS = 4
#: columns of the pair grid when there are no targets
GRID_COLUMNS = 3
#: keys that split a sample's inputs into groups the rows cycle over
GROUP_KEYS = ("artefact", "shift", "frame", "patch")
#: layout in pixels at DPI: panel (height, width) limits, colour bar, gaps, title, header
DPI = 100
MIN_PANEL = (150, 240)
MAX_PANEL = (600, 480)
BAR_PX = 44
GAP_PX = 14
TITLE_PX = 42
HEAD_PX = 44


@dataclass(frozen=True)
class PreviewResult:
    """What :func:`render_preview` drew."""

    path: Path
    rows: int
    columns: int
    panels: int             # image panels (colour bars not counted)
    files: tuple[str, ...]  # manifest paths shown, row by row
    size_px: tuple[int, int]  # PNG (height, width)
    identical: int = 0      # input/target pairs whose input equals its target
    pairs: int = 0          # input/target pairs of the sample


def _group_key(entry: dict[str, Any]) -> tuple:
    """Sortable (artefact, shift, frame, patch) of an entry; absent keys sort first."""
    out: list[tuple[int, int, str]] = []
    for k in GROUP_KEYS:
        v = entry.get(k)
        out.append((0, 0, "") if v is None else (1, v, "") if isinstance(v, int)
                   else (2, 0, str(v)))
    return tuple(out)


def spread(entries: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Choose up to ``k`` entries: cycle over groups, spread evenly over indices.

    Groups are the distinct (artefact, shift, frame, patch) values in sorted order; row
    ``i`` takes group ``i mod G`` (skipping exhausted groups) and, within it, the entry at
    fraction ``(i + 0.5) / k`` of the group's index range (the nearest unused one), so
    the rows show different shifts *and* different sinogram indices.

    Parameters
    ----------
    entries : sequence of dict
        Manifest file entries.
    k : int
        How many to choose.

    Returns
    -------
    list of dict
        Distinct entries, in row order.

    Examples
    --------
    >>> e = [{"index": v, "shift": s} for v in range(8) for s in range(2)]
    >>> [(x["shift"], x["index"]) for x in spread(e, 4)]
    [(0, 1), (1, 3), (0, 5), (1, 7)]
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault(_group_key(e), []).append(e)
    keys = sorted(groups)
    for key in keys:
        groups[key].sort(key=lambda e: (e.get("index", 0), e.get("path", "")))
    k = min(k, len(entries))
    counts = {key: 0 for key in keys}
    order: list[tuple] = []
    i = 0
    while len(order) < k:
        key = keys[i % len(keys)]
        if counts[key] < len(groups[key]):
            counts[key] += 1
            order.append(key)
        i += 1
    used: dict[tuple, set[int]] = {key: set() for key in keys}
    out = []
    for i, key in enumerate(order):
        n = len(groups[key])
        pos = min(int((i + 0.5) / k * n), n - 1)
        free = sorted(set(range(n)) - used[key], key=lambda q: (abs(q - pos), q))
        used[key].add(free[0])
        out.append(groups[key][free[0]])
    return out


def identical_inputs(root: Path, inputs: Sequence[dict[str, Any]]) -> set[str]:
    """Paths of the inputs whose file is byte-identical to their target's file.

    TIFF bytes depend only on the pixels, so equal bytes mean an input equal to its
    target (a pair with nothing to learn). Comparison stops at the first differing block;
    images inside a container are compared as arrays.
    """
    from nsgen.io.formats import read_item
    from nsgen.io.layout import split_item
    root = Path(root)

    def same(e: dict[str, Any]) -> bool:
        if split_item(e["path"]) is not None:   # an image in an HDF5/Zarr container
            return bool(np.array_equal(read_item(root, e["path"]), read_item(root, e["target"])))
        return filecmp.cmp(root / e["path"], root / e["target"], shallow=False)

    return {e["path"] for e in inputs if same(e)}


def _decode(root: Path, entry: dict[str, Any]) -> np.ndarray:
    from nsgen.io.formats import read_item
    u = read_item(root, entry["path"])
    lo, hi = entry["bounds"]
    return Bounds(float(lo), float(hi)).decode(u)


def _describe(entry: dict[str, Any]) -> str:
    """Three title lines: role and file name; index, shift...; bounds."""
    bits = [f"index {entry.get('index', '?')}"]
    for k in ("shift", "frame", "patch"):
        if k in entry:
            bits.append(f"{k} {entry[k]}")
    if "artefact" in entry:
        bits.append(f"{entry['artefact']} artefact")
    lo, hi = entry["bounds"]
    return (f"{entry['role']}: {Path(entry['path']).name}\n{', '.join(bits)}\n"
            f"bounds [{lo:.4g}, {hi:.4g}]")


def _save(fig: Any, out: Path) -> None:
    """Save a figure atomically as a PNG without date/version metadata."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}")
    try:
        # zlib level 3: twice as fast as the default 6 and no larger on these images
        fig.savefig(tmp, format="png", dpi=fig.dpi, metadata={"Software": None},
                    pil_kwargs={"compress_level": 3})
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render_preview(root: Path, manifest: dict[str, Any], out: Path,
                   pairs: int = DEFAULT_PAIRS) -> PreviewResult:
    """Draw a contact sheet of one sample and write it as a PNG.

    Parameters
    ----------
    root : Path
        Dataset root (manifest paths are relative to it).
    manifest : dict
        The sample's manifest (need not be written yet).
    out : Path
        PNG to write (atomically).
    pairs : int
        Rows of pairs (default 4); with no targets, ``pairs`` rows of
        :data:`GRID_COLUMNS` inputs.

    Returns
    -------
    PreviewResult

    Raises
    ------
    NsgenError
        When the sample has no files to show or ``pairs < 1``.
    """
    if pairs < 1:
        raise NsgenError(f"--pairs must be >= 1, got {pairs}")
    from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global state

    root = Path(root)
    files = manifest["files"]
    by_path = {f["path"]: f for f in files}
    inputs = [f for f in files if f.get("target") in by_path]
    tag = f"{manifest['sample']:04d}"
    head = (f"sample {tag} - mode {manifest['mode']} - seed {manifest['seed']} - "
            f"nsgen {manifest.get('nsgen_version', '?')}\n"
            f"{manifest.get('scale', 'values decoded with the manifest bounds')}; "
            f"image rows = angles, columns = detector columns")
    same = identical_inputs(root, inputs)
    if inputs:
        differ = [e for e in inputs if e["path"] not in same]
        rows_e = spread(differ, pairs)
        rows_e += spread([e for e in inputs if e["path"] in same], pairs - len(rows_e))
        head += (f"\n{len(same)} of {len(inputs)} pairs identical (input = target, nothing to "
                 f"learn){'; shown: pairs that differ' if differ and same else ''}")
        has_mask = any("mask" in e for e in rows_e)
        ncol = 4 if has_mask else 3
        nrow = len(rows_e)
    else:
        shown = [f for f in files if f["role"] != "mask"]
        if not shown:
            raise NsgenError(f"sample {tag} lists no image files; nothing to preview")
        rows_e = spread(shown, pairs * GRID_COLUMNS)
        ncol = min(GRID_COLUMNS, len(rows_e))
        nrow = -(-len(rows_e) // ncol)
    first = rows_e[0]["shape"]
    img_h, img_w = first[0], first[-1]
    w_px = min(max(img_w, MIN_PANEL[1]), MAX_PANEL[1])
    h_px = min(max(round(img_h * w_px / img_w), MIN_PANEL[0]), MAX_PANEL[0])
    smooth = "nearest" if (w_px >= img_w and h_px >= img_h) else "antialiased"
    # colour bars: pair rows have one after the stripe and one after the difference
    # panel, grid panels one each
    widths = [w_px + GAP_PX + (BAR_PX if (c in (1, 2) or not inputs) else 0)
              for c in range(ncol)]
    fig_w = GAP_PX + sum(widths)
    row_h = TITLE_PX + h_px + GAP_PX
    fig_h = HEAD_PX + (14 if inputs else 0) + nrow * row_h
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    fig.text(0.5, 1 - 6 / fig_h, head, ha="center", va="top", fontsize=9)
    lefts = np.concatenate([[GAP_PX], GAP_PX + np.cumsum(widths)[:-1]])
    shown_paths: list[str] = []
    panels = 0

    def rect(r: int, c: int, dx: float = 0.0,
             w: float | None = None) -> tuple[float, float, float, float]:
        x = lefts[c] + dx
        y = fig_h - nrow * row_h + r * row_h + TITLE_PX
        return (x / fig_w, 1 - (y + h_px) / fig_h, (w_px if w is None else w) / fig_w,
                h_px / fig_h)

    def show(r: int, c: int, img: np.ndarray, title: str, bar_for: bool, **kw: Any) -> None:
        nonlocal panels
        ax = fig.add_axes(rect(r, c))
        im = ax.imshow(img, interpolation=smooth, aspect="auto", **kw)
        ax.set_title(title, fontsize=7, pad=3)
        ax.set_xticks([])
        ax.set_yticks([])
        panels += 1
        if bar_for:
            cax = fig.add_axes(rect(r, c, dx=w_px + 4, w=9))
            cb = fig.colorbar(im, cax=cax)
            cb.ax.tick_params(labelsize=6, length=2, pad=1)
            cb.ax.yaxis.get_offset_text().set_fontsize(6)

    if inputs:
        for r, entry in enumerate(rows_e):
            target = by_path[entry["target"]]
            clean, stripe = _decode(root, target), _decode(root, entry)
            vmin = float(min(clean.min(), stripe.min()))
            vmax = float(max(clean.max(), stripe.max()))
            diff = stripe - clean
            amax = float(np.abs(diff).max())
            step = (entry["bounds"][1] - entry["bounds"][0]) / 65535
            lim = max(amax, step, 1e-12)   # an all-zero difference gets a +-1 step scale
            show(r, 0, clean, _describe(target), False, cmap="gray",
                 vmin=vmin, vmax=vmax)
            show(r, 1, stripe, _describe(entry), True, cmap="gray",
                 vmin=vmin, vmax=vmax)
            show(r, 2, diff, f"{entry['role']} - clean\n"
                 + (f"max |diff| {amax:.3g}" if amax > 0 else "identical (difference 0)")
                 + "\nred: input above target",
                 True, cmap="RdBu_r", vmin=-lim, vmax=lim)
            if has_mask:
                if "mask" in entry:
                    from nsgen.io.formats import read_item
                    mask = read_item(root, entry["mask"]) != 0
                    show(r, 3, mask, f"mask: {Path(entry['mask']).name}\n"
                         f"{mask.mean():.1%} of pixels\nwhite: stripe", False,
                         cmap="gray", vmin=0, vmax=1)
                else:
                    left, bottom, _, _ = rect(r, 3)
                    fig.text(left, bottom, "no mask", fontsize=7)
            shown_paths += [target["path"], entry["path"]]
    else:
        for i, entry in enumerate(rows_e):
            show(i // ncol, i % ncol, _decode(root, entry),
                 _describe(entry), True, cmap="gray")
            shown_paths.append(entry["path"])
    _save(fig, Path(out))
    return PreviewResult(Path(out), nrow, ncol, panels, tuple(shown_paths),
                         (int(fig_h), int(fig_w)), len(same), len(inputs))


def attach_preview(root: Path, manifest: dict[str, Any],
                   log: Callable[[str], None] | None = None) -> None:
    """Runner hook: write ``root/NNNN/preview.png`` and record it in the manifest.

    Sets ``manifest["preview"]`` to the PNG's path relative to ``root``. A failure to
    draw never fails the run: it is reported on stderr and the key is left out.
    """
    tag = f"{manifest['sample']:04d}"
    out = Path(root) / tag / PREVIEW
    try:
        render_preview(root, manifest, out)
    except Exception as exc:  # a preview must never cost a finished sample
        import logging   # the run's logger: the command prints "nsgen: warning: ..."
        logging.getLogger("nsgen").warning(f"warning: no preview for sample {tag} "
                                           f"({type(exc).__name__}: {exc})")
        return
    manifest["preview"] = f"{tag}/{PREVIEW}"
    if log is not None:
        log(f"[{tag}] preview: {out}")


def _parser() -> Any:
    from nsgen.config import OneLineParser
    p = OneLineParser(prog="nsgen preview",
                       description="Draw a PNG contact sheet of input/target pairs of one "
                                   "sample (clean | stripe | difference [| mask]).")
    p.add_argument("root", metavar="ROOT", nargs="?",
                   help="dataset root (the --root of the run; default: --root, NSGEN_ROOT "
                        "or the root of --config)")
    p.add_argument("--root", "-r", dest="root_option", help="the dataset root, as ROOT")
    p.add_argument("--sample", type=int, default=None,
                   help="sample number (default: the first sample of ROOT)")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="PNG to write (default ROOT/NNNN/preview.png)")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, metavar="K",
                   help=f"rows of pairs to draw (default {DEFAULT_PAIRS})")
    return p


def main(argv: Sequence[str]) -> int:
    """``nsgen preview ROOT [--sample N] [-o FILE] [--pairs K]``."""
    ns = _parser().parse_args(list(argv))
    if (ns.root or ns.root_option) is None:
        raise NsgenError("no dataset root; give it: nsgen preview ROOT")
    root = Path(ns.root or ns.root_option)
    if not root.is_dir():
        raise NsgenError(f"dataset root {root} is not a directory; give the --root of a run")
    if ns.sample is None:
        paths = manifest_paths(root)
        if not paths:
            raise NsgenError(f"no finished sample in {root} (no NNNN/{MANIFEST}); give the "
                             f"--root of a finished run")
        path = paths[0]
    else:
        path = root / f"{ns.sample:04d}" / MANIFEST
        if not path.exists():
            raise NsgenError(f"sample {ns.sample} of {root} is not finished ({path} missing); "
                             f"choose another --sample")
    manifest = read_manifest(path)
    problems = manifest_problems(manifest)
    if problems:
        raise NsgenError(f"manifest {path} is malformed ({problems[0]}); run 'nsgen check "
                         f"{root}'")
    out = Path(ns.output) if ns.output else path.parent / PREVIEW
    try:
        result = render_preview(root, manifest, out, ns.pairs)
    except OSError as exc:
        raise NsgenError(f"cannot draw the preview ({exc}); run 'nsgen check {root}'") from None
    identical = (f"; {result.identical} of {result.pairs} pairs identical (input = target)"
                 if result.pairs else "")
    print(f"{result.path}: {result.rows} rows x {result.columns} columns "
          f"({result.panels} panels){identical}")
    return 0
