from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection


@pytest.fixture
def sent_batches(monkeypatch) -> Iterator[list[list[str]]]:
    """Collect the batches the tick enqueues instead of putting them on the broker."""
    batches: list[list[str]] = []
    monkeypatch.setattr("cadence.services.enqueue_batch", lambda ids: batches.append(list(ids)))
    yield batches


@pytest.fixture
def postgres_only(db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SKIP LOCKED and concurrent writers)")
