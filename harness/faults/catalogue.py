"""Fault actions a scenario can schedule by name, what they target, and how each is built."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from harness.brokers import capabilities as caps
from harness.brokers.base import BrokerAdapter
from harness.consumers import role
from harness.contract.client import ConsumerClient, PublisherClient
from harness.contract.crash_points import POINTS as CRASH_POINT_NAMES
from harness.contract.crash_points import service_of
from harness.contract.grants import Grants
from harness.faults.access_probe import AccessProbe
from harness.faults.base import Fault
from harness.faults.commit_delay import CommitDelay
from harness.faults.crash_point import CrashAtPoint
from harness.faults.log_position import PositionBeforeLog
from harness.faults.messages import (
    POISON_KINDS,
    BrokerDataLoss,
    DuplicateDelivery,
    PoisonMessages,
    Reorder,
    StaleRedelivery,
)
from harness.faults.network import ClientProbe, LinkDown, ToxicFault
from harness.faults.process import CrashMidBatch, KillProcess, PauseProcess, StopProcess
from harness.faults.publisher import ConsumerBug, DataLossWhileDown, RelayMisbehaves
from harness.faults.resync import FullResyncWithLoss
from harness.faults.resync_call import ResyncCall
from harness.links import CONSUMER_PUBLISHER, LINKS, Links
from harness.runtime.base import Component

# Targets as the catalogue names them. "consumer", "consumer_broker" and
# "consumer_publisher" are the first consumer's; an action with `any_consumer` also takes
# every other consumer's and instance's counterpart (harness/consumers.py).
PROCESS_TARGETS = ("broker", "publisher", "consumer")
LINK_TARGETS = LINKS
STREAMS = ("upstream", "downstream")


class FaultContext(Protocol):
    """What a fault may reach in the system under test."""

    links: Links
    consumer_name: str
    admin_token: str  # what the services' control endpoints require
    grants: Grants  # every credential of the run (harness/contract/grants.py)

    @property
    def broker(self) -> BrokerAdapter: ...

    def recent_event_bodies(self, count: int) -> list[bytes]: ...

    def component(self, name: str) -> Component: ...

    def link_probe(self, link: str) -> ClientProbe | None: ...


@dataclass(frozen=True)
class ParamRange:
    """A parameter drawn from the scenario's seeded Random: uniform in [low, high]."""

    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class FaultRequest:
    target: str
    params: Mapping[str, float]
    stream: str
    rng: random.Random  # for faults that make random choices (poison kinds, order)


Builder = Callable[[FaultContext, FaultRequest], Fault]


@dataclass(frozen=True)
class FaultAction:
    build: Builder
    params: Mapping[str, ParamRange]  # accepted parameters and their defaults
    targets: tuple[str, ...]
    description: str
    # Broker capabilities the action uses (harness/brokers/capabilities.py).
    needs: frozenset[str] = frozenset()
    # True: it acts on whichever process or link it is given, so it takes any consumer's
    # (consumer2, consumer2.i2, consumer2_broker, ...). False: it reaches the first
    # consumer's subscription, process or API by name, so only "consumer" is meant.
    any_consumer: bool = False

    def accepts(self, target: str) -> bool:
        return target in self.targets or (self.any_consumer and role(target) in self.targets)


def _process(make: Callable[[Component, Mapping[str, float]], Fault]) -> Builder:
    return lambda ctx, req: make(ctx.component(req.target), req.params)


def _crash_point(point: str) -> Builder:
    return lambda ctx, req: CrashAtPoint(ctx.component(req.target), point,
                                         int(req.params.get("after_hits", 1)),
                                         ctx.admin_token)


def _resync_call(full: bool) -> Builder:
    def build(ctx: FaultContext, req: FaultRequest) -> Fault:
        return ResyncCall(ConsumerClient(ctx.component(req.target).endpoint().http_url(),
                                         token=ctx.admin_token),
                          PublisherClient(ctx.component("publisher").endpoint().http_url(),
                                          token=ctx.admin_token),
                          req.target, full, int(req.params["count"]), req.rng)
    return build


def _toxic(toxic_type: str, integer_attributes: tuple[str, ...]) -> Builder:
    def build(ctx: FaultContext, req: FaultRequest) -> Fault:
        attributes = {k: round(v) for k, v in req.params.items()
                      if k in integer_attributes}
        toxicity = req.params.get("toxicity", 1.0)
        return ToxicFault(ctx.links, req.target, toxic_type, req.stream, attributes,
                          toxicity, ctx.link_probe(req.target))
    return build


