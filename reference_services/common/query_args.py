"""Strict query arguments for the services' listing endpoints.

Flask's `request.args.get(name, type=int)` falls back to the default on a value it cannot
parse, so `limit=abc` silently meant 1000 and `limit=-1` reached the database. Here a bad
value is a `BadArgument`, which each app answers with 400 naming the argument.
"""

from __future__ import annotations

from flask import request


class BadArgument(ValueError):
    """A query argument that is not an integer in its allowed range."""


def int_arg(name: str, default: int, minimum: int = 0, cap: int | None = None) -> int:
    """Query argument `name` as an integer >= `minimum` (`default` when absent); a value
    above `cap` is lowered to it (a page size, where asking for more is no error)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadArgument(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise BadArgument(f"{name} must be >= {minimum}, got {value}")
    return value if cap is None else min(value, cap)
