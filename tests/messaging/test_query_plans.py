"""A batch's lookups stay lookups when the statistics are stale: right after a tick queues many mails (or a
round writes many receipts) PostgreSQL still believes them rare, and a filter on status (or on the items)
must not turn the claim of 200 mails into a scan of every queued one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cadence.batch import batch_send
from cadence.digest import digest_items_for
from cadence.models import ContentReceipt
from messaging.models import Delivery
from tests.factories import ContactFactory, ContentItemFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def plan(sql: str) -> str:
    """The statement's plan, with sequential scans ruled out: at a test's few thousand rows one would win
    anyway, at a production's millions it would not. What is left to choose is the index."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def statement(queries: Any, start: str, table: str) -> str:
    return next(
        q["sql"] for q in queries if q["sql"].startswith(start) and f'"{table}"' in q["sql"].split(" WHERE ")[0]
    )


def test_the_claim_of_a_batch_looks_its_mails_up_by_primary_key_with_queued_mail_believed_rare(settings, topics):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    contacts = ContactFactory.create_batch(20, topics=[topics[0]])
    # Statistics taken while every mail was sent long ago; then a tick queues 4,000.
    Delivery.objects.bulk_create(
        Delivery(contact=contacts[n % 20], kind="nurture", template="nurture", idempotency_key=f"old:{n}",
                 status=Delivery.Status.SENT, marketing=True)
        for n in range(4000)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_delivery")
    queued = Delivery.objects.bulk_create(
        Delivery(contact=contacts[n % 20], kind="nurture", template="nurture", idempotency_key=f"new:{n}",
                 marketing=True)
        for n in range(4000)
    )  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        batch_send(delivery_ids=[d.id for d in queued[:200]])

    claim = plan(statement(queries.captured_queries, "UPDATE", "messaging_delivery"))
    assert "messaging_delivery_pkey" in claim
    assert "delivery_status_kind" not in claim, claim
    load = plan(statement(queries.captured_queries, "SELECT", "messaging_delivery"))
    assert "Seq Scan on messaging_delivery" not in load, load


def test_a_digest_reads_receipts_by_contact_never_every_receipt_of_the_items(topics):
    now = timezone.now() + timedelta(minutes=1)  # every item below is published by then
    contacts = ContactFactory.create_batch(300, topics=[topics[0]])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cadence_contentreceipt")  # before the first round: no receipts at all
    old = ContentItemFactory.create_batch(4, topic=topics[0], evergreen=True)
    new = ContentItemFactory.create_batch(4, topic=topics[0])
    ContentReceipt.objects.bulk_create(
        ContentReceipt(contact=contact, item=item, received_at=now)
        for contact in contacts[50:]
        for item in [*old, *new]
    )

    with CaptureQueriesContext(connection) as queries:
        digests = digest_items_for(contacts[:50], now=now)

    receipts = plan(statement(queries.captured_queries, "SELECT", "cadence_contentreceipt"))
    assert "cadence_contentreceipt_item_id" not in receipts, receipts
    assert {item.pk for item in digests[contacts[0].pk]} <= {item.pk for item in new}  # fresh and unseen first
