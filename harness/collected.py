"""Everything a scenario's verdict is judged from, and how it is stored.

The runner fills a `Collected` from what it observed and saves it next to the run's
history; `harness check` loads it back and judges it again with the same pure functions
(harness/evaluation.py), so a stored run gives the same verdicts offline.

Every field is plain JSON data (lists, dicts, numbers, strings, None), a dataclass of such
fields, or a dict of such dataclasses by name. Each list, dict or dataclass field is one
file `<field>.json` in the scenario's folder, so the files stay readable with any tool;
scalars go in the manifest `collected.json`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from harness.checkers.run_checks import DEFAULT_MIN_WRITE_SHARE
from harness.consumers import consumer_key
from harness.errors import ConfigError

Rows = list[dict[str, Any]]

# Written last: its presence says every other file of the set is complete.
MANIFEST = "collected.json"
SCHEMA = 1


@dataclass(frozen=True)
class ConsumerObservation:
    """What the harness saw of one consumer by itself (harness/observers), beside what the
    consumer says about itself."""

    replica_db: Rows  # its replica table read from its database file, tombstones included
    samples: Rows  # its rows as they changed while the run went on; `t`: when read
    sample_reads: list[float]  # when each sampling read began
    sampler: dict[str, Any]  # the sampler's own status (reads, errors, why it stopped)
    queue: dict[str, Any] | None  # its queue's counters at the broker; None: unreadable
    queue_error: str = ""
    # Its resync reports (GET /resync): testimony, used only to excuse the ids a repair
    # rewrote and to find the high-water mark a full resync started from.
    resyncs: Rows = field(default_factory=list)


@dataclass(frozen=True)
class ConsumerData:
    """A consumer other than the first (whose data are Collected's own fields): what it
    says about itself, and what the harness saw of it."""

    replica: Rows  # as its API reported it
    deliveries: Rows
    initial_sync: bool  # its history before it subscribed arrived by full resync
    observed: ConsumerObservation | None = None
    # When it had subscribed (wall clock); None: with the system, before the load.
    joined_at: float | None = None


@dataclass(frozen=True)
class Collected:
    ops: Rows
    source: Rows
    replica: Rows
    published: Rows
    deliveries: Rows
    dead_letters: Rows
    broker_dead_letters: int | None
    faults: Rows  # fault records as injected (assessed here)
    faults_planned: int
    converged_after_s: float | None
    converge_timeout_s: float
    settle_s: float
    integrity: dict[str, Any] | None = None
    # Every consumer but the first, by component key (harness/consumers.py): consumer2, ...
    other_consumers: dict[str, ConsumerData] = field(default_factory=dict)
    # The broker tap's records and status (harness/observers/tap.py); None: no tap ran.
    tap: Rows | None = None
    tap_status: dict[str, Any] | None = None
    observed: ConsumerObservation | None = None  # the first consumer, observed
    # The workload's planned writes (max_ops) and the share of them that must succeed.
    writes_planned: int | None = None
    min_write_share: float = DEFAULT_MIN_WRITE_SHARE
    # Consumer key -> the restricted fields it was granted (harness/contract/grants.py);
    # a key missing (a run stored before grants existed): it could read everything.
    grants: dict[str, list[str]] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        """One JSON file per field, then the manifest naming them."""
        directory.mkdir(parents=True, exist_ok=True)
        files, scalars = [], {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = dataclasses.asdict(value)
            elif _dataclass_values(get_type_hints(type(self))[f.name]) is not None:
                value = {k: dataclasses.asdict(v) for k, v in value.items()}
            if isinstance(value, list | dict):
                (directory / f"{f.name}.json").write_text(json.dumps(value, default=str))
                files.append(f.name)
            else:
                scalars[f.name] = value
        (directory / MANIFEST).write_text(json.dumps(
            {"schema": SCHEMA, "files": files, "values": scalars}, indent=1))

    @classmethod
    def load(cls, directory: Path) -> Collected:
        """Rebuild from `save`'s files; a missing or malformed file is a ConfigError that
        names it (a stored run is user input to `harness check`)."""
        manifest = _read(directory / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
            raise ConfigError(str(directory / MANIFEST), "not a collected-data manifest of "
                              f"schema {SCHEMA}", "re-run the scenario with this version")
        hints = get_type_hints(cls)
        scalars = manifest.get("values", {})
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in scalars:
                values[f.name] = scalars[f.name]
                continue
            path = directory / f"{f.name}.json"
            if not path.exists():
                if f.default is not dataclasses.MISSING \
                        or f.default_factory is not dataclasses.MISSING:
                    continue  # stored by an older version without this optional field
                raise ConfigError(str(path), "is missing", "the stored run is incomplete; "
                                  "re-run the scenario")
            value = _read(path)
            by_name = _dataclass_values(hints[f.name])
            nested = _dataclass_in(hints[f.name])
            if by_name is not None:
                if not isinstance(value, dict):
                    raise ConfigError(str(path), f"expected an object of {by_name.__name__} "
                                      "by name", "restore the file or re-run the scenario")
                value = {k: _build(by_name, v, path) for k, v in value.items()}
            elif nested is not None and value is not None:
                value = _build(nested, value, path)
            values[f.name] = value
        second = directory / _SECOND_CONSUMER
        if "other_consumers" not in values and second.exists() \
                and (stored := _read(second)) is not None:
            # Stored before any number of consumers: the one other was consumer2.
            values["other_consumers"] = {consumer_key(1): _build(ConsumerData, stored, second)}
        return cls(**values)


T = TypeVar("T")
# Where runs stored before any number of consumers kept their second consumer's data.
_SECOND_CONSUMER = "second.json"


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "is missing",
                          "point `harness check` at a scenario folder of a finished run") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), f"cannot be read as JSON ({exc})",
                          "restore the file or re-run the scenario") from exc


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass inside `X | None`, if any (not inside `dict[str, X]`: see
    _dataclass_values)."""
    for candidate in getattr(hint, "__args__", (hint,)):
        if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
            return candidate
    return None


def _dataclass_values(hint: Any) -> type | None:
    """The dataclass D of `dict[str, D]`, if that is what `hint` is."""
    args: tuple[Any, ...] = getattr(hint, "__args__", ())
    if getattr(hint, "__origin__", None) is dict and len(args) == 2 \
            and dataclasses.is_dataclass(args[1]) and isinstance(args[1], type):
        return args[1]
    return None


def _build(kind: type[T], value: Any, path: Path) -> T:
    if not isinstance(value, dict):
        raise ConfigError(str(path), f"expected an object for {kind.__name__}",
                          "restore the file or re-run the scenario")
    hints = get_type_hints(kind)
    # A dataclass inside a dataclass (e.g. the second consumer's observation) is rebuilt too.
    value = {k: (_build(nested, v, path)
                 if k in hints and v is not None and (nested := _dataclass_in(hints[k]))
                 else v)
             for k, v in value.items()}
    try:
        return kind(**value)
    except TypeError as exc:
        raise ConfigError(str(path), f"does not fit {kind.__name__}: {exc}",
                          "restore the file or re-run the scenario") from exc
