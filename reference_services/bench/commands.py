"""`harness bench integrity|resync|proxy`: the commands, registered as entry points of the
group replication_chaos_harness.benches (see pyproject.toml). Each takes the parsed
`harness bench` arguments and returns an exit code."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.errors import ConfigError


def _int_list(value: str | None, option: str) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(option, f"expected comma-separated integers, got {value!r}",
                          f"e.g. {option} 1,10,100") from None


def integrity(args: argparse.Namespace) -> int:
    from harness.bench import figures
    from reference_services.bench.integrity import format_table, run_integrity_bench

    sizes = [args.rows] if args.rows is not None else [100_000, 1_000_000]
    divergent = _int_list(args.k, "--k") or [1, 10, 100]
    out_dir = Path(args.report_dir) / time.strftime("bench-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = run_integrity_bench(sizes, divergent, work_dir=out_dir)
    print(format_table(data))
    saved = figures.save(out_dir, {"bench": "integrity", **data})
    print(f"data: {saved}")
    return 0


def resync(args: argparse.Namespace) -> int:
    from harness.bench import figures
    from reference_services.bench.resync import run_resync_bench

    if args.rate <= 0:
        raise ConfigError("--rate", f"{args.rate:g} updates per second cannot load anything",
                          "give a positive rate, e.g. --rate 200")
    partial_sizes = _int_list(args.k, "--k") or [100, 1000]
    out_dir = figures.bench_dir(args.report_dir)
    data = run_resync_bench(out_dir, rows=args.rows or 100_000,
                            partial_sizes=partial_sizes,
                            rate=args.rate)
    lines = []
    for label, part in (("idle", data["idle"]),
                        (f"under {data['under_load']['rate']:g} writes/s", data["under_load"])):
        full = figures.compare(f"full resync of {data['rows']} rows, {label}", "ms",
                               part["full"]["seconds"] * 1000, data["raw_bulk_copy_s"] * 1000,
                               data["full_target"])
        part["full"]["comparison"] = full.to_dict()
        lines.append(figures.format_comparison(full, "pipeline", "raw bulk copy"))
        for item in part["partial"]:
            verdict = "met" if item["met"] else "NOT met"
            lines.append(f"partial resync of {item['ids']} ids, {label}: "
                         f"{item['seconds'] * 1000:.1f} ms, {item['per_id_ms']:.4f} ms per id "
                         f"(target <= {item['target_ms_per_id']} ms per id: {verdict})")
    loaded = data["under_load"]
    lines.append(f"under load: {loaded['writes']} writes sent ({loaded['failed_writes']} "
                 f"failed), {loaded['writes_during_full']} during the full resync; both "
                 "replicas matched the publisher afterwards")
    saved = figures.save(out_dir, data)
    print()
    print("\n".join(lines))
    print(f"data: {saved}")
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
