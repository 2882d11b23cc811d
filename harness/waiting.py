"""The one waiting helper every part of the harness uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    describe: str,
    interval_s: float = 0.05,
    last_seen: Callable[[], str] | None = None,
    log_tail: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns a truthy value, and return that value.

    Exceptions raised by `condition` count as "not yet" (a service that is still starting
    refuses connections); the last one is reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
            last_error = None
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    parts = [f"timed out after {timeout_s:.1f}s waiting for {describe}"]
    if last_error is not None:
        parts.append(f"last error: {type(last_error).__name__}: {last_error}")
    if last_seen is not None:
        parts.append(f"last seen: {last_seen()}")
    if log_tail is not None:
        tail = log_tail()
        if tail:
            parts.append(f"log tail:\n{tail}")
    raise WaitTimeout("\n".join(parts))
