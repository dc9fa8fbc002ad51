"""The one line every generation run ends with: samples, files, bytes, time, where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nsgen.diskspace import human
from nsgen.io.manifest import MANIFEST


def sample_totals(root: Path, samples: list[int]) -> tuple[int, int]:
    """Files and bytes the manifests of ``samples`` list (preview included)."""
    files = size = 0
    for s in samples:
        try:
            m = json.loads((root / f"{s:04d}" / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        paths = [f["path"] for f in m.get("files", [])] + ([m["preview"]] if m.get("preview") else [])
        for p in paths:
            try:
                size += (root / p).stat().st_size
                files += 1
            except OSError:
                pass
    return files, size


def _range(samples: list[int]) -> str:
    return f"{samples[0]:04d}" if len(samples) == 1 else f"{samples[0]:04d}..{samples[-1]:04d}"


def summary_line(config: Any, done: list[int], seconds: float) -> str:
    """``nsgen: made 2 samples (0000..0001): 66 files, 19.2 MB in 5.3 s under /abs/root``
    (sizes in decimal units, :func:`~nsgen.diskspace.human`).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> c = SimpleNamespace(root=Path("/nonexistent"), start=3, samples=1)
    >>> print(summary_line(c, [], 0.1))  # doctest: +NORMALIZE_WHITESPACE
    nsgen: nothing to do: sample 0003 finished earlier under /nonexistent with these options
    (remove it to make it again)
    """
    root = Path(config.root).absolute()
    if not done:
        wanted = list(range(config.start, config.start + config.samples))
        it = "them" if len(wanted) > 1 else "it"   # --overwrite replaces other options' only
        return (f"nsgen: nothing to do: sample{'s' if len(wanted) > 1 else ''} {_range(wanted)} "
                f"finished earlier under {root} with these options (remove {it} to make {it} "
                f"again)")
    files, size = sample_totals(root, done)
    return (f"nsgen: made {len(done)} sample{'s' if len(done) > 1 else ''} ({_range(done)}): "
            f"{files} files, {human(size)} in {seconds:.1f} s under {root}")
