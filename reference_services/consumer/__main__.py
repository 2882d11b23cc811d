"""Run the Order service: `python -m reference_services.consumer --help`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import httpx

from reference_services.common.db import make_engines
from reference_services.common.http import serve_until_signalled
from reference_services.consumer.app import create_app
from reference_services.consumer.applier import Applier, RemoteProduct, ResyncUnavailable
from reference_services.consumer.models import metadata
from reference_services.consumer.rabbitmq_worker import RabbitWorker
from reference_services.consumer.resync import Resyncer, ResyncError
from reference_services.consumer.verifier import Verifier

VARIANTS = ("none", "ack_before_commit", "no_dedupe", "no_version_check",
            "poison_requeue_loop", "truncate_names")


def make_fetcher(publisher_url: str) -> httpx.Client:
    return httpx.Client(base_url=publisher_url, timeout=5.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consumer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--name", default=os.environ.get("CONSUMER_NAME", "orders"),
                        help="consumer name: its queue is <name>.product-events")
    parser.add_argument("--db-url", default=os.environ.get("CONSUMER_DB_URL",
                                                           "sqlite:///consumer.db"))
    parser.add_argument("--broker-url", default=os.environ.get(
        "CONSUMER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"))
    parser.add_argument("--publisher-url", default=os.environ.get(
        "CONSUMER_PUBLISHER_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--auto-resync", choices=("off", "known"),
                        default=os.environ.get("CONSUMER_AUTO_RESYNC", "off"),
                        help="known: repair missing/behind/extra ids found by the periodic "
                             "verification by itself; conflicts always wait for a human")
    parser.add_argument("--verify-interval-s", type=float, default=1.0,
                        help="how often to check the replica against the publisher "
                             "(0 disables)")
    parser.add_argument("--variant", default=os.environ.get("CONSUMER_VARIANT", "none"),
                        choices=VARIANTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s consumer %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    engines = make_engines(args.db_url)
    metadata.create_all(engines.writer)
    client = make_fetcher(args.publisher_url)

    resyncer: Resyncer | None = None

    def fetch_product(product_id: int) -> RemoteProduct | None:
        assert resyncer is not None
        try:
            return resyncer.fetch(product_id)
        except ResyncError as exc:
            raise ResyncUnavailable(str(exc)) from exc

    applier = Applier(engines.writer, fetch_product, args.variant)
    resyncer = Resyncer(applier, client)
    worker = RabbitWorker(applier, args.broker_url, args.name, variant=args.variant,
                          prefetch=args.prefetch)
    worker.start()
    verifier = Verifier(engines.reader, client, args.verify_interval_s,
                        auto_resync=(lambda ids: resyncer.partial(ids, kind="auto"))
                        if args.auto_resync == "known" else None)
    verifier.start()
    app = create_app(engines, worker, verifier, resyncer, args.name)

    def on_stop() -> None:
        verifier.stop()
        worker.stop()
        client.close()

    serve_until_signalled(app, args.host, args.port, on_stop,
                          "consumer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
