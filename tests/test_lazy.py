"""The main process of ``nsgen mask`` plans the robust detector's passes without importing
Numba (nsgen.prep._lazy): its kernel modules run where the kernels do."""

from __future__ import annotations

import subprocess
import sys

from nsgen.io.scan_writer import write_scan
from nsgen.prep._lazy import kernels

_RUN = """
import sys
from nsgen.cli import main
code = main(["mask", "--h5", sys.argv[1], "-a", sys.argv[2], "--workers", "1"])
jit = sorted(m for m in sys.modules if m.startswith("nsgen.prep._") and "jit" in m)
print(code, "numba" in sys.modules, jit)
"""


def test_nsgen_mask_runs_the_robust_detector_without_numba_in_the_main_process(tmp_path):
    scan = tmp_path / "s.nxs"
    write_scan(scan, n_angles=181, n_rows=8, n_columns=64)
    out = subprocess.run([sys.executable, "-P", "-c", _RUN, str(scan), str(tmp_path / "m.npz")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "0 False []", out.stdout + out.stderr
    assert (tmp_path / "m.npz").exists()


_FIRST_READ = """
import sys
from nsgen.prep._lazy import kernels
mod = kernels("nsgen.prep._robust_box_jit")
before = "nsgen.prep._robust_box_jit" in sys.modules or "numba" in sys.modules
print(before, mod.box_block is sys.modules["nsgen.prep._robust_box_jit"].box_block)
"""


def test_kernels_import_their_module_when_first_read_and_read_its_attributes(monkeypatch):
    out = subprocess.run([sys.executable, "-P", "-c", _FIRST_READ], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    from nsgen.prep import _robust_plan
    mod = kernels("nsgen.prep._robust_plan")
    monkeypatch.setattr(_robust_plan, "ROW_GROUP", 5)
    assert mod.ROW_GROUP == 5 and mod.template is _robust_plan.template
