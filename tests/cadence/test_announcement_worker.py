"""A real Celery worker expands a confirmed announcement (default queue) and sends it (bulk queue)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadence.models import Announcement
from messaging.models import Delivery
from preferences.models import Contact
from tests.factories import AnnouncementFactory, ContactFactory
from tests.workers import purge_queues, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_a_real_worker_sends_an_announcement_to_every_customer_and_the_admin_counts_match(admin_client):
    purge_queues("default", "bulk")
    low = ContactFactory(share_of_customer=2, potential=Contact.Potential.NONE, status=Contact.Status.UNSUBSCRIBED)
    high = [ContactFactory(share_of_customer=80, potential=Contact.Potential.HIGH) for _ in range(6)]
    suppressed = ContactFactory(share_of_customer=50, suppressed_at="2026-01-01T00:00:00Z")
    ContactFactory(share_of_customer=0)  # a prospect is not a customer
    announcement = AnnouncementFactory(audience=Announcement.Audience.ALL_CUSTOMERS)

    with running_worker(
        queues="default,bulk", name="announcements", EMAIL_BACKEND="anymail.backends.test.EmailBackend"
    ):
        page = admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/confirm/").content.decode()
        assert "will go to <strong>7</strong> recipients" in page
        admin_client.post(f"/admin/cadence/announcement/{announcement.pk}/confirm/", {"confirm": "yes"})
        assert wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 7)

    sent = set(Delivery.objects.filter(status=Delivery.Status.SENT).values_list("contact_id", flat=True))
    assert sent == {low.pk, *(c.pk for c in high)}
    assert not Delivery.objects.filter(contact=suppressed).exists()
    page = admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/change/").content.decode()
    assert "queued 0 · sending 0 · sent 7 · failed 0 · skipped 0" in page
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.DONE and announcement.audience_count == 7
