"""Run the Order service: `python -m reference_services.consumer --help`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

import httpx
from sqlalchemy import func, select

from harness.contract.grants import header
from reference_services.common import kafka
from reference_services.common.db import Engines, make_engines
from reference_services.common.http import serve_until_signalled
from reference_services.consumer.app import create_app
from reference_services.consumer.applier import Applier, RemoteProduct, ResyncUnavailable
from reference_services.consumer.kafka_worker import KafkaWorker
from reference_services.consumer.models import metadata, replica_products
from reference_services.consumer.rabbitmq_worker import RabbitWorker
from reference_services.consumer.restricted import PublisherRestricted
from reference_services.consumer.resync import Resyncer, ResyncError
from reference_services.consumer.verifier import Verifier
from reference_services.consumer.worker import Worker

VARIANTS = ("none", "ack_before_commit", "no_dedupe", "no_version_check",
            "poison_requeue_loop", "truncate_names", "log_lies_dedupe", "log_lies_stale",
            "skip_catch_up", "autocommit_offsets", "offset_reset_latest")
# Bugs that exist on one broker only: asking for one on the other is refused, never run as
# the correct service.
KAFKA_ONLY_VARIANTS = ("autocommit_offsets", "offset_reset_latest")
RABBITMQ_ONLY_VARIANTS = ("ack_before_commit",)


def initial_sync(worker: Worker, resyncer: Resyncer, engines: Engines) -> None:
    """A late joiner's queue only holds events from its subscription on; everything older
    comes from a full resync. Subscribing first, then exporting, leaves no gap: the export
    covers up to its high-water mark, the queue everything after its creation, and the
    overlap is deduplicated (inbox) or stale (versions)."""
    with engines.reader.connect() as conn:
        if conn.execute(select(func.count()).select_from(replica_products)).scalar_one():
            return  # not a first start: the queue kept what happened meanwhile
    for _ in range(300):  # bounded: 30 s for the worker to subscribe
        if worker.stats.connected:
            break
        time.sleep(0.1)
    for attempt in range(10):
        try:
            report = resyncer.full()
        except ResyncError as exc:
            logging.getLogger(__name__).warning("initial sync attempt %d: %s", attempt, exc)
            time.sleep(1.0)
            continue
        logging.getLogger(__name__).info("initial sync done: %s", report.to_dict())
        return


def make_fetcher(publisher_url: str, token: str = "") -> httpx.Client:
    """The client of every call to the publisher, presenting the consumer's credential."""
    return httpx.Client(base_url=publisher_url, timeout=5.0,
                        headers=header(token) if token else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consumer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--name", default=os.environ.get("CONSUMER_NAME", "orders"),
                        help="consumer name: its queue is <name>.product-events (on "
                             "Kafka: its consumer group)")
    parser.add_argument("--db-url", default=os.environ.get("CONSUMER_DB_URL",
                                                           "sqlite:///consumer.db"))
    parser.add_argument("--broker-url", default=os.environ.get(
        "CONSUMER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
                        help="amqp://... for RabbitMQ, kafka://host:port for Kafka")
    parser.add_argument("--publisher-url", default=os.environ.get(
        "CONSUMER_PUBLISHER_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--prefetch", type=int, default=500,
                        help="most messages in hand (and in one batch)")
    parser.add_argument("--auto-resync", choices=("off", "known"),
                        default=os.environ.get("CONSUMER_AUTO_RESYNC", "off"),
                        help="known: repair missing/behind/extra ids found by the periodic "
                             "verification by itself; conflicts always wait for a human")
    parser.add_argument("--initial-sync", choices=("none", "full"),
                        default=os.environ.get("CONSUMER_INITIAL_SYNC", "none"),
                        help="full: a consumer joining late copies the publisher's dataset "
                             "(full resync) once subscribed, when its replica is empty")
    parser.add_argument("--verify-interval-s", type=float, default=1.0,
                        help="how often to check the replica against the publisher "
                             "(0 disables)")
    parser.add_argument("--variant", default=os.environ.get("CONSUMER_VARIANT", "none"),
                        choices=VARIANTS)
    parser.add_argument("--token", default=os.environ.get("CONSUMER_TOKEN", ""),
                        help="this consumer's credential at the publisher (its grants)")
    parser.add_argument("--admin-token", default=os.environ.get("CONSUMER_ADMIN_TOKEN", ""),
                        help="the credential this consumer's control and observation "
                             "endpoints require; without it they are open")
    args = parser.parse_args(argv)
    on_kafka = kafka.is_kafka_url(args.broker_url)
    if args.variant in (RABBITMQ_ONLY_VARIANTS if on_kafka else KAFKA_ONLY_VARIANTS):
        parser.error(f"variant {args.variant} does not exist on "
                     f"{'Kafka' if on_kafka else 'RabbitMQ'}")
    if on_kafka:
        try:
            kafka.bootstrap_servers(args.broker_url)
        except ValueError as exc:  # here, not later inside the worker's thread
            parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s consumer %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    engines = make_engines(args.db_url)
    metadata.create_all(engines.writer)
    client = make_fetcher(args.publisher_url, args.token)

    resyncer: Resyncer | None = None

    def fetch_product(product_id: int) -> RemoteProduct | None:
        assert resyncer is not None
        try:
            return resyncer.fetch(product_id)
        except ResyncError as exc:
            raise ResyncUnavailable(str(exc)) from exc

    applier = Applier(engines.writer, fetch_product, args.variant,
                      PublisherRestricted(client))
    resyncer = Resyncer(applier, client)
    worker: Worker = (
        KafkaWorker(applier, args.broker_url, args.name, variant=args.variant,
                    batch_max=args.prefetch) if on_kafka
        else RabbitWorker(applier, args.broker_url, args.name, variant=args.variant,
                          prefetch=args.prefetch))
    worker.start()
    if args.initial_sync == "full":
        threading.Thread(target=initial_sync, args=(worker, resyncer, engines),
                         name="initial-sync", daemon=True).start()
    verifier = Verifier(engines.reader, client, args.verify_interval_s,
                        auto_resync=(lambda ids: resyncer.partial(ids, kind="auto"))
                        if args.auto_resync == "known" else None)
    verifier.start()
    app = create_app(engines, worker, verifier, resyncer, args.name, args.admin_token)

    def on_stop() -> None:
        verifier.stop()
        worker.stop()
        client.close()

    serve_until_signalled(app, args.host, args.port, on_stop,
                          "consumer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
