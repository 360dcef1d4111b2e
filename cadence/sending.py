"""Cadence's side of the delivery pipe: enqueue send batches, build a batch's context, record its results.

The send task (cadence.tasks.send_batch) calls `batch_send`: messaging claims the batch and checks
consent; `BatchContext.prepare` adds, once for the whole batch, what only the producers know (the
digests, the confirmation link, the reminder's validity, the announcement's text); messaging
renders, hands off and records the results, and in the same transaction `BatchContext.record`
moves the batch's schedules in one UPDATE and writes the digest receipts in one INSERT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from cadence import rules
from cadence.digest import DIGEST_TEMPLATES, digest_items_for, item_context
from cadence.models import ContentItem, ContentReceipt, Schedule
from config.bulk import changed_rows, values_cte
from messaging.models import Announcement, Delivery
from messaging.services import BatchResult, Prepared, deliveries_send
from preferences.models import Contact, Product
from preferences.policy import Policies, effective_frequency, load_policies
from preferences.tokens import Purpose, contact_url

logger = logging.getLogger(__name__)


def deliveries_enqueue(delivery_ids: Sequence[UUID | str], *, queue: str, batch_size: int | None = None) -> None:
    """Put the deliveries on `queue` as send tasks of at most `batch_size` (CADENCE_TICK_BATCH_SIZE) each."""
    from cadence.tasks import send_batch

    ids = [str(delivery_id) for delivery_id in delivery_ids]
    size = batch_size or settings.CADENCE_TICK_BATCH_SIZE
    for start in range(0, len(ids), size):
        send_batch.apply_async((ids[start : start + size],), queue=queue)


def deliveries_enqueue_on_their_queues(delivery_ids: Sequence[UUID | str]) -> None:
    """Put deliveries of mixed queues (a resumed send) each on its own queue."""
    by_queue: dict[str, list[str]] = {}
    for delivery_id, queue in Delivery.objects.filter(id__in=list(delivery_ids)).values_list("id", "queue"):
        by_queue.setdefault(queue, []).append(str(delivery_id))
    for queue, ids in by_queue.items():
        deliveries_enqueue(ids, queue=queue)


def delivery_enqueue(delivery: Delivery) -> None:
    """Put one delivery on its own queue (a batch of one)."""
    deliveries_enqueue([delivery.id], queue=delivery.queue)


def batch_send(*, delivery_ids: Sequence[UUID | str], now: datetime | None = None) -> BatchResult:
    """Send a batch through the pipe with its context built once; return what became of each delivery."""
    context = BatchContext(now=now)
    return deliveries_send(delivery_ids=delivery_ids, prepare=context.prepare, on_recorded=context.record)


class BatchContext:
    """What the producers add to one batch, and what they record once it is sent."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now
        self.digests: dict[str, list[ContentItem]] = {}
        self.policies: Policies | None = None

    def prepare(self, deliveries: list[Delivery]) -> Prepared:
        """Return the batch's template context and refusals, in a few queries for the whole batch."""
        now = self.now or timezone.now()
        prepared = Prepared()
        digest_contacts = {d.contact_id: d.contact for d in deliveries if d.template in DIGEST_TEMPLATES}
        items = digest_items_for(list(digest_contacts.values()), now=now) if digest_contacts else {}
        products = _products(d for d in deliveries if d.kind == Delivery.Kind.REMINDER)
        announcements = _announcements(d for d in deliveries if d.kind == Delivery.Kind.ANNOUNCEMENT)
        # Contacts with the same digest share one list: messaging renders (and keys) it once.
        digest_contexts: dict[tuple[int, ...], list[dict[str, str]]] = {}
        for delivery in deliveries:
            key = str(delivery.id)
            contact = delivery.contact
            extra: dict[str, Any] = {}
            if delivery.contact_id in items:
                picked = self.digests[key] = items[delivery.contact_id]
                ids = tuple(item.pk for item in picked)
                if ids not in digest_contexts:
                    digest_contexts[ids] = [item_context(item) for item in picked]
                extra["items"] = digest_contexts[ids]
            if delivery.kind == Delivery.Kind.CONFIRMATION:
                if contact.status != Contact.Status.PENDING:
                    prepared.refused[key] = "nothing to confirm"
                extra["confirm_url"] = contact_url(contact, Purpose.CONFIRM)
            elif delivery.kind == Delivery.Kind.REMINDER:
                why = _reminder_refusal(delivery, products, timezone.localdate(now))
                if why:
                    prepared.refused[key] = why
            elif delivery.kind == Delivery.Kind.ANNOUNCEMENT:
                announcement = announcements.get(delivery.context.get("announcement_id"))
                if announcement is None:
                    prepared.refused[key] = "announcement deleted"
                else:
                    extra.update(subject=announcement.subject(contact.locale), body=announcement.body(contact.locale))
            prepared.contexts[key] = extra
        return prepared

    def record(self, deliveries: list[Delivery]) -> None:
        """Record what the sent deliveries mean for cadence: schedules moved, digest receipts written."""
        sent = [d for d in deliveries if d.status == Delivery.Status.SENT and d.sent_at is not None]
        marketing = [d for d in sent if d.marketing]
        if marketing and self.policies is None:
            self.policies = load_policies()  # once per batch, however many times it is recorded
        schedules_record_sends(deliveries=marketing, policies=self.policies)
        receipts = [(d.contact_id, item.pk, d.sent_at) for d in sent for item in self.digests.get(str(d.id), [])]
        if receipts:
            receipts_record(rows=receipts)


