"""Suite-wide hooks: tests marked ``shared_data`` need a path of the shared folder; the
processes tests start (``python -m nsgen``, ``python -c``) import this checkout's nsgen; a
labelled scan shared by the robust detector's stage tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO, shared_path

# a subprocess would otherwise import whichever nsgen is installed (another checkout's,
# when the tests run in a work tree beside it)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared_data(path): needs ../shared/<path> beside the repository root "
        "(skips with its reason when missing; fails under CI=true)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared_data"):
        shared_path(mark.args[0])


@pytest.fixture(scope="session")
def robust_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled scan of 6 angle blocks, 360 x 20 x 96 (stripes over part of the scan
    among them), made once per test process (``tests/test_robust.py``,
    ``tests/test_robust_scratch.py``)."""
    from nsgen.io.scan_writer import write_scan
    path = tmp_path_factory.mktemp("robust") / "5000.nxs"
    write_scan(path, n_angles=360, n_rows=20, n_columns=96, seed=7, labelled=True)
    return path
