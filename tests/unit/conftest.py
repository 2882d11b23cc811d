"""Shared settings and fixtures for the unit tests. Hypothesis runs without deadlines (CI
machines are slow and shared) and never fails a test because generating inputs was slow
the first time."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine

from reference_services.common.db import make_engines
from reference_services.consumer.models import metadata

settings.register_profile("unit", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], max_examples=100)
settings.load_profile("unit")


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Engine]:
    """The write engine of a fresh consumer database (every consumer table created)."""
    engines = make_engines(f"sqlite:///{tmp_path}/c.db")
    metadata.create_all(engines.writer)
    yield engines.writer
    engines.writer.dispose()
    engines.reader.dispose()
