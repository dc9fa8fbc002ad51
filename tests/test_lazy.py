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
jit = sorted(m for m in sys.modules if m.startswith("nsgen.prep._")
             and type(sys.modules[m]).__name__ == "module" and "jit" in m)
print(code, "numba" in sys.modules, jit)
"""


def test_nsgen_mask_runs_the_robust_detector_without_numba_in_the_main_process(tmp_path):
    scan = tmp_path / "s.nxs"
    write_scan(scan, n_angles=181, n_rows=8, n_columns=64)
    out = subprocess.run([sys.executable, "-P", "-c", _RUN, str(scan), str(tmp_path / "m.npz")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "0 False []", out.stdout + out.stderr
    assert (tmp_path / "m.npz").exists()


def test_a_lazy_module_runs_when_first_read_and_is_the_module_after():
    name = "nsgen.prep._robust_box_jit"
    done = name in sys.modules and type(sys.modules[name]).__name__ == "module"
    mod = kernels(name)
    assert kernels(name) is mod and sys.modules[name] is mod
    assert callable(mod.box_block)
    assert type(mod).__name__ == "module" and (done or mod.box_block.__module__ == name)
