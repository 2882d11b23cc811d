"""Run settings: what every scenario of one `harness run` shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.brokers.registry import BROKERS as BROKER_PLUGINS
from harness.errors import ConfigError
from harness.variants import Variant, resolve_variant

BROKERS = tuple(BROKER_PLUGINS)
RUNTIMES = ("processes",)


@dataclass(frozen=True)
class RunSettings:
    seed: int
    broker: str = "rabbitmq"
    runtime: str = "processes"
    variant: str = "none"
    report_root: Path = Path("reports")

    def __post_init__(self) -> None:
        if self.broker not in BROKERS:
            raise ConfigError("--broker", f"unsupported broker {self.broker!r}",
                              f"use one of: {', '.join(BROKERS)}")
        if self.runtime not in RUNTIMES:
            raise ConfigError("--runtime", f"unsupported runtime {self.runtime!r}",
                              f"use one of: {', '.join(RUNTIMES)}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError("--seed", f"{self.seed} is out of range",
                              "give an integer between 0 and 2**63-1")
        resolve_variant(self.variant)

    @property
    def bug(self) -> Variant | None:
        return resolve_variant(self.variant)

    def variant_for(self, service: str) -> str:
        bug = self.bug
        return bug.name if bug is not None and bug.service == service else "none"
