"""How long one /metrics scrape and one ops-page figure set take on a large database.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.metrics_scrape --contacts 100000

Creates N contacts (source `bench-metrics`, deleted first) with a schedule each, two deliveries
each (welcome sent, nurture in a mix of statuses) and times the collector (median of 5 scrapes).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

SOURCE = "bench-metrics"


def populate(count: int) -> None:
    from django.utils import timezone

    from cadence.models import Schedule
    from messaging.models import Delivery
    from preferences.models import Contact

    Contact.objects.filter(source=SOURCE).delete()
    now = timezone.now()
    statuses = ["sent"] * 8 + ["queued", "failed"]
    for start in range(0, count, 5000):
        contacts = [
            Contact(
                email=f"m{i}@bench.example.org",
                status=Contact.Status.CONFIRMED,
                source=SOURCE,
                confirmed_at=now - timedelta(hours=random.uniform(0, 48)),
            )
            for i in range(start, min(start + 5000, count))
        ]
        Contact.objects.bulk_create(contacts, batch_size=5000)
        Schedule.objects.bulk_create(
            [
                Schedule(contact=c, next_due_at=now + timedelta(minutes=random.uniform(-120, 60 * 24 * 30)))
                for c in contacts
            ],
            batch_size=5000,
        )
        deliveries = []
        for c in contacts:
            deliveries.append(
                Delivery(
                    contact=c,
                    kind="welcome",
                    template="welcome",
                    idempotency_key=f"bm:w:{c.id}",
                    status="sent",
                    sent_at=(c.confirmed_at or now) + timedelta(seconds=random.expovariate(1 / 30)),
                )
            )
            status = random.choice(statuses)
            deliveries.append(
                Delivery(
                    contact=c,
                    kind="nurture",
                    template="nurture",
                    idempotency_key=f"bm:n:{c.id}",
                    status=status,
                    error="permanent: 400: bad" if status == "failed" else "",
                    sent_at=now - timedelta(minutes=random.uniform(0, 60 * 48)) if status == "sent" else None,
                )
            )
        Delivery.objects.bulk_create(deliveries, batch_size=5000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the rows afterwards")
    args = parser.parse_args()
    import django

    django.setup()
    from django.db import connection
    from prometheus_client import generate_latest

    from cadence.ops import figures as ops
    from cadence.ops import metrics
    from preferences.models import Contact

    started = time.perf_counter()
    populate(args.contacts)
    print(f"populated {args.contacts} contacts in {time.perf_counter() - started:.1f}s ({connection.vendor})")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
    scrapes, pages = [], []
    for _ in range(5):
        t = time.perf_counter()
        body = generate_latest(metrics.registry())
        scrapes.append(time.perf_counter() - t)
        t = time.perf_counter()
        ops.overdue_by_reason(), ops.sends_per_hour(), ops.recent_failures(), ops.esp_errors()
        pages.append(time.perf_counter() - t)
    print(f"/metrics collector: median {statistics.median(scrapes) * 1000:.0f} ms, {len(body)} bytes")
    print(f"ops page figures (without health checks): median {statistics.median(pages) * 1000:.0f} ms")
    if not args.keep:
        Contact.objects.filter(source=SOURCE).delete()


if __name__ == "__main__":
    main()
