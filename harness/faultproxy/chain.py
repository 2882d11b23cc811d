"""A proxy's toxics, per direction, and their propagation to live connections."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from harness.faultproxy.toxics import DIRECTIONS, Direction, Toxic

if TYPE_CHECKING:
    from harness.faultproxy.connection import Connection


class ToxicCollection:
    """Ordered toxic chains for one proxy; every change reaches open connections too."""

    def __init__(self) -> None:
        self._chains: dict[Direction, list[Toxic]] = {d: [] for d in DIRECTIONS}
        self._connections: set[Connection] = set()
        self._seq = itertools.count(1)

    def all(self) -> list[Toxic]:
        """Upstream toxics first, then downstream, each in insertion order (as listed)."""
        return [toxic for direction in DIRECTIONS for toxic in self._chains[direction]]

    def chain(self, direction: Direction) -> list[Toxic]:
        return list(self._chains[direction])

    def get(self, name: str) -> Toxic | None:
        for toxic in self.all():
            if toxic.name == name:
                return toxic
        return None

    def add(self, toxic: Toxic) -> None:
        toxic.seq = next(self._seq)
        self._chains[toxic.direction].append(toxic)
        for connection in list(self._connections):
            link = connection.links.get(toxic.direction)
            if link is not None:
                link.add_toxic(toxic)

    def update(self, toxic: Toxic, attributes: dict[str, int], toxicity: float | None) -> None:
        toxic.attributes.update(attributes)
        if toxicity is not None:
            toxic.toxicity = toxicity
        for connection in list(self._connections):
            link = connection.links.get(toxic.direction)
            if link is not None:
                link.update_toxic(toxic)

    def remove(self, name: str) -> bool:
        toxic = self.get(name)
        if toxic is None:
            return False
        self._chains[toxic.direction].remove(toxic)
        for connection in list(self._connections):
            link = connection.links.get(toxic.direction)
            if link is not None:
                link.remove_toxic(toxic)
        return True

    def clear(self) -> None:
        for toxic in self.all():
            self.remove(toxic.name)

    def attach(self, connection: Connection) -> None:
        self._connections.add(connection)

    def detach(self, connection: Connection) -> None:
        self._connections.discard(connection)
