"""Suite-wide hooks: tests marked ``shared_data`` need a path of the shared folder."""

from __future__ import annotations

import pytest

from helpers import shared_path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared_data(path): needs ../shared/<path> beside the repository root "
        "(skips with its reason when missing; fails under CI=true)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared_data"):
        shared_path(mark.args[0])
