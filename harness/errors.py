"""The harness's exception tree.

    HarnessError
    +-- ConfigError        a scenario or setting is invalid; names the field and the fix
    +-- SetupError         something the run needs is missing or would not start
    |   +-- ComponentStartError   a component did not become ready (carries its log tail)
    |   +-- SteadyStateNotReached the system did not replicate before the first fault
    +-- WaitTimeout        a wait_until condition did not hold in time
    +-- FaultError         a fault could not be injected or healed
    +-- BrokerError        a broker operation failed
    +-- ObservationError   an observer could not see what it was asked to

User errors (ConfigError, SetupError) are printed without a traceback by the CLI and map to
exit code 2. Inside a scenario, any HarnessError raised before its steady state was shown
is a set-up error; see harness/results.py for how errors become exit codes.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A scenario definition or setting is invalid."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem} (fix: {fix})")


class SetupError(HarnessError):
    """Something the run needs is missing or could not be prepared."""


class ComponentStartError(SetupError):
    """A component was started but never became ready."""

    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_tail = log_tail
        message = f"{component} did not become ready: {reason}"
        if log_tail:
            message += f"\n--- last lines of {component}'s log ---\n{log_tail}"
        super().__init__(message)


class SteadyStateNotReached(SetupError):
    """Before the first fault the system did not show that it replicates: the scenario
    errors as set-up, since nothing a fault then did could be judged."""


class WaitTimeout(HarnessError):
    """A condition awaited with wait_until did not hold before its deadline.

    Named WaitTimeout, not TimeoutError, so it never shadows the builtin.
    """


class FaultError(HarnessError):
    """A fault could not be injected or healed."""


class BrokerError(HarnessError):
    """A broker operation failed."""


class ObservationError(HarnessError):
    """An observer could not see what it was asked to (a database file that cannot be
    read, a tap that cannot subscribe)."""
