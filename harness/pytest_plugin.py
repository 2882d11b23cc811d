"""pytest plugin (registered by entry point): options and fixtures for scenario tests.

Nothing heavy is imported at load time: pytest loads this for every project in the venv.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.settings import RunSettings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("replication-chaos-harness")
    group.addoption("--harness-seed", type=int, default=None,
                    help="seed for scenario tests (default: fixed per test)")
    group.addoption("--harness-broker", default="rabbitmq", help="broker for scenario tests")


@pytest.fixture
def harness_settings(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> RunSettings:
    """RunSettings for a test; reports go to a temporary directory."""
    from harness.settings import RunSettings

    seed = request.config.getoption("--harness-seed")
    return RunSettings(seed=seed if seed is not None else 1234,
                       broker=request.config.getoption("--harness-broker"),
                       report_root=tmp_path_factory.mktemp("reports"))
