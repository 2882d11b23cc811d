"""The error an API handler raises to send Toxiproxy's ``{"error", "status"}`` reply."""

from __future__ import annotations

from harness.errors import FaultError


class ApiError(FaultError):
    """A request failed; ``message`` and ``status`` become the JSON error body."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
