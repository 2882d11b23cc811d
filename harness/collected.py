"""Everything a scenario's verdict is judged from, and how it is stored.

The runner fills a `Collected` from what it observed and saves it next to the run's
history; `harness check` loads it back and judges it again with the same pure functions
(harness/evaluation.py), so a stored run gives the same verdicts offline.

Every field is plain JSON data (lists, dicts, numbers, strings, None) or a dataclass of
such fields. Each list, dict or dataclass field is one file `<field>.json` in the
scenario's folder, so the files stay readable with any tool; scalars go in the manifest
`collected.json`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from harness.errors import ConfigError

Rows = list[dict[str, Any]]

# Written last: its presence says every other file of the set is complete.
MANIFEST = "collected.json"
SCHEMA = 1


@dataclass(frozen=True)
class SecondConsumerData:
    replica: Rows
    deliveries: Rows
    initial_sync: bool  # its history before it subscribed arrived by full resync


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
    second: SecondConsumerData | None = None

    def save(self, directory: Path) -> None:
        """One JSON file per field, then the manifest naming them."""
        directory.mkdir(parents=True, exist_ok=True)
        files, scalars = [], {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = dataclasses.asdict(value)
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
                if f.default is not dataclasses.MISSING:
                    continue  # stored by an older version without this optional field
                raise ConfigError(str(path), "is missing", "the stored run is incomplete; "
                                  "re-run the scenario")
            value = _read(path)
            nested = _dataclass_in(hints[f.name])
            if nested is not None and value is not None:
                value = _build(nested, value, path)
            values[f.name] = value
        return cls(**values)


T = TypeVar("T")


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
    """The dataclass inside `X | None`, if any."""
    for candidate in getattr(hint, "__args__", (hint,)):
        if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
            return candidate
    return None


def _build(kind: type[T], value: Any, path: Path) -> T:
    if not isinstance(value, dict):
        raise ConfigError(str(path), f"expected an object for {kind.__name__}",
                          "restore the file or re-run the scenario")
    try:
        return kind(**value)
    except TypeError as exc:
        raise ConfigError(str(path), f"does not fit {kind.__name__}: {exc}",
                          "restore the file or re-run the scenario") from exc
