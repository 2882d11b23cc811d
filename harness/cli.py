"""The `harness` command line.

Exit codes of `run` and `check` follow the scenarios' verdicts and the types of the
exceptions raised, never the wording of a message:

- 0: every scenario passed.
- 1: a scenario failed (a check found a problem) or errored: a checker raised (its check
  is "unknown"), the harness could not carry the scenario out (a HarnessError after the
  system reached its steady state), or an unexpected exception (a harness bug; its
  traceback is in the scenario's error.txt). The session goes on to the next scenario.
- 2: usage or set-up error, with one line saying what to do: a ConfigError (bad option,
  scenario definition or stored file), a SetupError outside a scenario, an OSError (e.g. a
  report directory that cannot be written), or every scenario errored while setting up
  (the system never started or never reached its steady state: the environment is at
  fault, nothing about the system under test was judged).
- 3: inconclusive: nothing failed or errored, but a scenario could not show what a check
  needs (e.g. its fault created no divergence to repair).
- 130: interrupted (Ctrl-C or SIGTERM); everything started was stopped.

When several apply, the first in this order wins: 130, 2 (every scenario a set-up
error), 1, 3, 0. The same mapping is `harness.results.exit_code`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import Any

from harness.errors import ConfigError, HarnessError, SetupError
from harness.images import IMAGE_SOURCES
from harness.results import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_USAGE,
    exit_code,
)
from harness.runtime.registry import RUNTIMES
from harness.settings import BROKERS, RunSettings
from harness.variants import DBS, VARIANTS

__all__ = ["EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_INTERRUPTED", "EXIT_PASS", "EXIT_USAGE",
           "build_parser", "main"]


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.brokers.registry import broker_plugin
    from harness.session import load_catalogue

    offered = broker_plugin(args.broker).capabilities if args.broker else None
    where = " with ".join(filter(None, (args.broker, args.db and f"--db {args.db}")))
    elsewhere: list[str] = []
    for scenario in load_catalogue().values():
        reason = scenario.not_applicable_on(
            offered if offered is not None else frozenset(scenario.needs), args.db)
        if reason:
            elsewhere.append(f"  {scenario.name:<22} {reason}")
            continue
        print(f"{scenario.name:<22} {scenario.description}")
    if elsewhere:
        print(f"\nnot applicable on {where}:")
        print("\n".join(elsewhere))
    print("\nvariants (--variant):")
    for variant in VARIANTS.values():
        if (args.broker and args.broker not in variant.brokers) \
                or (args.db and args.db not in variant.dbs):
            continue
        caught = ", ".join(sorted({s for b in variant.brokers if b in (args.broker or b)
                                   for s in variant.caught_by(b)}))
        print(f"  {variant.name:<24} [{variant.service}] {variant.bug} (caught by: "
              f"{caught or 'no scenario yet'})")
    return EXIT_PASS


class _Printer:
    """One line per progress message, prefixed with the scenario and its elapsed time."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, scenario: str, message: str) -> None:
        now = time.monotonic()
        began = self.started.setdefault(scenario, now)
        if message.startswith("@verdict"):
            return
        print(f"[{scenario} {now - began:5.1f}s] {message}", flush=True)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.reporting import scenario_line
    from harness.scenario_file import load_file
    from harness.session import prepare_report_dir, run_scenarios, select_scenarios

    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 2**31
    settings = RunSettings(seed=seed, broker=args.broker, runtime=args.runtime,
                           variant=args.variant, report_root=Path(args.report_dir),
                           db=args.db)
    # Files alone run just themselves; no name and no file, the whole catalogue.
    scenarios = select_scenarios(args.scenarios) if args.scenarios or not args.scenario_files \
        else []
    from_files = [(str(Path(path).resolve()), load_file(Path(path)))
                  for path in args.scenario_files]
    scenarios += [scenario for _path, scenario in from_files]
    prepare_report_dir(settings.report_root)  # before anything starts
    print(f"harness run: {len(scenarios)} scenario(s), seed={seed}, broker={settings.broker}, "
          f"runtime={settings.runtime}, db={settings.db}, variant={settings.variant}",
          flush=True)
    result, report_dir = run_scenarios(scenarios, settings, progress=_Printer(),
                                       files={s.name: path for path, s in from_files})
    print()
    for scenario in result.scenarios:
        print(scenario_line(scenario.to_dict()))
    verdicts = [s.verdict for s in result.scenarios]
    inconclusive = verdicts.count("inconclusive")
    skipped = verdicts.count("not_applicable")
    print(f"\n{verdicts.count('pass')} of {len(verdicts) - skipped} passed"
          + (f", {inconclusive} inconclusive" if inconclusive else "")
          + (f", {skipped} not applicable on {settings.broker}" if skipped else "")
          + f" (seed {seed})")
    print(f"report: {report_dir / 'run.json'}")
    if not result.passed:
        print(f"replay: {result.replay_command()}")
    return result.exit_code


