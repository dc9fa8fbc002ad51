"""Every run ends with one summary line, with or without a terminal; -q silences it."""

from __future__ import annotations

from pathlib import Path

from helpers import nsgen
from nsgen.diskspace import human

ARGS = ("-m", "simple", "-N", "16", "-o", "2", "--workers", "1")


def test_summary_line_without_a_terminal_and_quiet(tmp_path: Path) -> None:
    r = nsgen(*ARGS, "-S", "2", "-r", str(tmp_path / "o"))     # stderr is a pipe here
    total = sum(p.stat().st_size for p in (tmp_path / "o").rglob("*") if p.is_file()
                and p.suffix in (".tif", ".png"))
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("nsgen: made 2 samples (0000..0001): 66 files, ")
    assert f", {human(total)} in " in line and line.endswith(f"under {tmp_path / 'o'}")
    r = nsgen(*ARGS, "-S", "2", "-r", str(tmp_path / "o"))
    assert r.stderr.startswith("nsgen: nothing to do: samples 0000..0001 finished earlier")
    r = nsgen(*ARGS, "-r", str(tmp_path / "q"), "-q")
    assert r.stderr == "" and (tmp_path / "q" / "0000" / "manifest.json").exists()


def test_mask_says_what_it_wrote(tmp_path: Path) -> None:
    from nsgen.io.scan_writer import write_scan

    write_scan(tmp_path / "5.nxs", n_angles=61, n_rows=12, n_columns=40, seed=1)
    r = nsgen("mask", "--h5", str(tmp_path / "5.nxs"), "-a", str(tmp_path / "m.npz"),
              "--median-size", "10", "--min-stripe-length", "30", "--min-stripe-depth", "2",
              "--min-stripe-width", "2", "--workers", "1")
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith(f"nsgen mask: wrote {tmp_path / 'm.npz'}[m5]: ")
    assert "61 x 12 x 40 mask" in line and (tmp_path / "m.npz").exists()
