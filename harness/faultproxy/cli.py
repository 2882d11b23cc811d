"""Command line: ``python -m harness.faultproxy [--host H] [--port P] [--seed N]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from harness.faultproxy.errors import ApiError
from harness.faultproxy.server import serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.faultproxy",
        description="Toxiproxy-compatible fault-injecting TCP proxy (HTTP API v2).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API address (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8474, help="API port, 0 for any free port (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for toxic randomness (default %(default)s)"
    )
    parser.add_argument(
        "--config", type=Path, help="JSON array of proxies to create at start (as /populate)"
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="Python logging level (default %(default)s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the fault proxy in the foreground until SIGINT or SIGTERM; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(args.host, args.port, args.seed, args.config))
    except ApiError as exc:
        print(f"faultproxy: --config: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"faultproxy: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run(host: str, port: int, seed: int, config: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def ready(url: str) -> None:
        print(f"faultproxy listening on {url}", flush=True)

    await serve(host, port, seed=seed, config=config, on_ready=ready, stop=stop)
