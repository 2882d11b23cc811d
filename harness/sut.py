"""The system under test for one scenario: a broker, a fault proxy carrying every link, the
publisher and the consumer, started through whichever runtime the run uses, plus HTTP
clients to read their state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from harness.brokers.base import BrokerAdapter
from harness.brokers.rabbitmq import RabbitMQAdapter
from harness.errors import SetupError
from harness.faults.network import ClientProbe
from harness.links import (
    CONSUMER2_BROKER,
    CONSUMER2_PUBLISHER,
    CONSUMER_BROKER,
    CONSUMER_PUBLISHER,
    RELAY_BROKER,
    Links,
)
from harness.runtime.base import Component, Endpoint, Runtime, ServiceSpec
from harness.runtime.ports import free_port
from harness.runtime.rabbitmq_node import RabbitMQNode
from harness.settings import RunSettings
from harness.waiting import wait_until
from reference_services.common.envelope import from_event

CONSUMER_NAME = "orders"
# Component key -> the consumer's name (its queue is <name>.product-events).
CONSUMER_NAMES = {"consumer": CONSUMER_NAME, "consumer2": "orders2"}
_CONSUMER_LINKS = {"consumer": (CONSUMER_BROKER, CONSUMER_PUBLISHER),
                   "consumer2": (CONSUMER2_BROKER, CONSUMER2_PUBLISHER)}


def amqp_url(endpoint: Endpoint) -> str:
    return f"amqp://guest:guest@{endpoint.address}/%2F"


class SystemUnderTest:
    def __init__(self, runtime: Runtime, settings: RunSettings, work_dir: Path,
                 consumer_args: tuple[str, ...] = ()) -> None:
        self.consumer_args = consumer_args
        self.runtime = runtime
        self.settings = settings
        self.work_dir = work_dir
        self.components: dict[str, Component] = {}
        self.adapter: BrokerAdapter | None = None
        self._clients: list[httpx.Client] = []

    # -- start / stop -----------------------------------------------------------------
    def start(self) -> None:
        broker = self.runtime.rabbitmq("broker")
        self.components["broker"] = broker
        broker.start()
        assert isinstance(broker, RabbitMQNode)
        self.adapter = RabbitMQAdapter(broker.amqp_url)

        proxy = self.runtime.fault_proxy(self.settings.seed)
        self.components["faultproxy"] = proxy
        proxy.start()
        self.links = Links(proxy.endpoint())
        publisher_port = free_port()
        relay_link = self.links.create(RELAY_BROKER, broker.endpoint())

        publisher = self.runtime.service(ServiceSpec(
            "publisher", "reference_services.publisher",
            ("--db-url", f"sqlite:///{self.work_dir / 'publisher.db'}",
             "--broker-url", amqp_url(relay_link),
             "--variant", self.settings.variant_for("publisher")),
            publisher_port))
        self.components["publisher"] = publisher
        publisher.start()
        self.publisher_api = self._client(publisher.endpoint().http_url())
        self.consumer_apis: dict[str, httpx.Client] = {}
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
             "--db-url", f"sqlite:///{self.work_dir / (key + '.db')}",
             "--broker-url", amqp_url(broker_link),
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
        self.consumer_apis[key] = self._client(consumer.endpoint().http_url())

    def _client(self, url: str) -> httpx.Client:
        client = httpx.Client(base_url=url, timeout=10.0)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
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
        events = self._get_json(self.publisher_api, "/events", after=max(0, high - count),
                                limit=count)
        return [from_event(e).encode() for e in events]

    def link_probe(self, link: str) -> ClientProbe | None:
        """Client-side counters of the one link that carries no replication traffic (whose
        faults replication lag cannot show): the consumer's checks against the publisher."""
        if link != CONSUMER_PUBLISHER:
            return None

        def probe() -> Mapping[str, float]:
            verifier = self._get_json(self.consumer_api, "/health")["verifier"]
            return {k: float(verifier[k]) for k in ("runs", "failures", "latency_ms_total")}

        return probe

    # -- observation ------------------------------------------------------------------
    def _get_json(self, client: httpx.Client, path: str, **params: Any) -> Any:
        try:
            response = client.get(path, params=params)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            raise SetupError(f"cannot read {client.base_url}{path}: {exc}") from exc

    def source_snapshot(self) -> dict[str, Any]:
        return dict(self._get_json(self.publisher_api, "/snapshot"))

    def replica_snapshot(self, key: str = "consumer") -> dict[str, Any]:
        return dict(self._get_json(self.consumer_apis[key], "/replica/snapshot"))

    def consumer_stats(self) -> dict[str, Any]:
        return dict(self._get_json(self.consumer_api, "/stats"))

    def _ndjson(self, client: httpx.Client, path: str) -> list[dict[str, Any]]:
        try:
            response = client.get(path)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SetupError(f"cannot read {client.base_url}{path}: {exc}") from exc
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def source_rows(self) -> list[dict[str, Any]]:
        lines = self._ndjson(self.publisher_api, "/export")
        return lines[1:]  # the first line is the high-water mark header

    def replica_rows(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self._ndjson(self.consumer_apis[key], "/replica/export")

    def _paged(self, client: httpx.Client, path: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self._get_json(client, path, after=after, limit=10000)
            if not page:
                return items
            items.extend(page)
            after = page[-1][key]

    def dead_letters(self, key: str = "consumer") -> list[dict[str, Any]]:
        return list(self._get_json(self.consumer_apis[key], "/dead-letters", limit=100000))

    def published_events(self) -> list[dict[str, Any]]:
        return self._paged(self.publisher_api, "/events", "sequence")

    def deliveries(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self._paged(self.consumer_apis[key], "/deliveries", "id")
