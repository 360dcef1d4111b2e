"""Announcements: count the audience, confirm, expand it into deliveries in batches, report progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext

from cadence.enqueue import deliveries_enqueue
from cadence.keys import announcement_key, announcement_prefix, announcement_send_key
from cadence.kinds import Kind
from cadence.models import Announcement, AnnouncementRecipient, Schedule
from cadence.schedules import marketing_may_go_q, schedules_take_slots
from messaging.brake import send_is_braked
from messaging.models import Delivery
from messaging.rendering import RenderedMessage, render_message
from messaging.services import person_context
from preferences.frequencies import get_frequency
from preferences.models import Contact, Locale, marketable_q
from preferences.selectors import customers_q
from preferences.services import normalize_email

EXPAND_BATCH_SIZE = 1000
# The promise ("everyone has it by") is the latest next slot plus this, for the tick and the send.
PROMISE_MARGIN = timedelta(hours=1)
PENDING_STATUSES = (Delivery.Status.QUEUED, Delivery.Status.SENDING)


def announcement_audience(
    announcement: Announcement, *, now: datetime | None = None, consent: bool = True
) -> QuerySet[Contact]:
    """Return the contacts the announcement goes to.

    Every audience needs a valid (unsuppressed) address. A service announcement reaches customers
    whatever their value or marketing consent; "all contacts" and segments add confirmed
    subscribers who are not customers. A marketing announcement also needs marketing consent now
    (without `consent`: everyone it would reach with consent, for the preview's "never").
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
    if announcement.is_marketing and consent:
        contacts = contacts.filter(marketable_q(now))
    return contacts


@dataclass
class Plan:
    """What will happen when the announcement is sent, per language: how many get it now, in their next
    mail (all by `promised_by`), and never (no marketing consent)."""

    now: dict[str, int]
    next_mail: dict[str, int]
    never: dict[str, int]
    promised_by: datetime | None

    def total(self, part: str) -> int:
        return sum(getattr(self, part).values())


def announcement_plan(announcement: Announcement, *, now: datetime | None = None) -> Plan:
    """Return what sending the announcement now means, in one query.

    A service announcement goes to its whole audience at once. A marketing one goes now to those a
    marketing mail may go to now (`marketing_may_go`, nothing else on its way) when it is sent "as
    soon as the cadence allows", or only to those without a schedule of their own when it rides "in
    each person's next mail"; everyone else with consent gets it in their next mail, the last of them
    at the latest next slot of the audience (`promised_by`, an hour later for the tick and the send).
    """
    now = now or timezone.now()
    locales = Locale.values
    audience = announcement_audience(announcement, now=now, consent=False)
    if not announcement.is_marketing:
        counts = audience.aggregate(**{locale: Count("pk", filter=Q(locale=locale)) for locale in locales})
        return Plan(now=counts, next_mail=dict.fromkeys(locales, 0), never=dict.fromkeys(locales, 0), promised_by=None)
    consent = marketable_q(now)
    goes_now = consent & announcement_goes_now_q(announcement, now=now)
    rides = consent & ~goes_now
    counts = audience.aggregate(
        **{f"now_{locale}": Count("pk", filter=goes_now & Q(locale=locale)) for locale in locales},
        **{f"next_{locale}": Count("pk", filter=rides & Q(locale=locale)) for locale in locales},
        **{f"never_{locale}": Count("pk", filter=~consent & Q(locale=locale)) for locale in locales},
        latest=Max("schedule__next_due_at", filter=rides),
    )
    latest = counts["latest"]
    return Plan(
        now={locale: counts[f"now_{locale}"] for locale in locales},
        next_mail={locale: counts[f"next_{locale}"] for locale in locales},
        never={locale: counts[f"never_{locale}"] for locale in locales},
        promised_by=None if latest is None else max(latest, now) + PROMISE_MARGIN,
    )


def announcement_goes_now_q(announcement: Announcement, *, now: datetime) -> Q:
    """Return the filter for the audience members who get the marketing announcement in a mail of its own
    now (the rest, with consent, get it in their next mail)."""
    on_its_way = Exists(
        Delivery.objects.filter(
            contact=OuterRef("pk"), marketing=True, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
        )
    )
    allowed = marketing_may_go_q(now=now) & ~Q(on_its_way)
    if announcement.delivery_mode == Announcement.DeliveryMode.NEXT_MAIL:
        # Only people without a schedule have no next mail to ride in.
        return allowed & ~Q(Exists(Schedule.objects.filter(contact=OuterRef("pk"), is_active=True)))
    return allowed


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
            promised_by=announcement_plan(announcement, now=now).promised_by,
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
            if announcement.expanded_through is None and announcement.is_marketing:
                # Fixed when sending starts: a scheduled announcement's audience has moved on since.
                announcement.promised_by = announcement_plan(announcement, now=now).promised_by
                announcement.save(update_fields=["promised_by", "updated_at"])
            context = {"announcement_id": announcement.pk}
            own_mail = contact_ids
            if announcement.is_marketing:
                own_mail = _slots_take(announcement, contact_ids, now=now)
            keys = [announcement_key(announcement.pk, contact_id) for contact_id in own_mail]
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
                    for contact_id, key in zip(own_mail, keys, strict=True)
                ],
                ignore_conflicts=True,
            )
            created = list(
                Delivery.objects.filter(idempotency_key__in=keys, status=Delivery.Status.QUEUED).values_list(
                    "id", "contact_id"
                )
            )
            queued = [str(pk) for pk, _contact_id in created]
            if announcement.is_marketing:
                # One copy each: those who get it now have it in its own mail, the rest wait for their next mail.
                riding = {contact_id: pk for pk, contact_id in created}
                AnnouncementRecipient.objects.bulk_create(
                    [
                        AnnouncementRecipient(
                            announcement=announcement,
                            contact_id=contact_id,
                            state=AnnouncementRecipient.State.RIDING
                            if contact_id in riding
                            else AnnouncementRecipient.State.PENDING,
                            delivered_in=riding.get(contact_id),
                        )
                        for contact_id in contact_ids
                    ],
                    ignore_conflicts=True,
                )
            announcement.expanded_through = contact_ids[-1]
            announcement.created_count += len(contact_ids)
            announcement.save(update_fields=["status", "expanded_through", "created_count", "updated_at"])
            transaction.on_commit(partial(enqueue_sends, queued))
        if time.monotonic() - started > time_budget:
            return False


