"""How fast one worker process sends batches through the pipe, without the broker: merged ESP calls
against one message per recipient, on anymail's test backend (no network: rendering, database, CPU).

Run: DATABASE_URL=... REDIS_URL=... python -m bench.batch_send [COUNT] [BATCH]   (BENCH_PROFILE=1: profile it)
Creates COUNT confirmed contacts with schedules, topics and digest content and a queued nurture
mail each, sends them with cadence.batch.batch_send in batches of BATCH (the send task's work,
schedules and receipts included), and deletes them afterwards.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
import uuid
from datetime import timedelta

import django


def main(count: int, batch_size: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from cadence.batch import batch_send
    from cadence.models import ContentItem, Schedule
    from messaging.models import Delivery
    from preferences.models import Contact, Topic

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ESP_MAX_SEND_RATE = 0
    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]
    now = timezone.now()
    topics = [Topic.objects.create(slug=f"bench-{run}-{i}", name_en=f"T{i}", name_nl=f"T{i}") for i in range(3)]
    ContentItem.objects.bulk_create(
        ContentItem(topic=t, language=lang, title=f"{t.slug} {lang}", published_at=now - timedelta(days=1))
        for t in topics
        for lang in ("en", "nl")
    )
    modes = [("merged (batch 100)", {"test": {"limit": 100, "placeholder": "[[{name}]]"}}), ("one per person", {})]
    try:
        for mode, batch in modes:
            settings.ESP_BATCH_SENDING = batch
            contacts = Contact.objects.bulk_create(
                Contact(
                    email=f"bench-{run}-{mode[:3]}-{i}@example.com",
                    first_name=f"P{i}",
                    locale="nl" if i % 2 else "en",
                    status="confirmed",
                    confirmed_at=now,
                )
                for i in range(count)
            )
            Contact.topics.through.objects.bulk_create(
                Contact.topics.through(contact_id=c.id, topic_id=topics[i % 3].id) for i, c in enumerate(contacts)
            )
            Schedule.objects.bulk_create(
                Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9)
                for c in contacts
            )
            deliveries = Delivery.objects.bulk_create(
                Delivery(
                    contact=c, kind="nurture", template="nurture", idempotency_key=f"bench:{run}:{c.id}", marketing=True
                )
                for c in contacts
            )
            ids = [d.id for d in deliveries]
            profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
            started, cpu = time.perf_counter(), time.process_time()
            sent = 0
            if profile is not None:
                profile.enable()
            for start in range(0, len(ids), batch_size):
                sent += len(batch_send(delivery_ids=ids[start : start + batch_size]).sent)
            if profile is not None:
                profile.disable()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"{mode:>20}: {sent} sent in {elapsed:.2f} s = {sent / elapsed:.0f} mails/s (one process), "
                f"{cpu / max(sent, 1) * 1000:.2f} ms CPU per mail in this process"
            )
            if profile is not None:
                pstats.Stats(profile).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(
                    os.environ.get("BENCH_PROFILE_FILTER", ""), 25
                )
    finally:
        Delivery.objects.filter(idempotency_key__startswith=f"bench:{run}:").delete()
        Contact.objects.filter(email__startswith=f"bench-{run}-").delete()
        Topic.objects.filter(slug__startswith=f"bench-{run}-").delete()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 200)
