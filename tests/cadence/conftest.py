from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection


@pytest.fixture
def sent_batches(monkeypatch) -> Iterator[list[list[str]]]:
    """Collect the batches the tick enqueues instead of putting them on the broker."""
    batches: list[list[str]] = []
    monkeypatch.setattr("cadence.tick.deliveries_enqueue", lambda ids, queue: batches.append([str(i) for i in ids]))
    yield batches


@pytest.fixture
def postgres_only(db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SKIP LOCKED and concurrent writers)")