def _fixed(**values: float) -> dict[str, ParamRange]:
    return {k: ParamRange(v, v) for k, v in values.items()}


# Toxic types and their default attributes: strong enough to be felt at 200 events/s.
_TOXICS: dict[str, tuple[dict[str, ParamRange], str]] = {
    "latency": (_fixed(latency=300, jitter=50), "adds latency (+-jitter) in ms"),
    "bandwidth": (_fixed(rate=8), "caps the rate in KB/s"),
    "slicer": (_fixed(average_size=16, size_variation=8, delay=2000),
               "slices data into small writes with a delay (us) between them"),
    "reset_peer": (_fixed(timeout=0), "resets connections (TCP RST) after timeout ms"),
    "timeout": (_fixed(timeout=0), "drops data; closes after timeout ms (0: when removed)"),
    "limit_data": (_fixed(bytes=2000), "closes each connection after that many bytes"),
    "slow_close": (_fixed(delay=1000), "delays closing a connection by delay ms"),
}

ACTIONS: dict[str, FaultAction] = {
    "kill": FaultAction(_process(lambda c, _p: KillProcess(c)), {}, PROCESS_TARGETS,
                        "SIGKILL; heal restarts it", any_consumer=True),
    "stop": FaultAction(_process(lambda c, _p: StopProcess(c)), {}, PROCESS_TARGETS,
                        "graceful stop; heal starts it", any_consumer=True),
    "pause": FaultAction(_process(lambda c, _p: PauseProcess(c)), {}, PROCESS_TARGETS,
                         "SIGSTOP; heal sends SIGCONT", any_consumer=True),
    "crash_mid_batch": FaultAction(
        _process(lambda c, p: CrashMidBatch(c, backlog_s=p["backlog_s"], delay_s=p["delay_s"])),
        {"backlog_s": ParamRange(0.6, 1.2), "delay_s": ParamRange(0.005, 0.03)},
        ("consumer",),
        "freeze to build a backlog, thaw, SIGKILL while draining it; heal restarts it",
        any_consumer=True),
    **{
        f"crash_point:{point}": FaultAction(
            _crash_point(point),
            {"after_hits": ParamRange(1, 1)},
            (service_of(point),),
            f"the service SIGKILLs itself at {point}; heal restarts it", any_consumer=True)
        for point in sorted(CRASH_POINT_NAMES)
    },
    "duplicate": FaultAction(
        lambda ctx, req: DuplicateDelivery(
            ctx.broker, ctx.consumer_name,
            lambda: ctx.recent_event_bodies(int(req.params["events"])),
            int(req.params["copies"])),
        {"events": ParamRange(300, 300), "copies": ParamRange(2, 2)}, ("consumer",),
        "delivers the last `events` published events `copies` more times",
        frozenset({caps.INJECT_RAW})),
    "reorder": FaultAction(
        lambda ctx, req: Reorder(ctx.broker, ctx.consumer_name, req.rng), {}, ("consumer",),
        "holds the consumer's events for the fault's duration, then delivers them newest "
        "first", frozenset({caps.HOLD_AND_RELEASE})),
    "redeliver_stale": FaultAction(
        lambda ctx, req: StaleRedelivery(
            ctx.broker, ctx.consumer_name,
            lambda: ctx.recent_event_bodies(int(req.params["events"])),
            int(req.params["count"]), req.params["settle_s"], req.rng),
        {"events": ParamRange(300, 300), "count": ParamRange(60, 60),
         "settle_s": ParamRange(1.0, 1.0)}, ("consumer",),
        "produces again, under new event ids, up to `count` older versions of products "
        "that got a newer version (written at least `settle_s` ago) among the last "
        "`events` published", frozenset({caps.INJECT_RAW})),
    "poison": FaultAction(
        lambda ctx, req: PoisonMessages(ctx.broker, ctx.consumer_name,
                                        POISON_KINDS * int(req.params["per_kind"]), req.rng),
        {"per_kind": ParamRange(1, 1)}, ("consumer",),
        f"injects poison messages of every kind ({', '.join(POISON_KINDS)})",
        frozenset({caps.INJECT_RAW, caps.DEAD_LETTER})),
    "broker_data_loss": FaultAction(
        lambda ctx, req: DataLossWhileDown(
            ctx.component("consumer"),
            BrokerDataLoss(ctx.broker, ctx.consumer_name,
                           "delete" if req.params["delete_queue"] else "purge"),
            req.params["backlog_s"]),
        {"backlog_s": ParamRange(2.0, 2.0), "delete_queue": ParamRange(0, 0)},
        ("consumer",),
        "stops the consumer, lets a backlog build, purges (or deletes) its queue; heal "
        "starts it", frozenset({caps.LOSE_DATA})),
    "position_before_log": FaultAction(
        lambda ctx, req: PositionBeforeLog(
            ctx.component("consumer"),
            DataLossWhileDown(ctx.component("consumer"),
                              BrokerDataLoss(ctx.broker, ctx.consumer_name, "purge"),
                              req.params["backlog_s"])),
        {"backlog_s": ParamRange(2.0, 2.0)}, ("consumer",),
        "stops the consumer, lets a backlog build, makes the broker lose the log up to its "
        "end, so the consumer's stored positions point before the log's start; heal starts "
        "it, which must report the data loss", frozenset({caps.LOSE_DATA,
                                                            caps.CONSUMER_GROUPS})),
    **{
        f"resync_{kind}": FaultAction(
            _resync_call(full=kind == "full"),
            {"count": ParamRange(50, 50)}, ("consumer",),
            text, any_consumer=True)
        for kind, text in (
            ("partial", "asks the consumer for a partial resync of `count` ids drawn from "
                        "the source's id range"),
            ("full", "asks the consumer for a full resync (export, then catch-up); "
                     "`count` is unused"))
    },
    "unauthorized_calls": FaultAction(
        lambda ctx, req: AccessProbe(ctx.component(req.target), req.target, ctx.grants),
        {}, ("publisher", "consumer"),
        "calls every endpoint of the service but its writes and /health with no credential, "
        "a wrong one and (where the admin's is needed) each consumer's; on the publisher, "
        "each read endpoint with each consumer's own too", any_consumer=True),
    "relay_drop": FaultAction(
        lambda ctx, req: RelayMisbehaves(ctx.component("publisher"), "drop",
                                         int(req.params["count"]), ctx.admin_token),
        {"count": ParamRange(40, 40)}, ("publisher",),
        "the relay marks the next `count` events sent without publishing them"),
    "relay_corrupt": FaultAction(
        lambda ctx, req: RelayMisbehaves(ctx.component("publisher"), "corrupt",
                                         int(req.params["count"]), ctx.admin_token),
        {"count": ParamRange(30, 30)}, ("publisher",),
        "the relay sends the next `count` upserts with wrong, valid-looking values"),
    "commit_delay": FaultAction(
        lambda ctx, req: CommitDelay(ctx.component("publisher"), int(req.params["count"]),
                                     req.params["hold_s"], ctx.admin_token),
        {"count": ParamRange(4, 4), "hold_s": ParamRange(1.0, 1.0)}, ("publisher",),
        "the next `count` writes hold their transaction open `hold_s` after their outbox "
        "insert, so later writes commit first (rows visible out of sequence order; needs "
        "concurrent writers: PostgreSQL)"),
    "consumer_bug": FaultAction(
        lambda ctx, req: ConsumerBug(ctx.component("consumer"), ctx.admin_token), {},
        ("consumer",),
        "deploys a consumer defect (names truncated in every write); heal deploys the fix"),
    "link_down": FaultAction(
        lambda ctx, req: LinkDown(ctx.links, req.target, ctx.link_probe(req.target)),
        {}, LINK_TARGETS, "cuts the link (proxy disabled); heal re-enables it",
        any_consumer=True),
    **{
        name: FaultAction(_toxic(name, tuple(params)),
                          {**params, "toxicity": ParamRange(1.0, 1.0)}, LINK_TARGETS, text,
                          any_consumer=True)
        for name, (params, text) in _TOXICS.items()
    },
    "full_resync_with_loss": FaultAction(
        lambda ctx, req: FullResyncWithLoss(
            ctx.broker, ctx.consumer_name,
            ConsumerClient(ctx.component("consumer").endpoint().http_url(),
                           token=ctx.admin_token),
            PublisherClient(ctx.component("publisher").endpoint().http_url(),
                            token=ctx.admin_token),
            ctx.links, CONSUMER_PUBLISHER, req.params["backlog_s"],
            req.params["export_delay_s"]),
        {"backlog_s": ParamRange(0.5, 0.5), "export_delay_s": ParamRange(1.0, 1.0)},
        ("consumer",),
        "diverts the consumer's events and purges its queue, triggers a full resync whose "
        "export's answer is held `export_delay_s`, then deletes the held events up to the "
        "publisher's high-water mark read meanwhile: those after the export's mark reach "
        "the replica only through the resync's catch-up",
        frozenset({caps.HOLD_AND_RELEASE, caps.LOSE_DATA})),
}
