"""Checkers: pure functions over recorded history and final states."""

from harness.checkers.base import CheckResult
from harness.checkers.convergence import compare_datasets
from harness.checkers.delivery import effect_once, no_lost_updates
from harness.checkers.integrity import (
    accounting,
    auto_repaired,
    integrity_restored,
    no_stale_overwrite,
)
from harness.checkers.recovery import unaffected
from harness.checkers.run_checks import fault_was_active, progress

__all__ = [
    "CheckResult",
    "accounting",
    "auto_repaired",
    "compare_datasets",
    "effect_once",
    "fault_was_active",
    "integrity_restored",
    "no_lost_updates",
    "no_stale_overwrite",
    "progress",
    "unaffected",
]
