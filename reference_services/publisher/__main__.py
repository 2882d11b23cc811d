"""Run the Product service: `python -m reference_services.publisher --help`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from harness.contract.grants import Grants
from reference_services.common import kafka
from reference_services.common.db import make_engines
from reference_services.common.http import serve_until_signalled
from reference_services.publisher.app import create_app
from reference_services.publisher.commit_delay import CommitDelay, add_commit_delay_routes
from reference_services.publisher.direct_publisher import DirectPublisher, EventPublisher
from reference_services.publisher.kafka_publisher import KafkaDirectPublisher
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import ProductStore

VARIANTS = ("none", "mark_sent_before_confirm", "dual_write", "relay_by_sequence_only",
            "fat_events", "export_leaks", "open_admin")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="publisher", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--db-url", default=os.environ.get("PUBLISHER_DB_URL",
                                                           "sqlite:///publisher.db"))
    parser.add_argument("--broker-url", default=os.environ.get(
        "PUBLISHER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
                        help="amqp://... for RabbitMQ, kafka://host:port for Kafka")
    parser.add_argument("--relay-batch-size", type=int, default=500)
    parser.add_argument("--variant", default=os.environ.get("PUBLISHER_VARIANT", "none"),
                        choices=VARIANTS)
    parser.add_argument("--grants", default=os.environ.get("PUBLISHER_GRANTS", ""),
                        help="who may read what, as JSON (harness/contract/grants.py): "
                             "each consumer's token and restricted fields, the admin "
                             "token; without it every caller is the admin")
    args = parser.parse_args(argv)
    try:
        grants = Grants.from_json(args.grants) if args.grants else None
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s publisher %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    if kafka.is_kafka_url(args.broker_url):
        try:
            kafka.bootstrap_servers(args.broker_url)
        except ValueError as exc:  # here, not later inside the relay's thread
            parser.error(str(exc))

    if args.variant == "relay_by_sequence_only" and args.db_url.startswith("sqlite"):
        # One writer at a time: sequence order is commit order, so the bug cannot show.
        parser.error("variant relay_by_sequence_only exists only on PostgreSQL "
                     "(--db-url postgresql+psycopg://...)")
    commit_delay = CommitDelay()
    # Concurrent writers: each locks the product row it changes (store.py).
    store = ProductStore(make_engines(args.db_url, serial_writers=False), commit_delay)
    relay = Relay(store, args.broker_url, batch_size=args.relay_batch_size,
                  variant=args.variant)
    direct: EventPublisher | None = None
    if args.variant == "dual_write":
        # BUG (variant): no relay at all
        direct = (KafkaDirectPublisher(args.broker_url) if kafka.is_kafka_url(args.broker_url)
                  else DirectPublisher(args.broker_url))
    else:
        relay.start()
    app = create_app(store, relay, args.variant, direct, grants)
    add_commit_delay_routes(app, commit_delay)
    serve_until_signalled(app, args.host, args.port, relay.stop,
                          "publisher")
    return 0


if __name__ == "__main__":
    sys.exit(main())
