"""Where a search keeps what it found: the confirmed failing examples of earlier searches,
tried first by the next search with the same broker and variant, and each search's own
folder with its minimal case as a scenario file."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from harness.errors import ConfigError
from harness.explore.schedule import Example
from harness.scenario_file import dump, load_file

MINIMAL = "minimal.toml"


class ExampleStore:
    """Failing examples as scenario files, one per example, in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self) -> list[Example]:
        """Every stored example that still reads as a valid scenario (one that no longer
        does, e.g. after a fault action was renamed, is skipped: it cannot be replayed)."""
        found = []
        for path in sorted(self.root.glob("*.toml")):
            try:
                found.append(Example.from_scenario(load_file(path)))
            except (ConfigError, ValueError):
                continue
        return found

    def save(self, example: Example) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(example)
        path.write_text(dump(example.scenario()), encoding="utf-8")
        return path

    def _path(self, example: Example) -> Path:
        return self.root / f"{hashlib.sha256(example.key().encode()).hexdigest()[:16]}.toml"

    def discard(self, example: Example) -> None:
        """Forget a stored example (it passed: the bug it showed is gone)."""
        self._path(example).unlink(missing_ok=True)


def replay_command(path: Path, variant: str, seed: int, broker: str, db: str) -> str:
    """The `harness run` line that runs the scenario file at `path` as the search ran it."""
    return (f"harness run --scenario-file {path} --seed {seed}"
            + (f" --variant {variant}" if variant != "none" else "")
            + (f" --broker {broker}" if broker != "rabbitmq" else "")
            + (f" --db {db}" if db != "sqlite" else ""))


def write_minimal(folder: Path, example: Example, header: Sequence[str]) -> Path:
    """The minimal failing example as a scenario file in `folder`, under a comment block
    made of the `header` lines."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MINIMAL
    comment = "".join(f"# {line}\n" for line in header) + "\n"
    path.write_text(comment + dump(example.scenario()), encoding="utf-8")
    return path
