"""`harness bench integrity|resync|proxy`: the commands, registered as entry points of the
group replication_chaos_harness.benches (see pyproject.toml). Each takes the parsed
`harness bench` arguments and returns an exit code."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def integrity(args: argparse.Namespace) -> int:
    from reference_services.bench.integrity import format_table, run_integrity_bench

    out_dir = Path(args.report_dir) / time.strftime("bench-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = run_integrity_bench(work_dir=out_dir)
    print(format_table(data))
    (out_dir / "bench.json").write_text(json.dumps(data, indent=2))
    print(f"data: {out_dir / 'bench.json'}")
    return 0


def resync(args: argparse.Namespace) -> int:
    from reference_services.bench.resync import run_resync_bench

    out_dir = Path(args.report_dir) / time.strftime("bench-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = run_resync_bench(out_dir, rows=args.rows)
    (out_dir / "bench.json").write_text(json.dumps(data, indent=2))
    print(f"\nfull resync of {data['rows']} rows: {data['full_resync_s']} s "
          f"({data['full_resync_rows_per_s']} rows/s); raw bulk copy of the same rows "
          f"{data['raw_bulk_copy_s']} s -> {data['full_over_raw_copy']}x the floor")
    for item in data["partial"]:
        print(f"partial resync of {item['ids']} ids: {item['seconds']} s "
              f"({item['per_id_ms']} ms per id)")
    print(f"data: {out_dir / 'bench.json'}")
    return 0


def proxy(args: argparse.Namespace) -> int:
    if getattr(args, "broker", "rabbitmq") == "kafka":
        # Kafka's side needs no service internals: the harness's own clients.
        from harness.bench.proxy_kafka import kafka_proxy_command

        return kafka_proxy_command(args)
    return _rabbitmq_proxy(args)


PROXY_PATHS = ("tcp", "amqp-fast", "amqp-confirmed")
THROUGHPUT_TARGET = ">= 0.9"
ADDED_P50_TARGET_MS = 0.5
# Seconds per round of the raw TCP bench, split over its six phases.
TCP_ROUND_S = 6.0


def _added_line(name: str, proxied_ms: float, direct_ms: float) -> str:
    added = proxied_ms - direct_ms
    met = "met" if added <= ADDED_P50_TARGET_MS else "NOT met"
    return (f"{name}: proxied {proxied_ms:.3f} ms / direct {direct_ms:.3f} ms / added "
            f"{added:.3f} ms (target <= {ADDED_P50_TARGET_MS} ms: {met})")


def _rabbitmq_proxy(args: argparse.Namespace) -> int:
    """Each path as proxied / direct / ratio beside its target: raw TCP (the proxy's worst
    case), transient unconfirmed AMQP publishes, and the relay's persistent confirmed ones
    (whose disk and confirm waits hide most of the proxy's cost)."""
    from harness.bench import figures
    from harness.faultproxy.bench import run_bench
    from reference_services.bench.proxy_rabbitmq import AMQP_PATHS, run_proxy_bench

    chosen = getattr(args, "path", "all")
    paths = PROXY_PATHS if chosen == "all" else (chosen,)
    out_dir = figures.bench_dir(args.report_dir)
    data: dict[str, object] = {
        "bench": "proxy", "broker": "rabbitmq", "paths": list(paths),
        "targets": {"throughput_ratio": THROUGHPUT_TARGET,
                    "added_p50_ms": f"<= {ADDED_P50_TARGET_MS}"}}
    comparisons: list[figures.Comparison] = []
    lines: list[str] = []
    amqp_paths = tuple(path for path in AMQP_PATHS if path in paths)
    if amqp_paths:
        print(f"bench proxy: {args.messages} messages x {args.repeats} rounds, direct vs "
              f"proxied ({', '.join(amqp_paths)})")
        amqp = run_proxy_bench(out_dir, args.messages, args.repeats, amqp_paths)
        data["rabbitmq"] = amqp.to_dict()
        for path in amqp_paths:
            rate = amqp.throughput[path]
            comparisons.append(figures.compare(f"{path} publish+consume", "msg/s",
                                               rate.proxied_msgs_per_s, rate.direct_msgs_per_s,
                                               THROUGHPUT_TARGET))
        lines += [figures.format_comparison(c, "proxied", "direct") for c in comparisons]
        lines.append(_added_line("AMQP round trip p50", amqp.proxied_rtt_p50_ms,
                                 amqp.direct_rtt_p50_ms))
    if "tcp" in paths:
        print(f"raw TCP, direct vs proxied: {args.repeats} rounds of {TCP_ROUND_S:.0f} s ...",
              flush=True)
        tcp = run_bench(TCP_ROUND_S, repeats=args.repeats)
        data["tcp"] = tcp
        tcp_comparisons = [
            figures.compare("tcp stream", "MB/s", tcp["stream_proxy_mbps"],
                            tcp["stream_direct_mbps"], THROUGHPUT_TARGET),
            figures.compare("tcp echo", "MB/s", tcp["proxy_mbps"], tcp["direct_mbps"],
                            THROUGHPUT_TARGET)]
        comparisons += tcp_comparisons
        lines += [figures.format_comparison(c, "proxied", "direct") for c in tcp_comparisons]
        lines.append(_added_line("tcp round trip p50", tcp["proxy_p50_ms"],
                                 tcp["direct_p50_ms"]))
        if "proxy_cpu_s_per_gb" in tcp:
            lines.append(f"tcp CPU per GB carried: proxy process {tcp['proxy_cpu_s_per_gb']:.3f}"
                         f" s, the bench's own clients and servers (direct) "
                         f"{tcp['direct_cpu_s_per_gb']:.3f} s (with every core busy the "
                         "throughput ratio is bounded near direct / (direct + proxy))")
    data["comparisons"] = [c.to_dict() for c in comparisons]
    saved = figures.save(out_dir, data)
    print()
    print("\n".join(lines))
    print(f"data: {saved}")
    return 0
