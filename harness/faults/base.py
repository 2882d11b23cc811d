"""Faults: objects with inject() and an idempotent heal().

The runner pushes heal() of every injected fault on an ExitStack, so a fault is healed on
every exit path (failure, Ctrl-C) even when its scheduled heal never came. After healing,
`evidence()` says whether the fault was observed to affect its target: a fault nobody
noticed proves nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Evidence:
    verified: bool
    description: str


class Fault(ABC):
    name: str
    # Whether replication lag must show this fault (outages, throttles, holds). A fault
    # that corrupts or drops data instead is judged by its own evidence.
    slows_replication: bool = True
    # Whether it makes the system store wrong data on purpose (a consumer defect, a relay
    # sending altered events): rows written while it is live are excused from the
    # version-consistency check. Recorded in the fault's details().
    corrupts_data: bool = False

    @abstractmethod
    def inject(self) -> None: ...

    @abstractmethod
    def heal(self) -> None:
        """Undo the fault. Safe to call twice, and safe if inject() failed halfway."""

    @abstractmethod
    def evidence(self) -> Evidence: ...

    def details(self) -> dict[str, Any]:
        """Extra data for the fault's record (e.g. what was injected, for checkers)."""
        return {}
