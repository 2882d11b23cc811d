"""The system under test for one scenario: a broker, a fault proxy carrying every link, the
publisher and the consumers (each with one or more instances), started through whichever
runtime the run uses, plus HTTP clients to read their state."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from harness.brokers.base import BrokerAdapter, QueueCounters
from harness.brokers.registry import BrokerLease, broker_plugin
from harness.consumers import (
    FIRST,
    broker_link,
    consumer_key,
    db_link,
    instance_key,
    owner,
    publisher_link,
    role,
)
from harness.contract.client import ConsumerClient, PublisherClient
from harness.contract.envelope import from_event
from harness.contract.grants import issue
from harness.contract.naming import queue_name
from harness.errors import SetupError
from harness.faults.network import ClientProbe
from harness.links import CONSUMER_PUBLISHER, RELAY_BROKER, Links
from harness.observers.replica_db import read_replica
from harness.observers.sampler import ReplicaSampler
from harness.observers.tap import BrokerTap
from harness.runtime.base import Component, Endpoint, Runtime, ServiceSpec
from harness.runtime.ports import free_port
from harness.runtime.postgres_node import PostgresNode
from harness.runtime.processes import ProcessRuntime
from harness.scenario import ConsumerSpec
from harness.settings import RunSettings
from harness.waiting import wait_until

# How long collecting waits for the broker tap to record what the broker still holds for
# it: by then the replicas have converged, so it is only the last poll's worth.
TAP_DRAIN_S = 15.0


def _subscribed(adapter: BrokerAdapter, consumer_name: str, processes: int,
                instance: Component) -> bool:
    """Whether `processes` of the consumer's processes are subscribed, the last of them
    `instance`. The broker's count is the witness; but a Kafka broker that reports a
    group's state and not its members (Tansu) counts at most one, so there a further
    instance's own report of the partitions the group assigned it stands in for the
    count."""
    counted = adapter.consumer_queue(consumer_name).consumers
    if counted >= processes:
        return True
    worker = ConsumerClient(instance.endpoint().http_url()).health().get("worker", {})
    return counted >= 1 and bool(worker.get("assignment"))


class SystemUnderTest:
    def __init__(self, runtime: Runtime, settings: RunSettings, work_dir: Path,
                 consumer_args: tuple[str, ...] = (),
                 consumers: Sequence[ConsumerSpec] = (ConsumerSpec(),),
                 lease: BrokerLease | None = None) -> None:
        # Extra arguments of the first consumer's process (e.g. --auto-resync known).
        self.consumer_args = consumer_args
        # Each consumer by its component key (harness/consumers.py); started on demand.
        self.specs = {consumer_key(i): spec for i, spec in enumerate(consumers)}
        # The first consumer's name: the one message faults act on (FaultContext).
        self.consumer_name = consumers[0].name
        # Who may read what (harness/contract/grants.py): the publisher is started with
        # these; the harness keeps the admin token for its own clients.
        self.grants = issue(settings.seed, {spec.name: spec.grants for spec in consumers})
        self.admin_token = self.grants.admin_token
        self.runtime = runtime
        self.settings = settings
        self.plugin = broker_plugin(settings.broker)
        # A broker kept across runs and lent to this one (harness/brokers/kept.py), or
        # None: start one of its own.
        self.lease = lease
        self.service_url = lease.service_url if lease is not None else self.plugin.service_url
        self.work_dir = work_dir
        self.components: dict[str, Component] = {}
        self.adapter: BrokerAdapter | None = None
        self.publisher_api: PublisherClient | None = None
        self.consumer_apis: dict[str, ConsumerClient] = {}
        # The harness's own observers (harness/observers): one broker tap, and a sampler
        # of each consumer's replica database.
        self.tap: BrokerTap | None = None
        self.samplers: dict[str, ReplicaSampler] = {}
        # When each consumer's first instance had subscribed (wall clock): events published
        # since reach it through its queue.
        self.joined_at: dict[str, float] = {}
        # The services' PostgreSQL server (settings.db == "postgres"); SQLite needs none.
        self.postgres: PostgresNode | None = None

    # -- start / stop -----------------------------------------------------------------
    def start(self) -> None:
        if self.settings.db == "postgres":
            self.start_postgres()
        started = (self.lease.started if self.lease is not None
                   else self.plugin.start(self.runtime, "broker"))
        broker = started.component
        self.components["broker"] = broker
        self.adapter = started.adapter
        # Subscribed before the publisher exists, so it sees every event ever published.
        self.tap = self.adapter.open_tap(self.work_dir.name)
        self.tap.start()

        proxy = self.runtime.fault_proxy(self.settings.seed)
        self.components["faultproxy"] = proxy
        proxy.start()
        self.links = Links(proxy.endpoint(), self.runtime.network.bind_host)
        publisher_port = free_port()
        relay_link = self.broker_link(RELAY_BROKER)

        publisher = self.runtime.service(ServiceSpec(
            "publisher", "reference_services.publisher",
            ("--db-url", self.service_db_url("publisher"),
             "--broker-url", self.service_url(relay_link),
             "--variant", self.settings.variant_for("publisher"),
             "--grants", self.grants.to_json()),
            publisher_port))
        self.components["publisher"] = publisher
        publisher.start()
        self.publisher_api = PublisherClient(publisher.endpoint().http_url(),
                                             token=self.admin_token)
        self.start_consumer(FIRST)
        self.consumer_api = self.consumer_apis[FIRST]

    def start_consumer(self, key: str) -> None:
        """Start consumer `key` (every instance of it) behind its own proxied links."""
        spec = self.specs[key]
        broker_side = self.broker_link(broker_link(key))
        api_side = self.links.create(publisher_link(key),
                                     self.components["publisher"].endpoint())
        args = ("--name", spec.name,
                # One database for all its instances: the inbox dedupes across them.
                "--db-url", self.consumer_db_url(key),
                "--broker-url", self.service_url(broker_side),
                "--publisher-url", api_side.inside.http_url(),
                "--variant", self.settings.variant_for("consumer"),
                "--token", self.consumer_token(key), "--admin-token", self.admin_token,
                *(("--initial-sync", "full") if spec.initial_sync else ()),
                *(self.consumer_args if key == FIRST else ()))
        adapter = self.broker
        for number in range(spec.instances):
            instance = instance_key(key, number)
            consumer = self.runtime.service(ServiceSpec(
                instance, "reference_services.consumer", args, free_port()))
            self.components[instance] = consumer
            consumer.start()
            # Events published before the consumer's queue exists would be unroutable and
            # silently dropped by the broker: wait until it is subscribed (and each
            # further instance until it is too).
            wait_until(partial(_subscribed, adapter, spec.name, number + 1, consumer), 20.0,
                       f"{instance} to subscribe to its queue", log_tail=consumer.logs)
            self.joined_at.setdefault(key, time.time())
        # Its first instance answers for it: every instance reads the same database.
        self.consumer_apis[key] = ConsumerClient(self.components[key].endpoint().http_url(),
                                                 token=self.admin_token)
        url = self.replica_db_url(key)
        self.samplers[key] = ReplicaSampler(lambda: read_replica(url))
        self.samplers[key].start()

    def consumer_token(self, key: str) -> str:
        grant = self.grants.for_consumer(self.specs[key].name)
        assert grant is not None, f"no grant issued for {key}"
        return grant.token

    def broker_link(self, name: str) -> Endpoint:
        """Create link `name` from a client to the broker, through whatever the broker's
        plugin puts in between (harness.brokers.registry.BrokerPlugin.link_hop); returns
        the address the client is given (the link's inside view)."""
        listen = self.links.new_listen()
        broker = self.components["broker"]
        hop = self.plugin.link_hop(self.runtime, broker, name, listen)
        self.links.create(name, (hop or broker).endpoint(), listen)
        if hop is not None:
            self.components[hop.name] = hop
            hop.start()  # once its link exists: its readiness is probed through the link
        return listen.inside

    def start_postgres(self) -> None:
        """Started first and closed last (close()): every service's database lives in it."""
        if not isinstance(self.runtime, ProcessRuntime):
            raise SetupError(f"the {type(self.runtime).__name__} runtime cannot run PostgreSQL")
        self.postgres = self.runtime.postgres("postgres")
        self.components["postgres"] = self.postgres
        self.postgres.start()

    def consumer_db_url(self, key: str) -> str:
        """What consumer `key` is given as its database: on PostgreSQL, through its own
        link `<key>_db`, created here, so faults reach its connections. The harness's
        own readers keep reading the database directly (replica_db_url)."""
        url = self.service_db_url(key)
        if self.postgres is None:
            return url  # an SQLite file: no connection to fault
        listen = self.links.create(db_link(key), self.postgres.endpoint()).inside
        return make_url(url).set(host=listen.host, port=listen.port).render_as_string(
            hide_password=False)

    def service_db_url(self, database: str, inside: bool = True) -> str:
        """Where service `database` ("publisher" or a consumer key) keeps its data, as the
        service reaches it (`inside`) or as the harness does."""
        if self.postgres is not None:
            return self.postgres.database(database, inside)
        return f"sqlite:///{self.work_dir / (database + '.db')}"

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
        if self.postgres is not None:
            # The services are still running (the runtime stops them after this): a fast
            # shutdown ends their sessions; nothing is judged any more.
            self.postgres.close()

    # -- what faults may reach (harness.faults.catalogue.FaultContext) ------------------
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
        """Client-side counters of the one kind of link that carries no replication
        traffic (whose faults replication lag cannot show): a consumer's checks against
        the publisher."""
        key = owner(link)
        if role(link) != CONSUMER_PUBLISHER or key is None:
            return None

        def probe() -> Mapping[str, float]:
            verifier = self.consumer_apis[key].health()["verifier"]
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
        """The database the consumer `key` keeps its replica in (it was started with it),
        as the harness reaches it."""
        return self.service_db_url(key, inside=False)

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
        return self.broker.queue_counters(self.specs[key].name)

    def queue_name(self, key: str = "consumer") -> str:
        return queue_name(self.specs[key].name)

    def resync_reports(self, key: str = "consumer") -> list[dict[str, Any]]:
        return self.consumer_apis[key].resync_history()
