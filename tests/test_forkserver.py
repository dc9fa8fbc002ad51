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
