#!/usr/bin/env python
"""Before/after byte identity: run the same ``nsgen`` command with two source trees and
compare every output file byte for byte (manifests by their file records and scale).

    python scripts/same_bytes.py BEFORE_TREE AFTER_TREE -- -m raw --hdf-root scan.nxs -s 1

Each tree is put first on ``PYTHONPATH`` (as the worktrees of this repository are run).
Prints the number of files compared and every difference; exits 1 on any difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: manifest keys that may differ between the runs (where and by which release it happened)
VOLATILE = {"config", "nsgen_version", "output_revision", "sources"}


def run(tree: str, args: list[str], root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": tree}
    # -P: the working directory is not put first on sys.path (a checkout there would win)
    subprocess.run([sys.executable, "-P", "-m", "nsgen", *args, "-r", str(root), "--no-progress",
                    "--no-preview"], env=env, check=True)


def manifest_view(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in VOLATILE}


def compare(a: Path, b: Path) -> tuple[int, list[str]]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    diffs = [f"only in before: {p}" for p in sorted(files_a - files_b)]
    diffs += [f"only in after: {p}" for p in sorted(files_b - files_a)]
    for p in sorted(files_a & files_b):
        if p.name == "manifest.json":
            same = manifest_view(a / p) == manifest_view(b / p)
        else:
            same = (a / p).read_bytes() == (b / p).read_bytes()
        if not same:
            diffs.append(f"differs: {p}")
    return len(files_a & files_b), diffs


def main() -> None:
    if "--" not in sys.argv or sys.argv.index("--") != 3:
        raise SystemExit(__doc__)
    before, after, args = sys.argv[1], sys.argv[2], sys.argv[4:]
    with tempfile.TemporaryDirectory() as d:
        ra, rb = Path(d) / "before", Path(d) / "after"
        run(before, args, ra)
        run(after, args, rb)
        n, diffs = compare(ra, rb)
    for line in diffs:
        print(line)
    print(f"{' '.join(args)}: {n} files compared, {len(diffs)} differences")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
