"""The system under test for one scenario: a broker, a fault proxy carrying every link, the
publisher and the consumer, started through whichever runtime the run uses, plus HTTP
clients to read their state."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.brokers.base import BrokerAdapter, QueueCounters
from harness.brokers.registry import broker_plugin
from harness.contract.client import ConsumerClient, PublisherClient
from harness.contract.envelope import from_event
from harness.contract.naming import queue_name
from harness.faults.network import ClientProbe
from harness.links import (
    CONSUMER2_BROKER,
    CONSUMER2_PUBLISHER,
    CONSUMER_BROKER,
    CONSUMER_PUBLISHER,
    RELAY_BROKER,
    Links,
)
from harness.observers.replica_db import read_replica
from harness.observers.sampler import ReplicaSampler
from harness.observers.tap import BrokerTap
from harness.runtime.base import Component, Runtime, ServiceSpec
from harness.runtime.ports import free_port
from harness.settings import RunSettings
from harness.waiting import wait_until

CONSUMER_NAME = "orders"
# Component key -> the consumer's name (its queue is <name>.product-events).
CONSUMER_NAMES = {"consumer": CONSUMER_NAME, "consumer2": "orders2"}
_CONSUMER_LINKS = {"consumer": (CONSUMER_BROKER, CONSUMER_PUBLISHER),
                   "consumer2": (CONSUMER2_BROKER, CONSUMER2_PUBLISHER)}
# How long collecting waits for the broker tap to record what the broker still holds for
# it: by then the replicas have converged, so it is only the last poll's worth.
TAP_DRAIN_S = 15.0


class SystemUnderTest:
    def __init__(self, runtime: Runtime, settings: RunSettings, work_dir: Path,
                 consumer_args: tuple[str, ...] = ()) -> None:
        self.consumer_args = consumer_args
        self.runtime = runtime
        self.settings = settings
        self.plugin = broker_plugin(settings.broker)
        self.work_dir = work_dir
        self.components: dict[str, Component] = {}
        self.adapter: BrokerAdapter | None = None
        self.publisher_api: PublisherClient | None = None
        self.consumer_apis: dict[str, ConsumerClient] = {}
        # The harness's own observers (harness/observers): one broker tap, and a sampler
        # of each consumer's replica database.
        self.tap: BrokerTap | None = None
        self.samplers: dict[str, ReplicaSampler] = {}

    # -- start / stop -----------------------------------------------------------------
    def start(self) -> None:
        started = self.plugin.start(self.runtime, "broker")
        broker = started.component
        self.components["broker"] = broker
        self.adapter = started.adapter
        # Subscribed before the publisher exists, so it sees every event ever published.
        self.tap = self.adapter.open_tap(self.work_dir.name)
        self.tap.start()

        proxy = self.runtime.fault_proxy(self.settings.seed)
        self.components["faultproxy"] = proxy
        proxy.start()
        self.links = Links(proxy.endpoint())
        publisher_port = free_port()
        relay_link = self.links.create(RELAY_BROKER, broker.endpoint())

        publisher = self.runtime.service(ServiceSpec(
            "publisher", "reference_services.publisher",
            ("--db-url", f"sqlite:///{self.work_dir / 'publisher.db'}",
             "--broker-url", self.plugin.service_url(relay_link),
             "--variant", self.settings.variant_for("publisher")),
            publisher_port))
        self.components["publisher"] = publisher
        publisher.start()
        self.publisher_api = PublisherClient(publisher.endpoint().http_url())
        self.start_consumer("consumer", self.consumer_args)
        self.consumer_api = self.consumer_apis["consumer"]

    def start_consumer(self, key: str, extra_args: tuple[str, ...] = ()) -> None:
        """Start consumer `key` ("consumer" or "consumer2") behind its own proxied links."""
        broker = self.components["broker"]
        name = CONSUMER_NAMES[key]
        broker_link_name, api_link_name = _CONSUMER_LINKS[key]
        broker_link = self.links.create(broker_link_name, broker.endpoint())
        api_link = self.links.create(api_link_name, self.components["publisher"].endpoint())
        consumer = self.runtime.service(ServiceSpec(
            key, "reference_services.consumer",
            ("--name", name,
             "--db-url", self.replica_db_url(key),
             "--broker-url", self.plugin.service_url(broker_link),
             "--publisher-url", api_link.http_url(),
             "--variant", self.settings.variant_for("consumer"), *extra_args),
            free_port()))
        self.components[key] = consumer
        consumer.start()
        # Events published before the consumer's queue exists would be unroutable and
        # silently dropped by the broker: wait until it is subscribed.
        adapter = self.broker
        wait_until(lambda: adapter.consumer_queue(name).consumers >= 1, 20.0,
                   f"{key} to subscribe to its queue", log_tail=consumer.logs)
        self.consumer_apis[key] = ConsumerClient(consumer.endpoint().http_url())
        url = self.replica_db_url(key)
        self.samplers[key] = ReplicaSampler(lambda: read_replica(url))
        self.samplers[key].start()

    def close(self) -> None:
        self.stop_sampling()
        if self.tap is not None:
            self.tap.stop()
        if self.publisher_api is not None:
            self.publisher_api.close()
        for client in self.consumer_apis.values():
            client.close()
        if self.adapter is not None:
            self.adapter.close()

    # -- what faults may reach (harness.faults.catalogue.FaultContext) ------------------
    consumer_name = CONSUMER_NAME

    def component(self, name: str) -> Component:
        return self.components[name]

    @property
    def broker(self) -> BrokerAdapter:
        assert self.adapter is not None, "start() first"
        return self.adapter

    def recent_event_bodies(self, count: int) -> list[bytes]:
        """The last `count` published events, encoded exactly as the relay sends them."""
        high = int(self.source_snapshot()["high_water_mark"])
        events = self.publisher.events(after=max(0, high - count), limit=count)
        return [from_event(e).encode() for e in events]

    def link_probe(self, link: str) -> ClientProbe | None:
        """Client-side counters of the one link that carries no replication traffic (whose
        faults replication lag cannot show): the consumer's checks against the publisher."""
        if link != CONSUMER_PUBLISHER:
            return None

        def probe() -> Mapping[str, float]:
            verifier = self.consumer_api.health()["verifier"]
            return {k: float(verifier[k]) for k in ("runs", "failures", "latency_ms_total")}

        return probe

    # -- observation ------------------------------------------------------------------
    @property
    def publisher(self) -> PublisherClient:
        assert self.publisher_api is not None, "start() first"
        return self.publisher_api

    def source_snapshot(self) -> dict[str, Any]:
        return self.publisher.snapshot()

    def replica_snapshot(self, key: str = "consumer") -> dict[str, Any]:
        return self.consumer_apis[key].snapshot()

    def consumer_stats(self) -> dict[str, Any]:
        return self.consumer_api.stats()

    def source_rows(self) -> list[dict[str, Any]]:
        return self.publisher.rows()

    def replica_rows(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self.consumer_apis[key].rows()

    def dead_letters(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self.consumer_apis[key].dead_letters()

    def published_events(self) -> list[dict[str, Any]]:
        return self.publisher.events()

    def deliveries(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self.consumer_apis[key].deliveries()

    # -- the harness's own observation (harness/observers) ------------------------------
    def replica_db_url(self, key: str = "consumer") -> str:
        """The database the consumer `key` keeps its replica in (it was started with it)."""
        return f"sqlite:///{self.work_dir / (key + '.db')}"

    def replica_db_rows(self, key: str = "consumer") -> list[dict[str, Any]]:
        """Its replica table read straight from the database file, tombstones included."""
        return read_replica(self.replica_db_url(key))

    def stop_sampling(self) -> None:
        for sampler in self.samplers.values():
            sampler.stop()

    def tapped(self) -> list[dict[str, Any]]:
        """What the broker tap recorded so far, once it recorded what waits for it."""
        assert self.tap is not None, "start() first"
        self.tap.drain(TAP_DRAIN_S)
        return self.tap.records()

    def finish_tap(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Drain and stop the broker tap: its records and its status."""
        assert self.tap is not None, "start() first"
        self.tap.drain(TAP_DRAIN_S)
        self.tap.stop()
        return self.tap.records(), self.tap.status()

    def queue_counters(self, key: str = "consumer") -> QueueCounters:
        return self.broker.queue_counters(CONSUMER_NAMES[key])

    def queue_name(self, key: str = "consumer") -> str:
        return queue_name(CONSUMER_NAMES[key])

    def resync_reports(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self.consumer_apis[key].resync_history()
