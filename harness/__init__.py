"""replication-chaos-harness: test and chaos harness for data replication over messaging.

The public Python API; see README.md for the CLI.
"""

from harness.errors import (
    BrokerError,
    ComponentStartError,
    ConfigError,
    FaultError,
    HarnessError,
    SetupError,
    WaitTimeout,
)
from harness.results import RunResult, ScenarioResult
from harness.scenario import FaultStep, Scenario
from harness.settings import RunSettings

__all__ = [
    "BrokerError",
    "ComponentStartError",
    "ConfigError",
    "FaultError",
    "FaultStep",
    "HarnessError",
    "RunResult",
    "RunSettings",
    "Scenario",
    "ScenarioResult",
    "SetupError",
    "WaitTimeout",
]
