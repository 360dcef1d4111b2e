"""The chaos run of bench/chaos.py at a small size: real beat, 2 workers, SIGKILLs, a Redis restart."""

from __future__ import annotations

import json
import os

import pytest

from bench import chaos
from bench.chaos_app import DEFAULT_CLAIM, DEFAULT_GUARD
from tests.conftest import database_url_for_subprocess

CLAIM = os.environ.get("CHAOS_CLAIM", DEFAULT_CLAIM)
GUARD = os.environ.get("CHAOS_GUARD", DEFAULT_GUARD)
MISSING = chaos.missing_entry_points(CLAIM, GUARD)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"needs the cadence engine's tick and guard, not on this branch: {', '.join(MISSING)} "
        "(set CHAOS_CLAIM/CHAOS_GUARD to module:function to point the run elsewhere)",
    ),
]


@pytest.fixture(autouse=True)
def _postgres_only(django_db_setup, django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("several processes claiming at once need PostgreSQL (SKIP LOCKED)")


def test_every_contact_gets_exactly_one_mail_through_kills_and_a_redis_restart():
    result = chaos.run(
        contacts=int(os.environ.get("CHAOS_CONTACTS", "2000")),
        workers=2,
        kills=3,
        fault_interval=3.0,
        timeout=420.0,
        claim=CLAIM,
        guard=GUARD,
        # The guard's stuck limit must exceed the time one batch task may take (a batch is claimed as a whole);
        # mail whose task was lost with the broker is queued again after four times that limit.
        guard_kwargs=json.loads(os.environ.get("CHAOS_GUARD_KWARGS", '{"stuck_after": {"seconds": 60}}')),
        database_url=database_url_for_subprocess(),
    )

    assert result.kills == 3 and result.redis_restarts == 1
    assert result.duplicates == 0, result
    assert result.missing == 0, result
    assert result.sent == result.contacts
    assert result.time_to_recover is not None
