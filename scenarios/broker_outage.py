"""broker_outage: the broker goes away under load, three ways.

- stop: graceful shutdown (clients get a connection-close), restarted after 5 s;
- kill: SIGKILL (sockets reset, nothing flushed on the way out), restarted after 5 s;
- pause: SIGSTOP for 5 s (connections stay open but nothing answers).

The outbox must buffer, relay and consumer must reconnect, and the replica must converge;
recovery_s (heal -> everything written before the heal is applied) is reported.
"""

from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

_LOAD = WorkloadSpec(rate_per_s=200, duration_s=12, initial_products=50)

SCENARIOS = tuple(
    Scenario(
        name=f"broker_outage_{how}",
        description=f"broker {what} for 5 s under load; outbox buffers, clients reconnect, "
                    "replica converges; recovery time reported",
        workload=_LOAD,
        faults=(FaultStep(how, "broker", at_s=3.0, duration_s=5.0, jitter_s=0.5),),
        converge_timeout_s=40,
        settle_s=1.0,
    )
    for how, what in (("stop", "stopped gracefully"), ("kill", "SIGKILLed"),
                      ("pause", "frozen (SIGSTOP)"))
)