def receipts_record(*, rows: list[tuple[Any, int, datetime | None]]) -> None:
    """Write digest receipts (contact id, item id, received at) in one INSERT; ones already there stay."""
    cte, params = values_cte(ContentReceipt, ["contact_id", "item_id", "received_at"], rows)
    table = connection.ops.quote_name(ContentReceipt._meta.db_table)
    sql = (
        f"{cte} INSERT INTO {table} (contact_id, item_id, received_at) "
        "SELECT contact_id, item_id, received_at FROM v WHERE true ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def schedules_record_sends(*, deliveries: list[Delivery], policies: Policies | None = None) -> int:
    """Record that marketing mails went out, in one UPDATE: each schedule's last mail, and after the welcome
    series its next nurture mail (sent_at + interval in the contact's zone and send window, with jitter).

    A schedule that already records a later mail is left alone. Return how many schedules moved.
    `policies` (load_policies) saves reading them when the caller has them.
    """
    latest: dict[Any, Delivery] = {}
    for delivery in deliveries:
        if delivery.sent_at is None:
            continue
        known = latest.get(delivery.contact_id)
        if known is None or known.sent_at is None or known.sent_at < delivery.sent_at:
            latest[delivery.contact_id] = delivery
    if not latest:
        return 0
    from cadence.services import send_window, series_length

    if policies is None:
        policies = load_policies()
    window = send_window()
    intervals: dict[tuple[str, str], timedelta] = {}
    zones: dict[str, ZoneInfo] = {}
    rows = []
    for contact_id, delivery in latest.items():
        contact = delivery.contact
        assert delivery.sent_at is not None
        interval = intervals.get((contact.frequency, contact.potential))
        if interval is None:
            interval = intervals[contact.frequency, contact.potential] = effective_frequency(contact, policies).interval
        tz = zones.get(contact.time_zone)
        if tz is None:
            tz = zones[contact.time_zone] = rules.zone(contact.time_zone, settings.DEFAULT_CONTACT_TIMEZONE)
        next_due = rules.next_due(
            last_sent_at=delivery.sent_at,
            interval=interval,
            tz=tz,
            window=window,
            jitter_key=delivery.idempotency_key,
            paused_until=contact.paused_until,
        )
        rows.append((contact_id, delivery.sent_at, next_due))
    cte, params = values_cte(Schedule, ["contact_id", "last_sent_at", "next_due_at"], rows)
    table = connection.ops.quote_name(Schedule._meta.db_table)
    now = Schedule._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    sql = (
        f"{cte} UPDATE {table} SET last_sent_at = v.last_sent_at, "
        f"next_due_at = CASE WHEN {table}.welcome_step >= %s THEN v.next_due_at ELSE {table}.next_due_at END, "
        f"updated_at = %s FROM v WHERE {table}.contact_id = v.contact_id "
        f"AND ({table}.last_sent_at IS NULL OR {table}.last_sent_at < v.last_sent_at)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, series_length(), now])
        return changed_rows(cursor)


def _products(reminders: Any) -> dict[Any, Product]:
    ids = {d.context.get("product_id") for d in reminders}
    ids.discard(None)
    return {product.pk: product for product in Product.objects.filter(pk__in=ids)} if ids else {}


def _announcements(deliveries: Any) -> dict[Any, Announcement]:
    ids = {d.context.get("announcement_id") for d in deliveries}
    ids.discard(None)
    return Announcement.objects.in_bulk(list(ids)) if ids else {}


def _reminder_refusal(delivery: Delivery, products: dict[Any, Product], today: date) -> str:
    """Return why a service reminder must not go out: declined, or its product date moved or ended."""
    if not delivery.contact.service_reminders:
        return "service reminders declined"
    context = delivery.context
    product = products.get(context.get("product_id"))
    date_field = "ends_on" if context.get("event") == "end" else "renews_on"
    if product is None or product.contact_id != delivery.contact_id:
        return "reminder out of date: the product or its date changed"
    if str(getattr(product, date_field)) != context.get("event_date"):
        return "reminder out of date: the product or its date changed"
    if product.has_ended(today):
        return "reminder out of date: the product has ended"
    return ""
