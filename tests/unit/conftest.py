"""Shared settings for the unit tests: Hypothesis runs without deadlines (CI machines are
slow and shared) and never fails a test because generating inputs was slow the first time."""

from hypothesis import HealthCheck, settings

settings.register_profile("unit", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], max_examples=100)
settings.load_profile("unit")
