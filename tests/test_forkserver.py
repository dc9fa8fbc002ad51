"""nsgen.engine.forkserver: the one list of what the engine's forkserver imports, from a
module the command line can import before anything else."""

from __future__ import annotations

import importlib

from nsgen.engine import forkserver
from nsgen.prestart import MODES

from helpers import python_output


def test_importing_it_imports_nothing_but_the_standard_library():
    new = python_output(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import nsgen.engine.forkserver\n"
        "print(' '.join(sorted(m for m in set(sys.modules) - before\n"
        "                      if m.partition('.')[0] not in sys.stdlib_module_names)))\n")
    assert new.split() == ["nsgen", "nsgen.engine", "nsgen.engine.forkserver"]


def test_the_engine_imports_nothing_of_the_command_line():
    """Every module of the engine imported: neither the command line's modules nor the
    runner above it come along (the engine is the layer below them)."""
    out = python_output(
        "import pkgutil, sys, importlib, nsgen.engine\n"
        "for m in pkgutil.iter_modules(nsgen.engine.__path__):\n"
        "    importlib.import_module(f'nsgen.engine.{m.name}')\n"
        "print(' '.join(m for m in ('nsgen.prestart', 'nsgen.cli', 'nsgen.options',\n"
        "                           'nsgen.runner', 'nsgen.config') if m in sys.modules))\n")
    assert out == ""


def test_every_modes_preload_is_its_module_with_an_engine_preload():
    for mode in MODES:
        (name,) = forkserver.mode_preload(mode)
        assert name.startswith(forkserver.MODE_PACKAGE + ".")
        assert importlib.import_module(name).ENGINE_PRELOAD[0] == name


def test_the_preload_ends_with_the_mode_list_and_the_fast_exit():
    names = forkserver.forkserver_preload(["a", "b"])
    assert names[-4:] == ["a", "b", "nsgen.engine.preload", "nsgen.engine.fastexit"]
    for name in names:
        if name not in ("a", "b"):
            importlib.import_module(name)


def test_the_mask_preload_follows_the_detector_the_parser_picks():
    """``nsgen mask``'s early forkserver: Larix's options as the parser's, the detector as
    :func:`nsgen.prep.detect.choose_detector` picks it from the parsed options."""
    from nsgen.mask import build_parser, larix_options_given
    from nsgen.prep.detect import choose_detector
    from nsgen.stages.robust import ROBUST_PRELOAD

    assert tuple(forkserver.mask_preload("robust")) == ROBUST_PRELOAD
    base = ["--h5", "s.nxs", "-a", "m.npz"]
    for extra in ([], ["--detector", "larix"], ["--detector=robust"], ["--weights"],
                  ["--threshold", "0.5"], ["--min-stripe-depth", "20"],
                  ["--radius=2", "--detector", "larix"]):
        args = build_parser().parse_args(base + extra)
        want = choose_detector(args.detector, larix_options_given(args))
        assert forkserver.mask_preload(forkserver.guess_mask_detector(base + extra)) == \
            forkserver.mask_preload(want), extra
