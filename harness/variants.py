"""Known-buggy variants of the reference services (DESIGN.md section 5).

Each switches one bug into one service, so a scenario can prove its checkers catch it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    name: str
    service: str  # "publisher" or "consumer"
    bug: str
    caught_by: tuple[str, ...]  # scenarios expected to fail on it


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("ack_before_commit", "consumer",
                "acknowledges each message on receipt, before its transaction commits: "
                "a crash loses what was acknowledged but not yet stored",
                ("consumer_crash",)),
    )
}


def resolve_variant(name: str) -> Variant | None:
    if name in ("", "none"):
        return None
    if name not in VARIANTS:
        raise ConfigError("--variant", f"unknown variant {name!r}",
                          f"use one of: none, {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name]