def _cmd_show(args: argparse.Namespace) -> int:
    from harness.scenario_file import dump
    from harness.session import select_scenarios

    (scenario,) = select_scenarios([args.name])
    sys.stdout.write(dump(scenario))
    return EXIT_PASS


def _cmd_explore(args: argparse.Namespace) -> int:
    from harness.explore.search import Budget
    from harness.explore.session import explore

    try:
        budget = Budget.parse(args.budget)
    except ValueError as exc:
        raise ConfigError("--budget", str(exc), "e.g. --budget 15m or --budget 40") from exc
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 2**31
    settings = RunSettings(seed=seed, broker=args.broker, runtime=args.runtime,
                           variant=args.variant, report_root=Path(args.report_dir),
                           db=args.db)
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[explore {time.monotonic() - started:6.1f}s] {line}", flush=True)

    found = explore(settings, budget, say, say if args.verbose else lambda _line: None,
                    keep_broker=not args.broker_per_run)
    result = found.result
    print(f"\n{result.summary()}")
    print(f"report: {found.folder / 'explore.json'}")
    if found.minimal_file is None:
        print("no confirmed failing schedule" + (f"; {len(result.flaky)} flaky (see above)"
                                                 if result.flaky else ""))
        return EXIT_INCONCLUSIVE if result.flaky else EXIT_PASS
    print(f"minimal case: {found.minimal_file}")
    print(f"replay: {found.replay}")
    return EXIT_FAIL


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.reporting import load_run_json, render_summary

    path = Path(args.path)
    if path.name == "bench.json" or (path.is_dir() and not (path / "run.json").exists()
                                     and (path / "bench.json").is_file()):
        return _bench_report(path.parent if path.name == "bench.json" else path, args.html)
    if path.is_dir():
        path = path / "run.json"
    if not path.exists():
        raise SetupError(f"{path} does not exist: give a report directory or its run.json, "
                         "or a bench folder")
    run = load_run_json(path)
    if args.html:
        from harness.reporting.html import write_html

        print(f"report: {write_html(run, path.parent)}")
        return EXIT_PASS
    sys.stdout.write(render_summary(run))
    return EXIT_PASS


def _bench_report(bench_dir: Path, html: bool) -> int:
    """A `harness bench` folder: its figures printed, or its index.html drawn again."""
    from harness.reporting.bench_html import load_bench, render_bench_text, write_bench_html

    data = load_bench(bench_dir)
    if html:
        print(f"report: {write_bench_html(data, bench_dir)}")
    else:
        sys.stdout.write(render_bench_text(data))
    return EXIT_PASS


def _cmd_check(args: argparse.Namespace) -> int:
    from harness.recheck import recheck, render

    checked = recheck(Path(args.path))
    for item in checked.scenarios:
        if item.traceback:  # judging raised: a harness bug, worth its full traceback
            print(f"harness: judging {item.result.name} raised:\n{item.traceback}",
                  file=sys.stderr)
    sys.stdout.write(render(checked))
    return exit_code([item.result for item in checked.scenarios])


