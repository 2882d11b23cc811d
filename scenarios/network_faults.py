"""network_faults: every toxic on every link, one after another under load.

Each link gets latency, a bandwidth cap, slicing, connection resets, a black hole
(timeout), a byte limit per connection and a cut (link_down), two seconds each, one second
apart. Nothing may be lost; lag grows during each fault and recovers after it.
slow_close is left out: it only delays a close, which replication does not notice (the
fault-proxy conformance tests cover it).

network_faults_consumer_db (PostgreSQL only: an SQLite file has no connection) puts the
faults a database connection meets on the consumer's link to its database: slow answers,
resets, a black hole, a cut. Each may cost failed transactions, which the consumer must
neither acknowledge nor skip: it retries them, and each event is still applied once.

link_partition cuts the relay's link, then the consumer's, for 4 s each.
"""

from harness.faults.catalogue import ParamRange
from harness.links import CONSUMER_BROKER, CONSUMER_DB, CONSUMER_PUBLISHER, RELAY_BROKER
from harness.scenario import FaultStep, Scenario
from harness.variants import DBS, POSTGRES
from harness.workload import WorkloadSpec

# The direction that carries the link's main traffic: publishes go up the relay's link,
# deliveries and API answers come down the consumer's. Every toxic acts on it, latency
# too: delaying only the broker's acknowledgements is not felt by a producer that keeps
# several requests in flight (Kafka's idempotent producer: +0.11 s of lag where 0.125 s
# counts as felt).
_MAIN_STREAM = {RELAY_BROKER: "upstream", CONSUMER_BROKER: "downstream",
                CONSUMER_PUBLISHER: "downstream", CONSUMER_DB: "downstream"}

_STEPS: tuple[tuple[str, dict[str, ParamRange]], ...] = (
    ("latency", {}),
    ("bandwidth", {}),
    ("slicer", {}),
    ("reset_peer", {}),
    ("timeout", {}),
    ("limit_data", {}),
    ("link_down", {}),
)
# A database connection carries small statements and answers, many round trips per
# transaction: throttles (bandwidth, slicer, limit_data) only repeat what latency and a
# reset show there.
_DB_STEPS = tuple(step for step in _STEPS
                  if step[0] in ("latency", "reset_peer", "timeout", "link_down"))


def _fixed(**values: float) -> dict[str, ParamRange]:
    return {k: ParamRange(v, v) for k, v in values.items()}


# The publisher API link carries small answers (a snapshot is ~300 bytes over keep-alive
# connections), so the throttles must be harsher there for its client to feel them.
_OVERRIDES: dict[str, dict[str, dict[str, ParamRange]]] = {
    # A relay that reconnects at once barely notices a connection closed every 2,000
    # bytes (seen: +6 ms of lag); at 600 a connection carries its handshake and about one
    # batch, so publishing becomes mostly reconnecting.
    RELAY_BROKER: {"limit_data": _fixed(bytes=600)},
    CONSUMER_PUBLISHER: {
        "bandwidth": _fixed(rate=1),
        "slicer": _fixed(average_size=8, size_variation=4, delay=20000),
        "limit_data": _fixed(bytes=100),
    },
}


def _schedule(link: str, steps: tuple[tuple[str, dict[str, ParamRange]], ...]
              ) -> tuple[FaultStep, ...]:
    return tuple(
        FaultStep(action, link, at_s=1.5 + 3.0 * index, duration_s=2.0,
                  params={**params, **_OVERRIDES.get(link, {}).get(action, {})},
                  stream=_MAIN_STREAM[link])
        for index, (action, params) in enumerate(steps)
    )


def _network_scenario(name: str, link: str, what: str,
                      steps: tuple[tuple[str, dict[str, ParamRange]], ...] = _STEPS,
                      dbs: tuple[str, ...] = DBS) -> Scenario:
    return Scenario(
        name=name,
        description=f"each toxic on {what} for 2 s under load; nothing lost, lag recovers",
        workload=WorkloadSpec(rate_per_s=150, duration_s=3.0 * len(steps) + 1.5,
                              initial_products=50),
        faults=_schedule(link, steps),
        converge_timeout_s=40,
        dbs=dbs,
    )


SCENARIOS = (
    _network_scenario("network_faults_relay", RELAY_BROKER, "the relay -> broker link"),
    _network_scenario("network_faults_consumer", CONSUMER_BROKER,
                      "the consumer -> broker link"),
    _network_scenario("network_faults_publisher_api", CONSUMER_PUBLISHER,
                      "the consumer -> publisher API link"),
    _network_scenario("network_faults_consumer_db", CONSUMER_DB,
                      "the consumer -> its PostgreSQL database link", _DB_STEPS, (POSTGRES,)),
    Scenario(
        name="link_partition",
        description="relay -> broker link down 4 s, then consumer -> broker link down 4 s",
        workload=WorkloadSpec(rate_per_s=200, duration_s=12, initial_products=50),
        faults=(FaultStep("link_down", RELAY_BROKER, at_s=1.5, duration_s=4.0),
                FaultStep("link_down", CONSUMER_BROKER, at_s=7.0, duration_s=4.0)),
        converge_timeout_s=40,
    ),
)
