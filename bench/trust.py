"""Measure the announcement audience count and expansion, and the reminder tick, at scale.

Run: DATABASE_URL=postgres://... python bench/trust.py --contacts 100000
It adds rows marked `bench-` to the database it is given and removes them afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from cadence import reminders  # noqa: E402
from cadence.announcements import announcement_audience, announcement_confirm, announcement_expand  # noqa: E402
from cadence.models import Announcement, ReminderRule  # noqa: E402
from cadence.reminders import reminders_create_due  # noqa: E402
from config.celery import app as celery_app  # noqa: E402
from messaging.models import Delivery  # noqa: E402
from preferences.models import Contact, Product  # noqa: E402


def timed(label: str, work):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {elapsed:8.2f} s   {result}")
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    count = parser.parse_args().contacts
    today = timezone.localdate()
    print(f"database: {connection.vendor}, contacts: {count}, cpus: {os.cpu_count()}")
    try:
        timed(
            "create contacts (half customers, 1 in 5 a product)",
            lambda: _populate(count, today),
        )
        announcement = Announcement.objects.create(
            title="bench-announcement", subject_en="s", subject_nl="s", body_en="b", body_nl="b"
        )
        timed("exact audience count (all customers)", lambda: announcement_audience(announcement).count())
        timed("confirm (count + status)", lambda: announcement_confirm(announcement=announcement, confirmed_by="bench"))
        created, seconds = timed(
            "expand into deliveries (batches of 1000)",
            lambda: _expand(announcement.pk),
        )
        print(f"{'':<48} {created / seconds:8.0f} deliveries/s")
        rule = ReminderRule.objects.create(product_type="bench-type", event="renewal", days_before=30)
        moment = datetime.combine(today, datetime.min.time(), tzinfo=timezone.get_current_timezone()) + timedelta(
            hours=12
        )
        # The database work alone; enqueueing is measured below (one Celery message per delivery today).
        reminders.deliveries_enqueue = _enqueue_nothing
        timed("reminder tick (products renewing in 30 days)", lambda: reminders_create_due(now=moment))
        timed("reminder tick again (nothing new)", lambda: reminders_create_due(now=moment))
        timed("enqueue 1000 sends, one message each", _enqueue_1000)
        rule.delete()
    finally:
        _clean()


def _enqueue_nothing(delivery_ids: Sequence[UUID | str], *, queue: str, batch_size: int | None = None) -> None:
    """Stand in for deliveries_enqueue, so the reminder tick measures the database work alone."""


def _populate(count: int, today: date) -> int:
    contacts = [
        Contact(email=f"bench-{n}@example.com", share_of_customer=(n % 2) * 40, time_zone="Europe/Amsterdam")
        for n in range(count)
    ]
    Contact.objects.bulk_create(contacts, batch_size=5000)
    products = [
        Product(contact=c, name="Bench", product_type="bench-type", renews_on=today + timedelta(days=30))
        for c in contacts[::5]
    ]
    Product.objects.bulk_create(products, batch_size=5000)
    return len(contacts)


def _expand(announcement_id: int) -> int:
    while not announcement_expand(announcement_id=announcement_id, enqueue_sends=lambda ids: None):
        pass
    return Announcement.objects.get(pk=announcement_id).created_count


def _enqueue_1000() -> int:
    from cadence.tasks import send_batch

    for _ in range(1000):
        send_batch.apply_async((["00000000-0000-0000-0000-000000000000"],), queue="bench-discard")
    with celery_app.connection_for_write() as broker:
        broker.default_channel.queue_purge("bench-discard")
    return 1000


def _clean() -> None:
    bench = Contact.objects.filter(email__startswith="bench-")
    Delivery.objects.filter(contact__in=bench).delete()
    Product.objects.filter(contact__in=bench).delete()
    bench.delete()
    Announcement.objects.filter(title="bench-announcement").delete()
    ReminderRule.objects.filter(product_type="bench-type").delete()


if __name__ == "__main__":
    main()
