"""How the cadence engine answers what preferences and messaging report."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from cadence.batch import DOSSIER_LINK_TEMPLATE, PENDING_SIGNUP
from cadence.enqueue import deliveries_enqueue, deliveries_enqueue_on_their_queues, delivery_enqueue
from cadence.keys import ANNOUNCEMENT_SEND, confirmation_key, import_send_key, invitation_key, link_request_key
from cadence.kinds import Kind
from cadence.models import AnnouncementRecipient, ContactHealth, ContentReceipt, Schedule
from cadence.schedules import schedule_reschedule, schedule_start, schedule_stop, schedules_stop
from config.celery import app
from messaging import signals as messaging_signals
from messaging.brake import send_is_braked
from messaging.models import Delivery
from messaging.services import delivery_create
from preferences import signals
from preferences.models import Contact

EXPAND_ANNOUNCEMENT_TASK = "cadence.tasks.expand_announcement"


@receiver(signals.confirmation_requested)
def send_confirmation(
    sender: Any, contact: Contact, event_id: int, already_confirmed: bool, pending_signup_id: str = "", **kwargs: Any
) -> None:
    """Queue the double opt-in mail, or the note with the preference-centre link for a known address.

    A signup for a known address waits as `pending_signup_id`: its confirmation link names it.
    """
    kind = Kind.ALREADY_SUBSCRIBED if already_confirmed else Kind.CONFIRMATION
    delivery_create(
        contact=contact,
        kind=kind,
        template=kind,
        idempotency_key=confirmation_key(kind, contact.id, event_id),
        marketing=False,
        queue=Delivery.Queue.WELCOME,
        context={PENDING_SIGNUP: pending_signup_id} if pending_signup_id else None,
        enqueue=delivery_enqueue,
    )


@receiver(signals.invitations_requested)
def send_invitations(sender: Any, invitations: list[tuple[Contact, int]], import_id: str = "", **kwargs: Any) -> None:
    """Queue one invitation per imported contact: a confirmation-kind (service) mail asking to confirm, on `bulk`.

    An import's invitations are one send (`keys.import_send_key`): a bad list that bounces is held by the brake.
    """
    send_key = import_send_key(import_id) if import_id else ""
    deliveries = [
        Delivery(
            contact=contact,
            kind=Kind.CONFIRMATION,
            template="invitation",
            idempotency_key=invitation_key(contact.id, event_id),
            marketing=False,
            queue=Delivery.Queue.BULK,
            send_key=send_key,
        )
        for contact, event_id in invitations
    ]
    # One INSERT per batch; a key that exists already is skipped, and only rows inserted here are sent.
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=1000)
    ids = list(Delivery.objects.filter(id__in=[d.id for d in deliveries]).values_list("id", flat=True))
    if ids and send_key and send_is_braked(send_key):
        # A later part of an import the brake stopped waits with the rest of it (resume or cancel).
        Delivery.objects.filter(id__in=ids, status=Delivery.Status.QUEUED).update(status=Delivery.Status.HELD)
        return
    # Thousands of invitations must not hold up the confirmations people are waiting for on `welcome`.
    if ids:
        transaction.on_commit(partial(deliveries_enqueue, ids, queue=Delivery.Queue.BULK))


@receiver(signals.link_requested)
def send_link(sender: Any, contact: Contact, request_id: str, **kwargs: Any) -> None:
    """Queue the service mail with a fresh preference-centre link, on the confirmation mail's path."""
    delivery_create(
        contact=contact,
        kind=Kind.LINK_REQUEST,
        template=Kind.LINK_REQUEST,
        idempotency_key=link_request_key(contact.id, request_id),
        marketing=False,
        queue=Delivery.Queue.WELCOME,
        enqueue=delivery_enqueue,
    )


@receiver(signals.dossier_requested)
def send_dossier_link(sender: Any, contact: Contact, request_id: str, **kwargs: Any) -> None:
    """Queue the service mail with a one-time link to the person's dossier, on the same path as a requested link."""
    delivery_create(
        contact=contact,
        kind=Kind.LINK_REQUEST,
        template=DOSSIER_LINK_TEMPLATE,
        idempotency_key=link_request_key(contact.id, f"dossier-{request_id}"),
        marketing=False,
        queue=Delivery.Queue.WELCOME,
        enqueue=delivery_enqueue,
    )


@receiver(signals.contact_confirmed)
def start_schedule(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_start(contact=contact)


@receiver(signals.data_export_collect)
def export_schedule(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, Any]:
    schedule = Schedule.objects.filter(contact=contact).values("is_active", "next_due_at", "last_sent_at").first()
    return "schedule", schedule


@receiver(signals.data_export_collect)
def export_health(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, Any]:
    health = (
        ContactHealth.objects.filter(contact=contact).values("state", "reasons", "state_since", "computed_at").first()
    )
    return "relationship_health", health


@receiver(signals.data_export_collect)
def export_announcement_copies(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, Any]:
    """The announcements meant for the person and whether they have had them yet (in which mail, when)."""
    copies = (
        AnnouncementRecipient.objects.filter(contact=contact)
        .order_by("created_at", "id")
        .values("announcement__title", "announcement__kind", "state", "delivered_at", "created_at")
    )
    return "announcements", [
        {
            "announcement": row["announcement__title"],
            "kind": row["announcement__kind"],
            "state": row["state"],
            "delivered_at": row["delivered_at"],
            "since": row["created_at"],
        }
        for row in copies
    ]


@receiver(signals.data_export_collect)
def export_content_receipts(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, Any]:
    """Which content items the person received in nurture mails (so none is sent twice), and when."""
    receipts = (
        ContentReceipt.objects.filter(contact=contact)
        .order_by("received_at", "id")
        .values("received_at", "item__title", "item__language", "item__topic__slug")
    )
    return "content_received", [
        {
            "received_at": row["received_at"],
            "title": row["item__title"],
            "language": row["item__language"],
            "topic": row["item__topic__slug"],
        }
        for row in receipts
    ]


@receiver(signals.contact_erasing)
def stop_schedule_on_erasure(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_stop(contact=contact)


@receiver(signals.preferences_changed)
def move_schedule(sender: Any, contact: Contact, changes: list[str] | None = None, **kwargs: Any) -> None:
    if changes is None or {"frequency", "paused_until", "status"} & set(changes):
        schedule_reschedule(contact=contact)


@receiver(signals.contact_unsubscribed)
@receiver(signals.contact_suppressed)
def stop_schedule(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_stop(contact=contact)


@receiver(signals.contacts_suppressed)
def stop_schedules(sender: Any, contacts: list[Contact], **kwargs: Any) -> None:
    schedules_stop(contact_ids=[contact.pk for contact in contacts])


@receiver(messaging_signals.send_resumed, dispatch_uid="cadence.enqueue_resumed_send")
def enqueue_resumed_send(sender: Any, send_key: str, delivery_ids: list[str], **kwargs: Any) -> None:
    """A marketer resumed a braked send: its held mail goes back on its queues, and an announcement whose
    audience was still being expanded when the brake held it goes on expanding."""
    deliveries_enqueue_on_their_queues(delivery_ids)
    prefix = ANNOUNCEMENT_SEND.split("{")[0]
    announcement_id = send_key.removeprefix(prefix)
    if send_key.startswith(prefix) and announcement_id.isdigit():
        app.tasks[EXPAND_ANNOUNCEMENT_TASK].delay(int(announcement_id))
