"""A script read from standard input cannot start nsgen's processes: one clear error."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from nsgen.errors import NsgenError
from nsgen.mainscript import STDIN_SCRIPT, UNGUARDED_SCRIPT, check_main_importable


def test_main_modules_children_can_or_cannot_import(tmp_path: Path) -> None:
    check_main_importable(types.ModuleType("__main__"))   # python -c, Jupyter: no file
    by_name = types.ModuleType("__main__")
    by_name.__file__ = "/nowhere/x.py"
    by_name.__spec__ = types.SimpleNamespace(name="nsgen.cli")  # python -m: imported by name
    check_main_importable(by_name)
    script = tmp_path / "run.py"
    script.write_text("")
    saved = types.ModuleType("__main__")
    saved.__file__ = str(script)
    check_main_importable(saved)
    stdin = types.ModuleType("__main__")
    stdin.__file__ = "<stdin>"
    with pytest.raises(NsgenError, match="read from standard input .* save the script to a file"):
        check_main_importable(stdin)


def _stdin_script(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True,
                          cwd=cwd, timeout=600)


@pytest.mark.parametrize("call", [
    "nsgen.generate(mode='simple', size=16, shifts=2, root='out', preview=False, workers=1)",
    "write_scan('out', n_angles=40, n_rows=4, n_columns=64, workers=2)",
])
def test_an_api_script_from_stdin_fails_with_one_clear_error(tmp_path: Path, call: str) -> None:
    code = ("import nsgen\nfrom nsgen.io.scan_writer import write_scan\n"
            f"try:\n    {call}\nexcept nsgen.NsgenError as e:\n    print(e)\n    raise SystemExit(2)\n")
    run = _stdin_script(code, tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stdout.strip() == STDIN_SCRIPT.format(name="<stdin>")
    assert "exited with status" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_the_same_script_saved_to_a_file_runs(tmp_path: Path) -> None:
    script = tmp_path / "make.py"
    script.write_text("from nsgen.io.scan_writer import write_scan\n"
                      "if __name__ == '__main__':\n"
                      "    write_scan('out.nxs', n_angles=40, n_rows=4, n_columns=64, workers=2)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.nxs").is_file()


def test_make_scan_from_an_unguarded_script_is_one_clear_error(tmp_path: Path) -> None:
    """A compressed scan's frames come from worker processes: each would run the script, and
    write_scan, again: it ends itself silently and the parent names the missing guard (no
    child traceback, no leaked semaphores). The default layout's frames come from threads:
    the same script without compression runs."""
    script = tmp_path / "make.py"
    script.write_text("from nsgen.io.scan_writer import write_scan\n"
                      "write_scan('plain.nxs', n_angles=40, n_rows=4, n_columns=64, workers=2)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    (tmp_path / "plain.nxs").unlink()
    script.write_text("from nsgen.io.scan_writer import write_scan\n"
                      "write_scan('out.nxs', n_angles=40, n_rows=4, n_columns=64, workers=2,\n"
                      "           compression='gzip')\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[-1] == f"nsgen.errors.NsgenError: {UNGUARDED_SCRIPT}"
    assert "bootstrapping" not in run.stderr and "leaked" not in run.stderr
    assert sum(line.startswith("Traceback") for line in lines) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["make.py"]  # nothing written
