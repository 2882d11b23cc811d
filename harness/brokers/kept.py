"""One broker kept running across many runs, each lent a namespace of its own.

`harness explore` runs dozens of short examples back to back. Starting and stopping a
broker for each costs about 5 s of the 15-20 s an example takes, so a search keeps one and
lends every run a namespace (a RabbitMQ virtual host): the run's services, its tap and its
queues live there, and the namespace is deleted with everything in it when the run ends.
A process fault on the broker acts on the kept broker itself, and its heal brings it back
before the next run. A broker whose plugin has no namespaces (Kafka here) is not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from harness.brokers.registry import BrokerLease, BrokerPlugin, StartedBroker
from harness.errors import SetupError
from harness.runtime.base import Network
from harness.runtime.processes import EventSink
from harness.runtime.registry import RuntimeChoice

# Namespaces made in one go when none is left: one call for ten runs.
MADE_AT_ONCE = 10
# How long closing waits for a namespace still being deleted (rabbitmqctl's own timeout).
DELETE_JOIN_S = 10.0


class KeptBroker:
    """The broker of `plugin`, started once through the runtime `choice` in `folder`;
    `run_id` labels what it starts (containers: removed by it when it closes)."""

    def __init__(self, plugin: BrokerPlugin, choice: RuntimeChoice, folder: Path,
                 run_id: str) -> None:
        if plugin.lend is None:
            raise SetupError(f"the {plugin.name} broker has no namespaces to lend a run; "
                             "every run starts its own")
        self.plugin = plugin
        folder.mkdir(parents=True, exist_ok=True)
        self._sink: EventSink | None = None  # the current run's history, while it runs
        self._runtime = choice.create(folder, run_id, on_event=self._forward)
        self._started: StartedBroker | None = None
        self.lent = 0
        self._spare: list[BrokerLease] = []  # namespaces made and not lent yet
        self._deleting: list[threading.Thread] = []

    @property
    def network(self) -> Network:
        """Its runtime's network, which each borrowing run's components join to reach it."""
        return self._runtime.network

    @staticmethod
    def possible(plugin: BrokerPlugin) -> bool:
        return plugin.lend is not None

    def _forward(self, what: str, data: Mapping[str, object]) -> None:
        # A kill and restart of the broker belongs in the history of the run that did it.
        if self._sink is not None:
            self._sink(what, data)

    def start(self) -> None:
        self._started = self.plugin.start(self._runtime, "broker")

    def lend(self, on_event: EventSink) -> BrokerLease:
        """A fresh namespace for one run, whose broker lifecycle events go to `on_event`
        until the lease is closed. Closing it deletes the namespace in the background,
        while the next run starts."""
        assert self.plugin.lend is not None and self._started is not None, "start() first"
        broker = self._started.component
        if not broker.is_running():
            # An earlier run's heal failed (its run reported that): start it again rather
            # than fail every run after it.
            broker.start()
        if not self._spare:
            first = self.lent + 1
            self._spare = self.plugin.lend(
                self._started, [f"run-{n}" for n in range(first, first + MADE_AT_ONCE)])
        lease = self._spare.pop(0)
        self.lent += 1
        self._sink = on_event

        def close() -> None:
            self._sink = None
            deleting = threading.Thread(target=lease.close, name=f"delete {lease.namespace}",
                                        daemon=True)
            deleting.start()
            self._deleting = [*(t for t in self._deleting if t.is_alive()), deleting]

        return BrokerLease(lease.started, lease.namespace, lease.service_url, close)

    def await_deletions(self) -> None:
        """Wait until the namespaces of closed leases are deleted."""
        for deleting in self._deleting:
            deleting.join(DELETE_JOIN_S)

    def close(self) -> None:
        """Stop the broker (and anything else its runtime started)."""
        self.await_deletions()
        if self._started is not None:
            self._started.adapter.close()
        self._runtime.close()