def _consumer_call(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    import httpx

    try:
        # A consumer started with --admin-token refuses control calls without it
        # (docs/authorization.md); the token is taken from the environment, not the
        # command line, so it stays out of shell histories.
        token = os.environ.get("RCH_ADMIN_TOKEN", "")
        response = httpx.post(url.rstrip("/") + path, json=body, timeout=300.0,
                              headers={"Authorization": f"Bearer {token}"} if token else None)
    except httpx.HTTPError as exc:
        raise SetupError(f"cannot reach the consumer at {url}: {exc} "
                         "(give --consumer http://HOST:PORT of a running consumer)") from exc
    if response.status_code != 200:
        raise SetupError(f"consumer {path} answered {response.status_code}: {response.text}")
    data: dict[str, object] = response.json()
    return data


def _cmd_verify(args: argparse.Namespace) -> int:
    import json

    report = _consumer_call(args.consumer, "/verify", {"bisect": True, "sample": 25})
    print(json.dumps({k: v for k, v in report.items() if k not in ("source", "replica")},
                     indent=2))
    return EXIT_PASS if report.get("outcome") == "in_sync" else EXIT_FAIL


def _cmd_resync(args: argparse.Namespace) -> int:
    import json

    if args.full:
        body: dict[str, object] = {"full": True}
    else:
        try:
            body = {"ids": [int(i) for i in args.ids.split(",") if i.strip()]}
        except ValueError as exc:
            raise ConfigError("--ids", f"not a list of integers: {args.ids!r}",
                              "write --ids 12,57,103") from exc
    print(json.dumps(_consumer_call(args.consumer, "/resync", body), indent=2))
    return EXIT_PASS


BENCH_GROUP = "replication_chaos_harness.benches"


def _benches() -> dict[str, Any]:
    """Benchmarks are plugins (entry points), so those of a service's internals live beside
    that service and the harness imports none of them."""
    return {ep.name: ep for ep in entry_points(group=BENCH_GROUP)}


# Benches that measure the broker --broker names; the others measure one thing only, and
# are refused a --broker rather than let it be silently ignored.
BROKER_BENCHES = frozenset({"proxy", "lag", "replication", "runtimes"})


def _cmd_bench(args: argparse.Namespace) -> int:
    benches = _benches()
    if args.what not in benches:
        raise SetupError(f"no benchmark named {args.what!r} is installed (known: "
                         f"{', '.join(sorted(benches)) or 'none'}); reinstall the project "
                         "with `make bootstrap`")
    if args.broker is not None and args.what not in BROKER_BENCHES:
        raise ConfigError("--broker", f"`harness bench {args.what}` measures one setup only",
                          f"drop --broker; it applies to {' and '.join(sorted(BROKER_BENCHES))}")
    args.broker = args.broker or "rabbitmq"
    return int(benches[args.what].load()(args))


def _cmd_images(args: argparse.Namespace) -> int:
    from harness.images import prepare_images
    from harness.images.docker_cli import project_images, require_docker

    if args.images_command == "build":
        outcome = prepare_images(lambda line: print(line, flush=True),
                                 source=args.image_source, force=args.force,
                                 verbose=args.verbose)
        for step in outcome.built:
            print(f"built {step.tag} in {step.seconds:.1f} s")
        print(f"images ready in {outcome.seconds:.1f} s ({len(outcome.built)} built): "
              + ", ".join(f"{role}={tag}" for role, tag in sorted(vars(outcome.images).items())
                          if role != "source"))
        return EXIT_PASS
    require_docker()
    rows = project_images()
    print(f"{'IMAGE':<32} {'DIGEST':<14} {'SIZE':>9}  CREATED")
    for row in rows:
        print(f"{row.tag:<32} {row.digest:<14} {row.size:>9}  {row.created}")
    if not rows:
        print("no images yet: `harness images build` makes them")
    return EXIT_PASS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Chaos harness for data replication over messaging.")
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="list scenarios and bug variants")
    listing.add_argument("--broker", choices=BROKERS, default=None,
                         help="show which scenarios run on this broker, and why the rest "
                              "do not (and which bug variants exist there)")
    listing.add_argument("--db", choices=DBS, default=None,
                         help="show which scenarios run with the services on this database")
    listing.set_defaults(func=_cmd_list)

    run = sub.add_parser("run", help="run scenarios (all when none is named)")
    run.add_argument("scenarios", nargs="*", metavar="NAME")
    run.add_argument("--broker", default="rabbitmq", choices=BROKERS)
    run.add_argument("--runtime", default=os.environ.get("RCH_RUNTIME", "auto"),
                     choices=RUNTIMES,
                     help="where components run: containers when a Docker engine answers, "
                          "local processes otherwise (auto, the default; RCH_RUNTIME "
                          "changes the default), or either one")
    run.add_argument("--db", default="sqlite", choices=DBS,
                     help="the reference services' database: sqlite files (default), or a "
                          "private PostgreSQL server per scenario")
    run.add_argument("--seed", type=int, default=None,
                     help="replay a run with the seed its report printed (default: random)")
    run.add_argument("--variant", default="none",
                     help="switch one known bug into the reference services "
                          f"(none, {', '.join(VARIANTS)})")
    run.add_argument("--report-dir", default="reports",
                     help="where reports/<run_id>/ is written (default: reports)")
    run.add_argument("--scenario-file", dest="scenario_files", action="append", default=[],
                     metavar="FILE",
                     help="run the scenario in this TOML file (docs/scenario-files.md); "
                          "repeatable, and combinable with NAMEs")
    run.set_defaults(func=_cmd_run)

    show = sub.add_parser("show", help="print a catalogue scenario as a scenario file "
                                       "(TOML), for `run --scenario-file`")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(func=_cmd_show)

    explore = sub.add_parser(
        "explore", help="search for a failing fault schedule with Hypothesis, shrink it, "
                        "and save it as a scenario file (docs/explore.md)")
    explore.add_argument("--broker", default="rabbitmq", choices=BROKERS)
    explore.add_argument("--runtime", default=os.environ.get("RCH_RUNTIME", "processes"),
                         choices=RUNTIMES,
                         help="where components run (default: processes; RCH_RUNTIME "
                              "changes it)")
    explore.add_argument("--db", default="sqlite", choices=DBS,
                         help="the reference services' database (default: sqlite)")
    explore.add_argument("--variant", default="none",
                         help=f"switch one known bug in (none, {', '.join(VARIANTS)})")
    explore.add_argument("--budget", default="15m",
                         help="stop running new schedules after this long (15m, 90s) or "
                              "this many runs (40); default 15m")
    explore.add_argument("--seed", type=int, default=None,
                         help="the same seed and budget draw the same schedules "
                              "(default: random, printed)")
    explore.add_argument("--report-dir", default="reports",
                         help="root of reports/explore/ and reports/explore-db/")
    explore.add_argument("--broker-per-run", action="store_true",
                         help="start a broker for every run (default: one broker kept "
                              "for the search, each run in a namespace of its own)")
    explore.add_argument("--verbose", action="store_true",
                         help="also print each run's own progress lines")
    explore.set_defaults(func=_cmd_explore)

    bench = sub.add_parser("bench", help="benchmarks (ratios against the raw part, same run)")
    bench.add_argument("what", choices=sorted(_benches()) or ["proxy", "integrity", "resync"])
    bench.add_argument("--rows", type=int, default=None,
                       help="integrity, resync: dataset size (default: integrity 100000 "
                            "and 1000000, resync 100000)")
    bench.add_argument("--k", default=None,
                       help="integrity: divergent rows, e.g. 1,10,100 (default); resync: "
                            "ids per partial resync, e.g. 100,1000 (default)")
    bench.add_argument("--messages", type=int, default=20000)
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--path", choices=("all", "tcp", "amqp-fast", "amqp-confirmed"),
                       default="all",
                       help="proxy on rabbitmq: the path measured (default: all three)")
    bench.add_argument("--broker", choices=BROKERS, default=None,
                       help="proxy, lag, replication: the broker measured (default: rabbitmq)")
    bench.add_argument("--rate", type=float, default=200.0,
                       help="lag: writes (and raw messages) per second; resync: updates "
                            "per second while it measures under load")
    bench.add_argument("--duration-s", type=float, default=10.0,
                       help="lag: seconds of load, raw and through the pipeline")
    bench.add_argument("--seed", type=int, default=None,
                       help="lag, replication: the pipeline's workload seed (default: "
                            "random, saved)")
    bench.add_argument("--quick", action="store_true",
                       help="replication: rungs 100 and 200 writes/s, one outage of each "
                            "fault type, smaller raw measures (a few minutes)")
    bench.add_argument("--db", default="sqlite", choices=DBS,
                       help="replication: the services' database, measured raw too")
    bench.add_argument("--rates", default=None,
                       help="replication: the ladder of offered write rates, e.g. "
                            "50,100,200,400 (default; --quick: 100,200)")
    bench.add_argument("--lag-bound-ms", type=float, default=1000.0,
                       help="replication: the lag p99 a rate must stay under to count as "
                            "sustained")
    bench.add_argument("--cold", action="store_true",
                       help="runtimes: rebuild every image first (the first build's cost)")
    bench.add_argument("--report-dir", default="reports")
    bench.set_defaults(func=_cmd_bench)

    # Only listed here: main() hands its arguments to the proxy's own parser untouched.
    sub.add_parser("faultproxy", help="run the Toxiproxy-compatible fault proxy "
                                      "(harness faultproxy --help)")

    verify = sub.add_parser("verify", help="integrity check of a running consumer against "
                                           "its publisher (exit 0 in sync, 1 diverged)")
    verify.add_argument("--consumer", required=True, help="consumer URL, http://HOST:PORT")
    verify.set_defaults(func=_cmd_verify)

    resync = sub.add_parser("resync", help="trigger a resync on a running consumer")
    resync.add_argument("--consumer", required=True, help="consumer URL, http://HOST:PORT")
    which = resync.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", help="partial resync of these ids: 12,57,103")
    which.add_argument("--full", action="store_true", help="full resync (export + catch-up)")
    resync.set_defaults(func=_cmd_resync)

    report = sub.add_parser("report", help="print the summary of a stored run or bench")
    report.add_argument("path", help="reports/<run_id> or its run.json, or a bench's "
                                     "reports/bench-<time>")
    report.add_argument("--html", action="store_true",
                        help="render its index.html again (from run.json and the scenario "
                             "folders, or a bench's from bench.json) instead of printing "
                             "the summary")
    report.set_defaults(func=_cmd_report)

    check = sub.add_parser(
        "check", help="judge a stored run again from its files alone (exit codes as run)")
    check.add_argument("path", help="reports/<run_id>, its run.json, or one scenario folder "
                                    "reports/<run_id>/<scenario>")
    check.set_defaults(func=_cmd_check)

    images = sub.add_parser("images", help="the containers runtime's images, built offline "
                                           "(docs/containers.md)")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    images_build = images_sub.add_parser(
        "build", help="build the missing images (each is tagged by a digest of its inputs)")
    images_build.add_argument("--image-source", choices=IMAGE_SOURCES, default="local",
                              help="local: build from Debian packages and the host's "
                                   "wheels (default); registry: the official broker and "
                                   "database images, pulled")
    images_build.add_argument("--force", action="store_true",
                              help="rebuild every image, also those that exist")
    images_build.add_argument("--verbose", action="store_true",
                              help="stream the output of each docker build")
    images_sub.add_parser("list", help="the project's images: tags, digests, sizes")
    images.set_defaults(func=_cmd_images)
    return parser


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (CI cancelling a job) gets the same cleanup as Ctrl-C.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["faultproxy"]:
        from harness.faultproxy.cli import main as faultproxy_main

        return faultproxy_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, SetupError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except OSError as exc:
        # The environment refused something (a file or directory that cannot be written,
        # a full disk): one line naming it, like any other user-fixable error.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"harness: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nharness: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
