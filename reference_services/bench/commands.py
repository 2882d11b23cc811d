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
    from harness.faultproxy.bench import run_bench
    from reference_services.bench.proxy_rabbitmq import run_proxy_bench

    out_dir = Path(args.report_dir) / time.strftime("bench-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench proxy: {args.messages} messages x {args.repeats} rounds, direct vs proxied")
    amqp = run_proxy_bench(out_dir, args.messages, args.repeats)
    print("raw TCP echo, direct vs proxied (2 s each) ...", flush=True)
    tcp = run_bench(2.0)
    data = {"bench": "proxy", "rabbitmq": amqp.to_dict(), "tcp_echo": tcp,
            "targets": {"throughput_ratio": ">= 0.9", "added_p50_ms": "<= 0.5"}}
    (out_dir / "bench.json").write_text(json.dumps(data, indent=2))
    print(f"\nRabbitMQ publish+consume: direct {amqp.direct_msgs_per_s:.0f} msg/s, "
          f"proxied {amqp.proxied_msgs_per_s:.0f} msg/s -> ratio {amqp.throughput_ratio:.2f} "
          "(target >= 0.9)")
    print(f"AMQP round trip p50: direct {amqp.direct_rtt_p50_ms:.3f} ms, proxied "
          f"{amqp.proxied_rtt_p50_ms:.3f} ms -> added {amqp.added_p50_ms:.3f} ms "
          "(target <= 0.5)")
    print(f"raw TCP bulk ratio {tcp['throughput_ratio']:.2f}, added p50 "
          f"{tcp['added_p50_ms']:.3f} ms (no broker: the proxy's worst case)")
    print(f"data: {out_dir / 'bench.json'}")
    return 0
