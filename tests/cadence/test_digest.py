"""The nurture digest: newest unseen items first, evergreen as fallback, never empty; silence risk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cadence.batch import batch_send
from cadence.digest import digest_items, silence_risk_topics
from cadence.models import ContentReceipt, Schedule
from tests.factories import ContactFactory, ContentItemFactory, DeliveryFactory, TopicFactory

pytestmark = pytest.mark.django_db


def titles(items) -> list[str]:
    return [item.title for item in items]


def test_the_digest_takes_the_newest_unseen_items_of_the_contacts_topics(topics, settings):
    settings.CADENCE_DIGEST_SIZE = 2
    now = timezone.now()
    saving, mortgage, pension = topics
    contact = ContactFactory(topics=[saving, mortgage])
    for days, title, topic in [(1, "new", saving), (2, "newer mortgage", mortgage), (5, "older", saving)]:
        ContentItemFactory(topic=topic, title=title, published_at=now - timedelta(days=days))
    ContentItemFactory(topic=pension, title="not my topic", published_at=now)
    ContentItemFactory(topic=saving, title="in Dutch", language="nl", published_at=now)
    ContentItemFactory(topic=saving, title="stale", published_at=now - timedelta(days=400))
    ContentItemFactory(topic=saving, title="scheduled", published_at=now + timedelta(days=1))

    first = digest_items(contact=contact, now=now)
    assert titles(first) == ["new", "newer mortgage"]
    ContentReceipt.objects.bulk_create([ContentReceipt(contact=contact, item=item) for item in first])
    assert titles(digest_items(contact=contact, now=now)) == ["older"]


def test_when_nothing_new_is_left_evergreen_items_fill_the_mail_so_it_is_never_empty(topics, settings):
    settings.CADENCE_DIGEST_SIZE = 3
    now = timezone.now()
    saving, _mortgage, pension = topics
    contact = ContactFactory(topics=[saving])
    ContentItemFactory(topic=saving, title="fresh", published_at=now - timedelta(days=1))
    ContentItemFactory(topic=saving, title="classic", evergreen=True, published_at=now - timedelta(days=700))
    ContentItemFactory(topic=pension, title="other classic", evergreen=True, published_at=now - timedelta(days=600))
    assert titles(digest_items(contact=contact, now=now)) == ["fresh", "classic", "other classic"]
    # Without any item of their own the mail borrows evergreen ones, newest first.
    loner = ContactFactory(topics=[TopicFactory(slug="empty")])
    assert titles(digest_items(contact=loner, now=now)) == ["other classic", "classic"]


def test_a_nurture_mail_is_a_personal_digest_in_the_contacts_language(topics):
    now = timezone.now()
    contact = ContactFactory(topics=[topics[0]], locale="nl", first_name="Eva")
    ContentItemFactory(topic=topics[0], language="nl", title="Rente omhoog", summary="Wat het betekent.")
    ContentItemFactory(topic=topics[0], language="en", title="Rates go up")
    Schedule.objects.create(contact=contact, next_due_at=now, welcome_step=9)
    delivery = DeliveryFactory.create(contact=contact)
    batch_send(delivery_ids=[delivery.id])
    message = mail.outbox[0]
    assert message.subject == "Rente omhoog"
    assert "Rente omhoog" in message.body and "Rates go up" not in message.body
    assert "Hier is het nieuws over uw onderwerpen" in message.body
    assert ContentReceipt.objects.filter(contact=contact).count() == 1
    assert Schedule.objects.get(pk=contact.pk).last_sent_at is not None


def test_topics_without_fresh_or_evergreen_content_are_a_silence_risk(topics):
    now = timezone.now()
    saving, mortgage, pension = topics
    for language in ("en", "nl"):
        ContentItemFactory(topic=saving, language=language, published_at=now - timedelta(days=2))
        ContentItemFactory(topic=mortgage, language=language, evergreen=True, published_at=now - timedelta(days=900))
    ContentItemFactory(topic=pension, language="en", published_at=now - timedelta(days=2))  # no Dutch
    assert sorted(t.slug for t in silence_risk_topics(now=now)) == ["pension"]
    assert sorted(t.slug for t in silence_risk_topics(now=now + timedelta(days=200))) == ["pension", "saving"]


def test_a_contact_without_topics_gets_nothing_unless_they_chose_general_updates(topics, settings):
    settings.CADENCE_DIGEST_SIZE = 3
    now = timezone.now()
    saving, _mortgage, pension = topics
    ContentItemFactory(topic=saving, title="fresh saving", published_at=now - timedelta(days=1))
    ContentItemFactory(topic=pension, title="classic pension", evergreen=True, published_at=now - timedelta(days=600))

    nothing_chosen = ContactFactory(topics=[], general_updates=False)
    assert digest_items(contact=nothing_chosen, now=now) == []

    general = ContactFactory(topics=[], general_updates=True)
    assert titles(digest_items(contact=general, now=now)) == ["fresh saving", "classic pension"]
