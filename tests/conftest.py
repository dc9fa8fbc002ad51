"""Suite-wide hooks: tests marked ``shared_data`` need a path of the shared folder; the
processes tests start (``python -m nsgen``, ``python -c``) import this checkout's nsgen."""

from __future__ import annotations

import os

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
