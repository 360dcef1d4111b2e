"""Announcements: count the audience, confirm, expand it into deliveries in batches, report progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext

from cadence.enqueue import deliveries_enqueue
from cadence.keys import announcement_key, announcement_prefix, announcement_send_key
from cadence.kinds import Kind
from cadence.models import Announcement
from messaging.brake import send_is_braked
from messaging.models import Delivery
from messaging.rendering import RenderedMessage, render_message
from messaging.services import person_context
from preferences.frequencies import get_frequency
from preferences.models import Contact, Locale, marketable_q
from preferences.selectors import customers_q
from preferences.services import normalize_email

EXPAND_BATCH_SIZE = 1000
PENDING_STATUSES = (Delivery.Status.QUEUED, Delivery.Status.SENDING)


def announcement_audience(announcement: Announcement, *, now: datetime | None = None) -> QuerySet[Contact]:
    """Return the contacts the announcement goes to.

    Every audience needs a valid (unsuppressed) address. A service announcement reaches customers
    whatever their value or marketing consent; "all contacts" and segments add confirmed
    subscribers who are not customers. A marketing announcement also needs marketing consent now.
    """
    now = now or timezone.now()
    customers = customers_q(now.date())
    contacts = Contact.objects.addressable()
    if announcement.audience == Announcement.Audience.ALL_CUSTOMERS:
        contacts = contacts.filter(customers)
    else:
        contacts = contacts.filter(customers | Q(status=Contact.Status.CONFIRMED))
    if announcement.audience == Announcement.Audience.SEGMENT:
        if announcement.segment_potential:
            contacts = contacts.filter(potential=announcement.segment_potential)
        if announcement.segment_lifecycle == Announcement.Lifecycle.CUSTOMER:
            contacts = contacts.filter(customers)
        elif announcement.segment_lifecycle == Announcement.Lifecycle.PROSPECT:
            contacts = contacts.exclude(customers)
        if announcement.segment_topic_id:
            contacts = contacts.filter(topics=announcement.segment_topic_id)
    if announcement.is_marketing:
        contacts = contacts.filter(marketable_q(now))
    return contacts


def announcement_confirm(
    *, announcement: Announcement, confirmed_by: str, enqueue: Callable[[int], None] | None = None
) -> bool:
    """Confirm a draft: record the exact audience count and start the expansion after commit, or at its
    `scheduled_at` when that is still ahead (`announcements_start_due`).

    Return False when the announcement was not a draft any more (confirmed twice, or by two people).
    """
    with transaction.atomic():
        now = timezone.now()
        count = announcement_audience(announcement, now=now).count()
        confirmed = Announcement.objects.filter(pk=announcement.pk, status=Announcement.Status.DRAFT).update(
            status=Announcement.Status.CONFIRMED,
            audience_count=count,
            confirmed_by=confirmed_by[:150],
            confirmed_at=now,
            updated_at=now,
        )
        starts_later = announcement.scheduled_at is not None and announcement.scheduled_at > now
        if confirmed and enqueue is not None and not starts_later:
            announcement_id = announcement.pk
            transaction.on_commit(lambda: enqueue(announcement_id))
    return bool(confirmed)


def announcement_audience_breakdown(announcement: Announcement, *, now: datetime | None = None) -> dict[str, int]:
    """Return the audience counted by language and consent: `<locale>_marketing` (confirmed marketing consent
    now) and `<locale>_service` (reached as customers, without marketing consent), in one query."""
    now = now or timezone.now()
    consent = marketable_q(now)
    return announcement_audience(announcement, now=now).aggregate(
        **{
            f"{locale}_{channel}": Count(
                "pk", filter=Q(locale=locale) & (consent if channel == "marketing" else ~consent)
            )
            for locale in Locale.values
            for channel in ("marketing", "service")
        }
    )


def announcements_start_due(*, enqueue: Callable[[int], None], now: datetime | None = None) -> int:
    """Start the expansion of confirmed announcements whose time has come (beat runs this every minute).

    Starting twice is harmless: the expansion resumes at its cursor and each delivery has its key.
    Return how many were started.
    """
    now = now or timezone.now()
    due = list(
        Announcement.objects.filter(
            status=Announcement.Status.CONFIRMED, scheduled_at__lte=now, expanded_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for announcement_id in due:
        enqueue(announcement_id)
    return len(due)


def enqueue_sends(delivery_ids: Sequence[str]) -> None:
    """Put an announcement's deliveries on the bulk queue, one task per batch."""
    deliveries_enqueue(delivery_ids, queue=Delivery.Queue.BULK)