def _slots_take(announcement: Announcement, contact_ids: list[Any], *, now: datetime) -> list[Any]:
    """Take the slot of those in one batch of a marketing announcement's audience who get it in a mail of
    their own now (the one rule in cadence.schedules). Return their ids, in the batch's order."""
    contacts = list(Contact.objects.filter(pk__in=contact_ids).filter(announcement_goes_now_q(announcement, now=now)))
    now_ids = schedules_take_slots(contacts=contacts, now=now)
    return [contact_id for contact_id in contact_ids if contact_id in now_ids]


def announcement_progress(announcement: Announcement) -> dict[str, int]:
    """Return the announcement's deliveries counted by status and, for a marketing one, its copies by state
    (`copy_pending`, `copy_riding`, `copy_delivered`); mark it done when nothing is on its way any more
    and no copy waits (or the promised date has passed: a copy that still waits belongs to someone who
    since withdrew consent or chose to hear from us less often)."""
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
    if announcement.is_marketing:
        copies = dict(
            AnnouncementRecipient.objects.filter(announcement=announcement)
            .order_by()
            .values_list("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
        for state in AnnouncementRecipient.State.values:
            progress[f"copy_{state}"] = copies.get(state, 0)
        overdue = announcement.promised_by is not None and announcement.promised_by < timezone.now()
        pending += progress["copy_riding"] + (0 if overdue else progress["copy_pending"])
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
