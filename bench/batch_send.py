"""How fast deliveries_send_batch renders and hands mail to the ESP: batch mode against one by one.

Run: DATABASE_URL=... REDIS_URL=... python -m bench.batch_send [COUNT]
Uses anymail's test backend (no network), creates COUNT contacts and deliveries in the database it
is given (migrated first), and deletes them afterwards.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import django


def main(count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from messaging.models import Delivery
    from messaging.services import deliveries_send_batch
    from preferences.models import Contact

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ESP_MAX_SEND_RATE = 0
    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]
    for mode, batch in [("batch of 100", {"test": {"limit": 100, "placeholder": "[[{name}]]"}}), ("one by one", {})]:
        settings.ESP_BATCH_SENDING = batch
        contacts = Contact.objects.bulk_create(
            Contact(
                email=f"bench-{run}-{mode[:3]}-{i}@example.com", first_name=f"P{i}", locale="en", status="confirmed"
            )
            for i in range(count)
        )
        deliveries = Delivery.objects.bulk_create(
            Delivery(contact=c, kind="nurture", template="welcome", idempotency_key=f"bench:{run}:{c.id}")
            for c in contacts
        )
        started = time.perf_counter()
        result = deliveries_send_batch(delivery_ids=[d.id for d in deliveries])
        elapsed = time.perf_counter() - started
        print(f"{mode:>12}: {len(result.sent)} sent in {elapsed:.2f} s = {len(result.sent) / elapsed:.0f} mails/s")
        Delivery.objects.filter(idempotency_key__startswith=f"bench:{run}:").delete()
        Contact.objects.filter(email__startswith=f"bench-{run}-").delete()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
