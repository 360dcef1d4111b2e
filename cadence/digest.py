"""The nurture digest: the newest unseen items from the contact's topics, else evergreen ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from cadence.models import ContentItem, ContentReceipt
from messaging.models import Delivery
from preferences.models import Contact, Locale, Topic

# Templates that carry a digest.
DIGEST_TEMPLATES = frozenset({"nurture", "welcome_picks"})


def digest_items(*, contact: Contact, now: datetime, size: int | None = None) -> list[ContentItem]:
    """Return up to `size` items for the contact: fresh unseen ones from their topics, newest first, then
    unseen evergreen ones, then evergreen ones seen longest ago; evergreen ones of any topic when theirs
    have none. A contact who chose general updates (no particular topic) gets items of every topic; a
    contact with neither topics nor general updates gets nothing."""
    size = size or settings.CADENCE_DIGEST_SIZE
    seen = ContentReceipt.objects.filter(contact_id=contact.pk, item_id=OuterRef("pk"))
    everything = ContentItem.objects.filter(language=contact.locale, published_at__lte=now)
    if contact.general_updates:
        mine = everything
    elif contact.topics.exists():
        mine = everything.filter(topic__contacts=contact)
    else:
        return []
    fresh_since = now - timedelta(days=settings.CADENCE_FRESH_DAYS)
    picked = list(
        mine.filter(evergreen=False, published_at__gte=fresh_since)
        .exclude(Exists(seen))
        .order_by("-published_at")[:size]
    )
    for pool in (mine, everything):
        if len(picked) >= size:
            break
        evergreen = pool.filter(evergreen=True).exclude(pk__in=[item.pk for item in picked])
        picked += list(evergreen.exclude(Exists(seen)).order_by("-published_at")[: size - len(picked)])
        if len(picked) < size:
            picked += list(
                evergreen.filter(Exists(seen))
                .exclude(pk__in=[item.pk for item in picked])
                .annotate(seen_at=Subquery(seen.values("received_at")[:1]))
                .order_by("seen_at")[: size - len(picked)]
            )
    return picked


def digest_context(*, delivery: Delivery) -> dict[str, Any]:
    """Return the template context of a digest mail and record which items the contact receives."""
    if delivery.template not in DIGEST_TEMPLATES:
        return {}
    now = timezone.now()
    items = digest_items(contact=delivery.contact, now=now)
    if items:
        # One statement, outside any transaction: this runs for every digest mail.
        table = ContentReceipt._meta.db_table
        placeholders = ", ".join(["(%s, %s, %s)"] * len(items))
        fields = [ContentReceipt._meta.get_field(name) for name in ("contact", "item", "received_at")]
        params: list[Any] = []
        for item in items:
            values = (delivery.contact_id, item.pk, now)
            params += [f.get_db_prep_value(v, connection) for f, v in zip(fields, values, strict=True)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (contact_id, item_id, received_at) VALUES {placeholders} ON CONFLICT DO NOTHING",
                params,
            )
    return {
        "items": [{"title": item.title, "summary": item.summary, "url": item.url, "body": item.body} for item in items]
    }


def silence_risk_topics(*, now: datetime | None = None) -> QuerySet[Topic]:
    """Return the active topics that have, in some language, neither fresh nor evergreen content."""
    now = now or timezone.now()
    fresh_since = now - timedelta(days=settings.CADENCE_FRESH_DAYS)
    risky = Q()
    for language in Locale.values:
        usable = ContentItem.objects.filter(topic=OuterRef("pk"), language=language, published_at__lte=now).filter(
            Q(evergreen=True) | Q(published_at__gte=fresh_since)
        )
        risky |= ~Exists(usable)
    return Topic.objects.filter(is_active=True).filter(risky)
