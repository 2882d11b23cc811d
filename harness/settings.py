"""Run settings: what every scenario of one `harness run` shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.brokers.registry import BROKERS as BROKER_PLUGINS
from harness.errors import ConfigError
from harness.runtime.postgres_node import INSTALL_HINT, find_postgres
from harness.runtime.registry import RUNTIMES
from harness.variants import DBS, Variant, resolve_variant

BROKERS = tuple(BROKER_PLUGINS)


@dataclass(frozen=True)
class RunSettings:
    seed: int
    broker: str = "rabbitmq"
    # "auto" is resolved once per run (harness/runtime/registry.py); a run's reports
    # record the runtime it resolved to.
    runtime: str = "processes"
    variant: str = "none"
    report_root: Path = Path("reports")
    # The reference services' database: SQLite files (embedded), or a private PostgreSQL
    # server per scenario (harness/runtime/postgres_node.py).
    db: str = "sqlite"

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
        if self.db not in DBS:
            raise ConfigError("--db", f"unsupported database {self.db!r}",
                              f"use one of: {', '.join(DBS)}")
        # Checked early for processes only: the containers runtime runs the image's
        # PostgreSQL, and auto, when it falls back to processes, meets the same check
        # when the cluster is made (PostgresNode).
        if self.db == "postgres" and self.runtime == "processes" and find_postgres() is None:
            raise ConfigError("--db", "PostgreSQL is not installed (no initdb and postgres "
                              "under /usr/lib/postgresql/<version>/bin)", INSTALL_HINT)
        resolve_variant(self.variant, self.broker, self.db)

    @property
    def bug(self) -> Variant | None:
        return resolve_variant(self.variant, self.broker, self.db)

    def variant_for(self, service: str) -> str:
        bug = self.bug
        return bug.name if bug is not None and bug.service == service else "none"
