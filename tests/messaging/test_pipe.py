"""One batch through the seam: cadence prepares and records, messaging claims, checks, renders once and sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from anymail.message import AnymailRecipientStatus
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cadence import tasks
from cadence.batch import batch_send
from cadence.models import ContentReceipt, Schedule
from messaging import rendering
from messaging.models import Delivery
from preferences.models import Contact, SuppressionEntry
from preferences.services import address_hash
from tests.factories import ContactFactory, ContentItemFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.ESP_MAX_SEND_RATE = 0


def nurture_batch(contacts: list[Contact]) -> list[Delivery]:
    """Give each contact a schedule last mailed 40 days ago and a queued nurture mail, as the tick does."""
    now = timezone.now()
    Schedule.objects.bulk_create(
        [
            Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9, slot=1)
            for c in contacts
        ]
    )
    return Delivery.objects.bulk_create(
        [DeliveryFactory.build(contact=c, idempotency_key=f"nurture:{c.id}:1") for c in contacts]
    )


def test_a_mixed_batch_records_each_recipients_own_result(esp_faults, settings, topics):
    settings.ESP_BATCH_SENDING = {"test": {"limit": 100, "placeholder": "[[{name}]]"}}
    ContentItemFactory(topic=topics[0], title="Rates go up")
    contacts = ContactFactory.create_batch(5, topics=[topics[0]])
    unsubscribed, suppressed, refused, *fine = contacts
    deliveries = {d.contact_id: d for d in nurture_batch(contacts)}
    Contact.objects.filter(pk=unsubscribed.pk).update(status=Contact.Status.UNSUBSCRIBED)
    SuppressionEntry.objects.create(address_hash=address_hash(suppressed.email), reason="hard_bounce")
    esp_faults.then(
        {
            "recipient_status": {
                refused.email: AnymailRecipientStatus(message_id=None, status="rejected"),
                **{c.email: AnymailRecipientStatus(message_id=f"m-{c.pk}", status="sent") for c in fine},
            }
        }
    )

    tasks.send_batch.apply(args=[[str(d.id) for d in deliveries.values()]])

    def row(contact: Contact) -> Delivery:
        return Delivery.objects.get(pk=deliveries[contact.pk].pk)

    assert row(unsubscribed).status == "cancelled" and row(unsubscribed).error.startswith("no consent")
    assert row(suppressed).status == "cancelled" and row(suppressed).error == "suppressed address"
    assert row(refused).status == "failed" and "rejected" in row(refused).error
    for contact in fine:
        assert row(contact).status == "sent" and row(contact).esp_message_id == f"m-{contact.pk}"
    assert [sorted(m.to) for m in mail.outbox] == [sorted([refused.email, *(c.email for c in fine)])]
    moved = {s.contact_id for s in Schedule.objects.filter(last_sent_at__gte=timezone.now() - timedelta(minutes=1))}
    assert moved == {c.pk for c in fine}, "only a sent mail moves the schedule"
    assert set(ContentReceipt.objects.values_list("contact_id", flat=True)) == {c.pk for c in fine}


def test_a_digest_shared_by_many_people_is_rendered_once(monkeypatch, settings, topics):
    settings.ESP_BATCH_SENDING = {}  # one message per person: the merge is ours, not the ESP's
    ContentItemFactory(topic=topics[0], title="Rates go up")
    renders = []
    real_render = rendering.render_message

    def counting(name, context, locale):
        renders.append((name, locale))
        return real_render(name, context, locale)

    monkeypatch.setattr(rendering, "render_message", counting)
    english = ContactFactory.create_batch(20, topics=[topics[0]], locale="en")
    dutch = ContactFactory(topics=[topics[0]], locale="nl")

    result = batch_send(delivery_ids=[d.id for d in nurture_batch([*english, dutch])])

    assert len(result.sent) == 21 and len(mail.outbox) == 21
    assert sorted(renders) == [("nurture", "en"), ("nurture", "nl")]
    by_address = {m.to[0]: m for m in mail.outbox}
    for contact in english:
        assert "Rates go up" in by_address[contact.email].body
        assert f"Hello {contact.first_name}," in by_address[contact.email].body, "each person's own name"


@pytest.mark.parametrize("batch", [{}, {"test": {"limit": 100, "placeholder": "[[{name}]]"}}])
def test_names_are_escaped_in_html_and_plain_in_text(settings, topics, batch):
    settings.ESP_BATCH_SENDING = batch
    name = """<script>alert("x")</script> & O'Brien"""
    tricky, plain = ContactFactory(first_name=name), ContactFactory(first_name="Eva")

    batch_send(delivery_ids=[d.id for d in nurture_batch([tricky, plain])])

    message = next(m for m in mail.outbox if tricky.email in m.to)
    html, text = message.alternatives[0][0], message.body
    if batch:  # the ESP substitutes the values verbatim: what it gets is what the reader gets
        values = message.anymail_test_params["merge_data"][tricky.email]
        html = html.replace("[[first_name_html]]", values["first_name_html"])
        text = text.replace("[[first_name]]", values["first_name"])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; O&#x27;Brien" in html
    assert f"Hello {name}," in text


def test_a_batch_of_200_moves_every_schedule_in_a_constant_number_of_queries_per_step_of_eight_lanes(settings, topics):
    settings.ESP_BATCH_SENDING = {}
    settings.ESP_SEND_CONCURRENCY = 8
    for topic in topics:
        for language in ("en", "nl"):
            ContentItemFactory(topic=topic, language=language, title=f"News on {topic.slug}")
    contacts = [ContactFactory(topics=[topics[i % 3]], locale="nl" if i % 2 else "en") for i in range(200)]
    deliveries = nurture_batch(contacts)
    before = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        result = batch_send(delivery_ids=[d.id for d in deliveries])

    # Results are recorded as the lanes finish: one step (the deliveries' UPDATE, the schedules'
    # UPDATE, the receipts' INSERT) for the sends of all eight lanes, not one per mail.
    steps = sum(query["sql"].startswith('WITH v("id", "status"') for query in queries.captured_queries)
    assert 25 <= steps <= 50
    # SQLite adds one per step: `SELECT changes()` for the schedules' UPDATE count (messaging.bulk_sql.changed_rows).
    per_step = 7 if connection.vendor == "sqlite" else 6
    assert len(queries.captured_queries) <= 12 + per_step * steps

    assert len(result.sent) == 200
    schedules = Schedule.objects.all()
    assert all(s.last_sent_at >= before and s.next_due_at > before + timedelta(days=13) for s in schedules)
    assert ContentReceipt.objects.count() == 200, "one item each: the receipts are written"
    assert Delivery.objects.filter(status="sent", sent_at__gte=before).exclude(esp_message_id="").count() == 200


def test_each_persons_frequency_is_named_in_their_own_language_in_one_batch(settings, topics):
    dutch = ContactFactory(locale="nl", frequency="monthly")
    english = ContactFactory(locale="en", frequency="monthly")
    batch_send(delivery_ids=[d.id for d in nurture_batch([english, dutch, ContactFactory(locale="en")])])

    # The two English mails may go as one merged message: its body is each of its recipients'.
    body = {to: m.body for m in mail.outbox for to in m.to}
    assert "We mailen u maandelijks." in body[dutch.email], body[dutch.email][-600:]
    assert "We email you monthly." in body[english.email], body[english.email][-600:]