def announcement_expand(
    *,
    announcement_id: int,
    enqueue_sends: Callable[[Sequence[str]], None] = enqueue_sends,
    batch_size: int = EXPAND_BATCH_SIZE,
    time_budget: float = 60.0,
) -> bool:
    """Turn the audience into queued deliveries, one batch per transaction, resuming at the cursor.

    Contacts are read in keyset order (by id), never all at once. Each batch's sends are enqueued
    after its commit. Return True when the audience is fully expanded, False when the time budget
    ran out first (the caller runs it again).
    """
    started = time.monotonic()
    while True:
        with transaction.atomic():
            announcement = Announcement.objects.select_for_update().get(pk=announcement_id)
            if announcement.expanded_at is not None or announcement.status not in (
                Announcement.Status.CONFIRMED,
                Announcement.Status.SENDING,
            ):
                return True
            if send_is_braked(announcement_send_key(announcement.pk)):
                return True  # held by the bounce and complaint brake; resuming the send expands it again
            now = timezone.now()
            contacts = announcement_audience(announcement, now=now).order_by("id")
            if announcement.expanded_through is not None:
                contacts = contacts.filter(id__gt=announcement.expanded_through)
            contact_ids = list(contacts.values_list("id", flat=True)[:batch_size])
            announcement.status = Announcement.Status.SENDING
            if not contact_ids:
                announcement.expanded_at = now
                announcement.save(update_fields=["status", "expanded_at", "updated_at"])
                return True
            context = {"announcement_id": announcement.pk}
            keys = [announcement_key(announcement.pk, contact_id) for contact_id in contact_ids]
            Delivery.objects.bulk_create(
                [
                    Delivery(
                        contact_id=contact_id,
                        kind=Kind.ANNOUNCEMENT,
                        template="announcement",
                        idempotency_key=key,
                        marketing=announcement.is_marketing,
                        queue=Delivery.Queue.BULK,
                        context=context,
                        send_key=announcement_send_key(announcement.pk),
                    )
                    for contact_id, key in zip(contact_ids, keys, strict=True)
                ],
                ignore_conflicts=True,
            )
            queued = [
                str(pk)
                for pk in Delivery.objects.filter(idempotency_key__in=keys, status=Delivery.Status.QUEUED).values_list(
                    "id", flat=True
                )
            ]
            announcement.expanded_through = contact_ids[-1]
            announcement.created_count += len(contact_ids)
            announcement.save(update_fields=["status", "expanded_through", "created_count", "updated_at"])
            transaction.on_commit(partial(enqueue_sends, queued))
        if time.monotonic() - started > time_budget:
            return False


def announcement_progress(announcement: Announcement) -> dict[str, int]:
    """Return the announcement's deliveries counted by status, and mark it done when none is pending."""
    rows = (
        Delivery.objects.filter(
            kind=Kind.ANNOUNCEMENT, idempotency_key__startswith=announcement_prefix(announcement.pk)
        )
        .values("status")
        .annotate(n=Count("id"))
    )
    progress = {status: 0 for status in Delivery.Status.values}
    progress.update({row["status"]: row["n"] for row in rows})
    pending = sum(progress[status] for status in PENDING_STATUSES)
    if announcement.status == Announcement.Status.SENDING and announcement.expanded_at and not pending:
        now = timezone.now()
        Announcement.objects.filter(pk=announcement.pk, status=Announcement.Status.SENDING).update(
            status=Announcement.Status.DONE, finished_at=now, updated_at=now
        )
        announcement.status, announcement.finished_at = Announcement.Status.DONE, now
    return progress


def announcement_resume(
    *,
    announcement: Announcement,
    enqueue_expand: Callable[[int], None],
    enqueue_sends: Callable[[Sequence[str]], None] = enqueue_sends,
    batch_size: int = EXPAND_BATCH_SIZE,
) -> int:
    """Restart what a lost task left behind: the expansion, and the sends of deliveries still queued.

    Sending twice is harmless (each send claims its delivery). Return how many sends were enqueued.
    """
    if announcement.status not in (Announcement.Status.CONFIRMED, Announcement.Status.SENDING):
        return 0
    if announcement.expanded_at is None:
        enqueue_expand(announcement.pk)
    queued = Delivery.objects.filter(
        kind=Kind.ANNOUNCEMENT,
        idempotency_key__startswith=announcement_prefix(announcement.pk),
        status=Delivery.Status.QUEUED,
    ).order_by("id")
    last_id = None
    enqueued = 0
    while True:
        page = queued if last_id is None else queued.filter(id__gt=last_id)
        ids = [str(pk) for pk in page.values_list("id", flat=True)[:batch_size]]
        if not ids:
            return enqueued
        enqueue_sends(ids)
        enqueued += len(ids)
        last_id = ids[-1]


def announcement_preview(*, announcement: Announcement, locale: str, contact: Contact | None = None) -> RenderedMessage:
    """Return the announcement rendered in `locale`: for `contact` when given, else for a sample reader."""
    if contact is not None and contact.pk is not None:
        context = person_context(contact, marketing=announcement.is_marketing)
    else:
        with translation.override(locale):
            context = {
                "first_name": gettext("Sam"),
                "topics": [],
                "frequency_label": get_frequency(settings.CADENCE_DEFAULT_FREQUENCY).label,
                "site_url": settings.SITE_URL,
                "preferences_url": f"{settings.SITE_URL}/preferences/…/",
                "unsubscribe_url": f"{settings.SITE_URL}/unsubscribe/…/",
                "is_marketing": announcement.is_marketing,
            }
    context.update(subject=announcement.subject(locale), body=announcement.body(locale))
    return render_message("announcement", context, locale)


def announcement_send_test(*, announcement: Announcement, address: str, locale: str) -> RenderedMessage:
    """Send the announcement in `locale` to `address` as a test (subject marked, no delivery recorded)."""
    contact = Contact.objects.filter(email=normalize_email(address)).first()
    rendered = announcement_preview(announcement=announcement, locale=locale, contact=contact)
    with translation.override(locale):
        subject = gettext("[Test] %(subject)s") % {"subject": rendered.subject}
    message = EmailMultiAlternatives(subject=subject, body=rendered.text, to=[address])
    message.attach_alternative(rendered.html, "text/html")
    message.send()
    return rendered
