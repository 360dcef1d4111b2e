"""The nurture digest: the newest unseen items from the contact's topics, else evergreen ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import BigIntegerField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import Combinable
from django.utils import timezone

from cadence.models import ContentItem, ContentReceipt
from messaging.bulk_sql import Unindexed
from preferences.models import Contact, Locale, Topic

# Templates that carry a digest.
DIGEST_TEMPLATES = frozenset({"nurture", "welcome_picks"})


def digest_items(*, contact: Contact, now: datetime, size: int | None = None) -> list[ContentItem]:
    """Return up to `size` items for the contact (see `digest_items_for`)."""
    return digest_items_for([contact], now=now, size=size)[contact.pk]


def digest_items_for(
    contacts: list[Contact], *, now: datetime, size: int | None = None
) -> dict[Any, list[ContentItem]]:
    """Return, by contact id, up to `size` items each: fresh unseen ones from their topics, newest first,
    then unseen evergreen ones, then evergreen ones seen longest ago; from any topic when theirs have none.
    A contact who chose general updates (no particular topic) draws from every topic; a contact with
    neither topics nor general updates gets nothing.

    Two queries for the whole batch: the candidate items of its languages and topics, and the
    contacts' receipts of them. Contacts with the same topics, language and receipts get the same digest.
    """
    size = size or settings.CADENCE_DIGEST_SIZE
    fresh_since = now - timedelta(days=settings.CADENCE_FRESH_DAYS)
    topics = {contact.pk: {topic.pk for topic in contact.topic_list()} for contact in contacts}
    general = {contact.pk for contact in contacts if contact.general_updates}
    all_topics = set().union(*topics.values())
    fresh = Q(published_at__gte=fresh_since) if general else Q(topic_id__in=all_topics, published_at__gte=fresh_since)
    candidates = list(
        ContentItem.objects.filter(language__in={contact.locale for contact in contacts}, published_at__lte=now)
        .filter(Q(evergreen=True) | fresh)
        .order_by("-published_at", "pk")
    )
    by_language: dict[str, list[ContentItem]] = {}
    for item in candidates:
        by_language.setdefault(item.language, []).append(item)
    seen: dict[Any, dict[int, datetime]] = {contact.pk: {} for contact in contacts}
    # Looked up by contact (a few receipts each), never by item: every contact received those.
    receipts = (
        ContentReceipt.objects.filter(contact_id__in=list(seen))
        .alias(item_key=Unindexed("item_id", output_field=BigIntegerField()))
        .filter(item_key__any=[item.pk for item in candidates])
        .values_list("contact_id", "item_id", "received_at")
    )
    for contact_id, item_id, received_at in receipts:
        seen[contact_id][item_id] = received_at
    digests: dict[Any, list[ContentItem]] = {}
    # Contacts who saw none of the candidates get the same digest for the same language and topics.
    unseen: dict[tuple[str, frozenset[int] | None], list[ContentItem]] = {}
    for contact in contacts:
        items = by_language.get(contact.locale, [])
        chosen = None if contact.pk in general else topics[contact.pk]
        if seen[contact.pk]:
            digests[contact.pk] = _pick(items, chosen, seen[contact.pk], fresh_since, size)
            continue
        key = (contact.locale, None if chosen is None else frozenset(chosen))
        if key not in unseen:
            unseen[key] = _pick(items, chosen, {}, fresh_since, size)
        digests[contact.pk] = list(unseen[key])
    return digests


def _pick(
    items: list[ContentItem], topics: set[int] | None, seen: dict[int, datetime], fresh_since: datetime, size: int
) -> list[ContentItem]:
    """Pick one contact's digest from `items` (its language, newest first); `topics` None: general updates,
    every topic. No topics and no general updates: nothing."""
    if topics is None:
        mine = items
    elif not topics:
        return []
    else:
        mine = [item for item in items if item.topic_id in topics]
    picked = [item for item in mine if not item.evergreen and item.published_at >= fresh_since and item.pk not in seen]
    picked = picked[:size]
    for pool in (mine, items):
        if len(picked) >= size:
            break
        chosen = {item.pk for item in picked}
        evergreen = [item for item in pool if item.evergreen and item.pk not in chosen]
        picked += [item for item in evergreen if item.pk not in seen][: size - len(picked)]
        if len(picked) < size:
            again = sorted((item for item in evergreen if item.pk in seen), key=lambda item: seen[item.pk])
            picked += again[: size - len(picked)]
    return picked


def item_context(item: ContentItem) -> dict[str, str]:
    """Return what a digest template shows of an item."""
    return {"title": item.title, "summary": item.summary, "url": item.url, "body": item.body}


def silence_risk_topics(*, now: datetime | None = None) -> QuerySet[Topic]:
    """Return the active topics that have, in some language, neither fresh nor evergreen content."""
    now = now or timezone.now()
    fresh_since = now - timedelta(days=settings.CADENCE_FRESH_DAYS)
    risky: Q | Combinable = Q()
    for language in Locale.values:
        usable = ContentItem.objects.filter(topic=OuterRef("pk"), language=language, published_at__lte=now).filter(
            Q(evergreen=True) | Q(published_at__gte=fresh_since)
        )
        risky |= ~Exists(usable)
    return Topic.objects.filter(is_active=True).filter(risky)
