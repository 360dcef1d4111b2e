"""Cadence's side of the delivery pipe: build a batch's context, record its results.

The send task (cadence.tasks.send_batch) calls `batch_send`: messaging claims the batch and checks
consent; `BatchContext.prepare` adds, once for the whole batch, what only the producers know (the
digests, the confirmation link, the reminder's validity, the announcement's text); messaging
renders, hands off and records the results, and in the same transaction `BatchContext.record`
moves the batch's schedules in one UPDATE and writes the digest receipts in one INSERT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.utils import timezone

from cadence.announcement_copies import carries_copies, copies_claim, copies_record
from cadence.digest import DIGEST_TEMPLATES, digest_items_for, item_context
from cadence.kinds import Kind
from cadence.models import Announcement, ContentItem, ContentReceipt
from cadence.schedules import schedules_record_sends
from messaging.bulk_sql import values_cte
from messaging.models import Delivery
from messaging.services import BatchResult, Prepared, deliveries_send
from preferences.models import Contact, Product
from preferences.policy import Policies, load_policies
from preferences.tokens import Purpose, contact_url

logger = logging.getLogger(__name__)

# The requested-link mail that carries a one-time dossier link instead of a preference link.
DOSSIER_LINK_TEMPLATE = "dossier_link"
# The key of a confirmation delivery's context that names the signup waiting for it.
PENDING_SIGNUP = "pending_signup"


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
        # Deliveries that carry announcement copies: their outcome delivers or gives back the copies.
        self.carrying: set[str] = set()

    def prepare(self, deliveries: list[Delivery]) -> Prepared:
        """Return the batch's template context and refusals, in a few queries for the whole batch."""
        now = self.now or timezone.now()
        prepared = Prepared()
        digest_contacts = {d.contact_id: d.contact for d in deliveries if d.template in DIGEST_TEMPLATES}
        items = digest_items_for(list(digest_contacts.values()), now=now) if digest_contacts else {}
        products = _products(d for d in deliveries if d.kind == Kind.REMINDER)
        announcements = _announcements(d for d in deliveries if d.kind == Kind.ANNOUNCEMENT)
        copies = copies_claim(deliveries)  # one statement for the batch's marketing mails
        blocks: dict[tuple[tuple[int, ...], str], dict[str, Any]] = {}
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
            if delivery.kind == Kind.CONFIRMATION:
                # A signup for a known address waits for this mail's link (preferences.models.PendingSignup).
                waiting = delivery.context.get(PENDING_SIGNUP, "")
                if contact.status != Contact.Status.PENDING and not waiting:
                    prepared.refused[key] = "nothing to confirm"
                extra["confirm_url"] = contact_url(contact, Purpose.CONFIRM, payload=waiting.replace("-", ""))
            elif delivery.template == DOSSIER_LINK_TEMPLATE:
                extra["dossier_url"] = contact_url(contact, Purpose.DOSSIER)
                extra["dossier_minutes"] = settings.DOSSIER_TOKEN_MAX_AGE // 60
            elif delivery.kind == Kind.REMINDER:
                why = _reminder_refusal(delivery, products, timezone.localdate(now))
                if why:
                    prepared.refused[key] = why
            elif delivery.kind == Kind.ANNOUNCEMENT:
                announcement = announcements.get(delivery.context.get("announcement_id"))
                if announcement is None:
                    prepared.refused[key] = "announcement deleted"
                elif announcement.is_marketing and announcement not in copies.for_delivery(key):
                    prepared.refused[key] = "announcement delivered in another mail already"
                else:
                    extra.update(subject=announcement.subject(contact.locale), body=announcement.body(contact.locale))
            if carries_copies(delivery) and (carried := copies.for_delivery(key)):
                # Only a mail that claimed copies has some to deliver or give back when it is recorded.
                self.carrying.add(key)
                if delivery.kind == Kind.ANNOUNCEMENT:
                    # Its own mail is the person's next mail: the other copies that wait ride along.
                    carried = [a for a in carried if a.pk != delivery.context.get("announcement_id")]
                if carried:
                    # Mails with the same blocks share one context: messaging renders the group once.
                    block_key = (tuple(a.pk for a in carried), contact.locale)
                    if block_key not in blocks:
                        blocks[block_key] = _announcement_blocks(carried, contact.locale)
                    extra.update(blocks[block_key])
            prepared.contexts[key] = extra
        return prepared

    def record(self, deliveries: list[Delivery]) -> None:
        """Record what the sent deliveries mean for cadence: schedules moved, digest receipts written."""
        sent = [d for d in deliveries if d.status == Delivery.Status.SENT and d.sent_at is not None]
        marketing = [d for d in sent if d.marketing]
        if marketing and self.policies is None:
            self.policies = load_policies()  # once per batch, however many times it is recorded
        schedules_record_sends(deliveries=marketing, policies=self.policies)
        carried = [d for d in deliveries if str(d.id) in self.carrying]
        if carried:
            copies_record(carried)
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


def _products(reminders: Any) -> dict[Any, Product]:
    ids = {d.context.get("product_id") for d in reminders}
    ids.discard(None)
    return {product.pk: product for product in Product.objects.filter(pk__in=ids)} if ids else {}


def _announcements(deliveries: Any) -> dict[Any, Announcement]:
    ids = {d.context.get("announcement_id") for d in deliveries}
    ids.discard(None)
    return Announcement.objects.in_bulk(list(ids)) if ids else {}


def _announcement_blocks(announcements: list[Announcement], locale: str) -> dict[str, Any]:
    """Return the lead blocks a mail of the person's schedule carries, in their language. An announcement
    sent "as soon as the cadence allows" makes the mail its own: its subject becomes the mail's subject."""
    if not announcements:
        return {}
    blocks = [{"subject": a.subject(locale), "body": a.body(locale)} for a in announcements]
    lead = next((a for a in announcements if a.delivery_mode == Announcement.DeliveryMode.CADENCE_ALLOWS), None)
    return {"announcements": blocks, "lead_subject": lead.subject(locale) if lead is not None else ""}


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
