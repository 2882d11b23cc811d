"""Faults: objects with inject() and an idempotent heal().

The runner pushes heal() of every injected fault on an ExitStack, so a fault is healed on
every exit path (failure, Ctrl-C) even when its scheduled heal never came. After healing,
`evidence()` says whether the fault was observed to affect its target: a fault nobody
noticed proves nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Evidence:
    verified: bool
    description: str


class Fault(ABC):
    name: str

    @abstractmethod
    def inject(self) -> None: ...

    @abstractmethod
    def heal(self) -> None:
        """Undo the fault. Safe to call twice, and safe if inject() failed halfway."""

    @abstractmethod
    def evidence(self) -> Evidence: ...
