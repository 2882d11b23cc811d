"""replication-chaos-harness: test and chaos harness for data replication over messaging.

The public Python API; see README.md for the CLI. Names are imported lazily, so a service
that imports only `harness.contract` does not load the whole harness.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BrokerError": "harness.errors",
    "ComponentStartError": "harness.errors",
    "ConfigError": "harness.errors",
    "FaultError": "harness.errors",
    "HarnessError": "harness.errors",
    "SetupError": "harness.errors",
    "WaitTimeout": "harness.errors",
    "RunResult": "harness.results",
    "ScenarioResult": "harness.results",
    "FaultStep": "harness.scenario",
    "Scenario": "harness.scenario",
    "RunSettings": "harness.settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
