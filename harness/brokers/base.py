"""Broker adapters: what the harness itself does to a broker, whatever the broker is.

The reference services have their own client code; an adapter is the harness's side:
observing queues and consumer lag, and the broker-level operations faults use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueState:
    ready: int  # waiting for a consumer
    consumers: int


class BrokerAdapter(ABC):
    kind: str

    @abstractmethod
    def wait_ready(self, timeout_s: float) -> None: ...

    @abstractmethod
    def consumer_queue(self, consumer_name: str) -> QueueState:
        """Backlog and attached consumers of one consumer's subscription."""

    @abstractmethod
    def purge(self, consumer_name: str) -> int:
        """Drop every message waiting for that consumer; returns how many were dropped."""

    @abstractmethod
    def close(self) -> None: ...
