"""Two ticks or two expansions at once, on PostgreSQL where they really run in parallel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection, connections

from cadence.announcements import announcement_confirm, announcement_expand
from cadence.models import Announcement
from cadence.reminders import reminders_create_due
from config.celery import app as celery_app
from messaging.models import Delivery
from tests.factories import AnnouncementFactory, ContactFactory, ProductFactory, ReminderRuleFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only() -> Iterator[None]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so nothing runs at once")
    yield
    # The reminders really were enqueued (the transactions committed); no worker is meant to get them.
    with celery_app.connection_for_write() as broker:
        broker.default_channel.queue_purge("bulk")


def run_at_once(work: Callable[[], object], threads: int = 4) -> list[object]:
    barrier = threading.Barrier(threads)
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return results


def test_ticks_running_at_once_create_each_reminder_once():
    ReminderRuleFactory(days_before=30)
    for _ in range(40):
        ProductFactory(renews_on=date(2026, 12, 31))

    with time_machine.travel(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), tick=False):
        created = run_at_once(reminders_create_due)

    assert sum(created) == 40  # type: ignore[arg-type]
    assert Delivery.objects.count() == 40


def test_expansions_running_at_once_create_each_delivery_once():
    for n in range(30):
        ContactFactory(share_of_customer=10 + n)
    announcement = AnnouncementFactory(audience=Announcement.Audience.ALL_CUSTOMERS)
    announcement_confirm(announcement=announcement, confirmed_by="marketer")
    enqueued: list[str] = []

    run_at_once(
        lambda: announcement_expand(announcement_id=announcement.pk, enqueue_sends=enqueued.extend, batch_size=4)
    )

    announcement.refresh_from_db()
    assert Delivery.objects.count() == 30 == announcement.created_count == len(enqueued) == len(set(enqueued))
