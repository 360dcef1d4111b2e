"""What a send batch costs does not grow with its size, and what it saves never changes a mail."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cadence.batch import batch_send
from cadence.digest import digest_items_for
from cadence.models import ContentItem, ContentReceipt, Schedule
from cadence.schedules import schedules_record_sends
from messaging import rendering
from messaging.bulk_sql import changed_rows, values_cte
from messaging.models import Delivery
from preferences.models import Contact
from preferences.selectors import contacts_attach_topics
from tests.factories import ContactFactory, ContentItemFactory, DeliveryFactory, TopicFactory

pytestmark = pytest.mark.django_db


def due_nurture(contacts: list[Contact]) -> list[str]:
    now = timezone.now()
    ids = []
    for contact in contacts:
        Schedule.objects.create(contact=contact, next_due_at=now, welcome_step=9)
        delivery = DeliveryFactory.create(contact=contact)
        ids.append(str(delivery.id))
    return ids


def people(count: int, topics: list, locales: tuple[str, ...] = ("en", "nl")) -> list[Contact]:
    return [
        ContactFactory.create(topics=topics[: 1 + n % 2], locale=locales[n % len(locales)], first_name=f"P{n}")
        for n in range(count)
    ]


def test_a_batch_costs_the_same_queries_for_4_mails_as_for_40(topics):
    for topic in topics:
        for language in ("en", "nl"):
            ContentItemFactory(topic=topic, language=language, title=f"{topic.slug} {language}")
    batch_send(delivery_ids=due_nurture(people(2, topics)))  # what a process reads once (the welcome series)
    small, large = due_nurture(people(4, topics)), due_nurture(people(40, topics))

    counts = []
    for ids in (small, large):
        with CaptureQueriesContext(connection) as queries:
            result = batch_send(delivery_ids=ids)
        assert len(result.sent) == len(ids)
        counts.append(len(queries.captured_queries))
        policy_reads = [q for q in queries.captured_queries if "preferences_cadencepolicy" in q["sql"]]
        assert len(policy_reads) <= 2, "the policies are read once by the pipe and once by the recording"

    assert counts[0] == counts[1]
    assert ContentReceipt.objects.values("contact_id").distinct().count() == 46
    assert Schedule.objects.filter(last_sent_at__isnull=False).count() == 46


def test_the_topics_of_a_batch_are_read_in_one_query_in_the_topics_own_order(topics):
    late = TopicFactory(slug="aaa-last", name_en="Last", position=9)
    first = ContactFactory(topics=[late, *topics])
    second = ContactFactory(topics=[topics[2]])
    without = ContactFactory()
    contacts = list(Contact.objects.filter(pk__in=[first.pk, second.pk, without.pk]))

    with CaptureQueriesContext(connection) as queries:
        contacts_attach_topics(contacts)
        attached = {contact.pk: contact.topic_list() for contact in contacts}
    assert len(queries.captured_queries) == 1
    for contact in contacts:
        assert attached[contact.pk] == list(contact.topics.all())
    assert [topic.slug for topic in attached[first.pk]][-1] == "aaa-last"
    assert attached[without.pk] == []
    # One object per topic, shared by the contacts that chose it.
    assert next(t for t in attached[first.pk] if t.slug == topics[2].slug) is attached[second.pk][0]


def test_an_edited_content_item_is_in_the_next_mail_though_renderings_are_kept(topics, monkeypatch):
    item = ContentItemFactory(topic=topics[0], title="Rates go up")
    renders = []
    real = rendering.render_message
    monkeypatch.setattr(rendering, "render_message", lambda *a, **k: renders.append(a[0]) or real(*a, **k))

    def send_to_a_new_person() -> str:
        (delivery_id,) = due_nurture([ContactFactory.create(topics=[topics[0]])])
        mail.outbox.clear()
        batch_send(delivery_ids=[delivery_id])
        return str(mail.outbox[0].body)

    assert "Rates go up" in send_to_a_new_person()
    assert "Rates go up" in send_to_a_new_person()
    assert renders == ["nurture"], "the same group in the next batch is not rendered again"

    ContentItem.objects.filter(pk=item.pk).update(title="Rates go down")
    body = send_to_a_new_person()
    assert "Rates go down" in body and "Rates go up" not in body
    assert renders == ["nurture", "nurture"]


def test_with_debug_every_batch_renders_again_so_edited_templates_show(topics, settings, monkeypatch):
    settings.DEBUG = True
    ContentItemFactory(topic=topics[0], title="Rates go up")
    renders = []
    real = rendering.render_message
    monkeypatch.setattr(rendering, "render_message", lambda *a, **k: renders.append(a[0]) or real(*a, **k))
    for _ in range(2):
        batch_send(delivery_ids=due_nurture([ContactFactory.create(topics=[topics[0]])]))
    assert renders == ["nurture", "nurture"]


def test_a_changed_brand_is_in_the_next_mail(topics, settings):
    ContentItemFactory(topic=topics[0], title="Rates go up")
    settings.BRAND_NAME = "First Bank"
    (first,) = due_nurture([ContactFactory(topics=[topics[0]])])
    batch_send(delivery_ids=[first])
    assert "First Bank" in mail.outbox[-1].body

    settings.BRAND_NAME = "Second Bank"
    (second,) = due_nurture([ContactFactory(topics=[topics[0]])])
    batch_send(delivery_ids=[second])
    assert "Second Bank" in mail.outbox[-1].body and "First Bank" not in mail.outbox[-1].body


def test_the_group_key_tells_apart_what_renders_differently():
    key = rendering.group_key
    base = {"first_name": "x", "items": [{"title": "A"}], "topics": ["Saving"], "is_marketing": True}
    assert key("nurture", "en", base) == key("nurture", "en", {**base, "items": [{"title": "A"}]})
    assert key("nurture", "en", base) != key("nurture", "en", {**base, "items": [{"title": "B"}]})
    assert key("nurture", "en", base) != key("nurture", "en", {**base, "topics": ["Saving", "Pension"]})
    assert key("nurture", "en", base) != key("nurture", "en", {**base, "is_marketing": 1})
    assert key("nurture", "en", base) != key("nurture", "nl", base)
    assert key("nurture", "en", base) != key("welcome", "en", base)
    memo: dict = {}
    assert key("nurture", "en", base, memo) == key("nurture", "en", base)
    assert key("nurture", "en", {**base, "items": [{"title": "B"}]}, memo) != key("nurture", "en", base, memo)


def test_values_cte_writes_values_of_the_columns_type_and_values_to_be_converted_alike():
    contact = ContactFactory()
    sent = timezone.now() - timedelta(hours=1)
    Schedule.objects.create(contact=contact, next_due_at=sent)
    other = ContactFactory()
    Schedule.objects.create(contact=other, next_due_at=sent)
    table = connection.ops.quote_name(Schedule._meta.db_table)
    for rows in ([(contact.pk, sent, sent + timedelta(days=30))], [(str(other.pk), sent, sent + timedelta(days=30))]):
        cte, params = values_cte(Schedule, ["contact_id", "last_sent_at", "next_due_at"], rows)
        with connection.cursor() as cursor:
            cursor.execute(
                f"{cte} UPDATE {table} SET last_sent_at = v.last_sent_at, next_due_at = v.next_due_at "
                f"FROM v WHERE {table}.contact_id = v.contact_id",
                params,
            )
            assert changed_rows(cursor) == 1
    for schedule in Schedule.objects.filter(contact__in=[contact, other]):
        assert (schedule.last_sent_at, schedule.next_due_at) == (sent, sent + timedelta(days=30))
    value = uuid.uuid4()
    params = values_cte(Schedule, ["contact_id"], [(value,)])[1]
    if connection.vendor == "postgresql":
        assert params == [[value]] and isinstance(params[0][0], uuid.UUID)  # one native array per column
    else:
        assert params == [value.hex]  # one parameter per value, as the field stores it


def test_recording_sends_returns_how_many_schedules_moved_on_every_database():
    contacts = [ContactFactory(), ContactFactory()]
    due_nurture(contacts)
    sent = timezone.now()
    deliveries = list(Delivery.objects.filter(contact__in=contacts).select_related("contact"))
    for delivery in deliveries:
        delivery.sent_at = sent

    assert schedules_record_sends(deliveries=deliveries) == 2
    assert schedules_record_sends(deliveries=deliveries) == 0  # a schedule that knows this mail stays


def test_contacts_with_the_same_topics_share_a_digest_until_they_have_seen_an_item(topics, settings):
    settings.CADENCE_DIGEST_SIZE = 2
    now = timezone.now()
    for days in (1, 2, 3):
        ContentItemFactory(topic=topics[0], title=f"{days} days old", published_at=now - timedelta(days=days))
    fresh, also_fresh, reader = (ContactFactory.create(topics=[topics[0]]) for _ in range(3))
    newest = ContentItem.objects.get(title="1 days old")
    ContentReceipt.objects.create(contact=reader, item=newest, received_at=now)
    contacts = list(Contact.objects.filter(pk__in=[fresh.pk, also_fresh.pk, reader.pk]))

    digests = digest_items_for(contacts, now=now)

    assert [item.title for item in digests[fresh.pk]] == ["1 days old", "2 days old"]
    assert digests[also_fresh.pk] == digests[fresh.pk] and digests[also_fresh.pk] is not digests[fresh.pk]
    assert [item.title for item in digests[reader.pk]] == ["2 days old", "3 days old"]
