"""Create and send deliveries. Every send is claimed by a conditional update, so it happens once."""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.module_loading import import_string

from messaging import signals
from messaging.models import Announcement, Delivery
from messaging.ratelimit import acquire_send_slots, max_chunk
from messaging.rendering import RenderedMessage, render_message
from preferences.models import Contact, Product, SuppressionEntry, address_hash
from preferences.policy import effective_frequency
from preferences.tokens import Purpose, contact_url

logger = logging.getLogger(__name__)

# HTTP statuses from an ESP that are worth retrying.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# What an ESP may answer per recipient that means the mail did not go out.
REFUSED_STATUSES = frozenset({"rejected", "invalid", "failed", "unknown"})


class TransientSendError(Exception):
    """The ESP could not take the message now; the Delivery is queued again for a retry."""


def retry_delay(retries: int) -> float:
    """Return the seconds to wait before retry number `retries` + 1.

    Exponential (SEND_RETRY_BACKOFF * 2**retries, at most SEND_RETRY_BACKOFF_MAX) with jitter
    between half and all of it, so workers spread out and each wait is at least as long as the last.
    """
    ceiling = min(settings.SEND_RETRY_BACKOFF_MAX, settings.SEND_RETRY_BACKOFF * 2**retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def delivery_create(
    *,
    contact: Contact,
    kind: str,
    template: str,
    idempotency_key: str,
    context: dict[str, Any] | None = None,
    enqueue: Callable[[Delivery], None] | None = None,
) -> Delivery | None:
    """Create a queued Delivery, or return None when one with this key exists already.

    `enqueue` runs after the transaction commits, so a worker never looks for a row it cannot see.
    """
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                contact=contact, kind=kind, template=template, idempotency_key=idempotency_key, context=context or {}
            )
    except IntegrityError:
        return None
    if enqueue is not None:
        transaction.on_commit(lambda: enqueue(delivery))
    return delivery


def deliveries_cancel(*, contact: Contact, kinds: frozenset[str] = Delivery.MARKETING_KINDS) -> int:
    """Cancel the contact's queued deliveries of `kinds`. Return how many were cancelled."""
    return Delivery.objects.filter(contact=contact, kind__in=kinds, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.CANCELLED, error="cancelled: consent withdrawn", updated_at=timezone.now()
    )


def message_context(delivery: Delivery) -> dict[str, Any]:
    """Return what the templates of a delivery need: the person, their choices and their links."""
    contact = delivery.contact
    locale = contact.locale
    frequency = effective_frequency(contact)
    context: dict[str, Any] = {
        "first_name": contact.first_name,
        "topics": [topic.name(locale) for topic in contact.topics.all()],
        "frequency_label": frequency.label,
        "site_url": settings.SITE_URL,
        "preferences_url": contact_url(contact, Purpose.PREFERENCES),
        "unsubscribe_url": contact_url(contact, Purpose.UNSUBSCRIBE),
        "is_marketing": delivery.is_marketing,
    }
    if delivery.kind == Delivery.Kind.CONFIRMATION:
        context["confirm_url"] = contact_url(contact, Purpose.CONFIRM)
    for _receiver, extra in signals.message_context_requested.send(sender=Delivery, delivery=delivery):
        context.update(extra or {})
    context.update(delivery.context)
    if delivery.kind == Delivery.Kind.ANNOUNCEMENT:
        announcement = Announcement.objects.get(pk=delivery.context["announcement_id"])
        context.update(subject=announcement.subject(locale), body=announcement.body(locale))
    return context


def unsubscribe_headers(contact: Contact) -> dict[str, str]:
    """Return the RFC 2369 / RFC 8058 headers every marketing mail carries.

    Only the https one-click link: nothing reads a mailbox, so no mailto address is advertised.
    """
    return {
        "List-Unsubscribe": f"<{contact_url(contact, Purpose.UNSUBSCRIBE)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def build_message(delivery: Delivery) -> AnymailMessage:
    """Return the email for a delivery, rendered in the contact's language."""
    with translation.override(delivery.contact.locale):
        rendered = render_message(delivery.template, message_context(delivery), delivery.contact.locale)
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.contact.email],
        headers=unsubscribe_headers(delivery.contact) if delivery.is_marketing else {},
    )
    message.attach_alternative(rendered.html, "text/html")
    message.metadata = {"delivery_id": str(delivery.id), "kind": delivery.kind}
    message.tags = [delivery.kind]
    if not delivery.is_marketing:
        message.track_clicks = False
    return message


def _may_send(delivery: Delivery, suppressed_hashes: set[str] | None = None) -> str:
    """Return why the delivery must not go out now, or '' when it may (consent checked at send time).

    `suppressed_hashes` is the suppression list for a batch; without it the list is asked.
    """
    contact = delivery.contact
    if contact.suppressed_at is not None:
        return "suppressed"
    hashed = address_hash(contact.email)
    if hashed in suppressed_hashes if suppressed_hashes is not None else _suppressed({hashed}):
        return "suppressed address"
    if delivery.is_marketing and not contact.may_receive_marketing():
        return f"no consent: {contact.status}" + (", paused" if contact.is_paused() else "")
    if delivery.kind == Delivery.Kind.CONFIRMATION and contact.status != Contact.Status.PENDING:
        return "nothing to confirm"
    if delivery.kind == Delivery.Kind.REMINDER:
        return _reminder_refusal(delivery)
    return ""


def _reminder_refusal(delivery: Delivery) -> str:
    """Return why a service reminder must not go out: declined, or its product date moved or ended."""
    if not delivery.contact.service_reminders:
        return "service reminders declined"
    context = delivery.context
    product = Product.objects.filter(pk=context.get("product_id"), contact_id=delivery.contact_id).first()
    date_field = "ends_on" if context.get("event") == "end" else "renews_on"
    if product is None or str(getattr(product, date_field)) != context.get("event_date"):
        return "reminder out of date: the product or its date changed"
    if product.has_ended(timezone.localdate()):
        return "reminder out of date: the product has ended"
    return ""


def delivery_send(*, delivery_id: UUID | str) -> Delivery | None:
    """Send one queued delivery. Return it, or None when another worker had it already.

    Raise TransientSendError (after queueing it again) when the ESP asks to try later.
    """
    now = timezone.now()
    claimed = Delivery.objects.filter(id=delivery_id, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("contact").get(id=delivery_id)
    refusal = _may_send(delivery)
    if refusal:
        _finish(delivery, Delivery.Status.CANCELLED, error=refusal)
        return delivery
    outcome = _send_one(delivery)
    if outcome == Delivery.Status.QUEUED:
        raise TransientSendError(delivery.error)
    return delivery


def _send_one(delivery: Delivery) -> str:
    """Send one delivery as its own message and record the outcome. Return the new status."""
    message = build_message(delivery)
    acquire_send_slots(1)
    try:
        message.send()
    except AnymailRecipientsRefused as exc:
        _finish(delivery, Delivery.Status.FAILED, error=f"recipient refused: {_describe(exc)}")
        return Delivery.Status.FAILED
    except AnymailAPIError as exc:
        if exc.status_code in TRANSIENT_STATUSES or exc.status_code is None:
            _finish(delivery, Delivery.Status.QUEUED, error=f"transient: {exc.status_code}: {_describe(exc)}")
            return Delivery.Status.QUEUED
        _finish(delivery, Delivery.Status.FAILED, error=f"permanent: {exc.status_code}: {_describe(exc)}")
        return Delivery.Status.FAILED
    except OSError as exc:  # SMTP and connection errors
        _finish(delivery, Delivery.Status.QUEUED, error=f"transient: {exc}")
        return Delivery.Status.QUEUED
    status = getattr(message, "anymail_status", None)
    esp_id = status.message_id if status is not None else None
    _finish(delivery, Delivery.Status.SENT, esp_message_id="" if esp_id is None else str(esp_id), esp_name=_esp_name())
    logger.info(
        "delivery sent",
        extra={"delivery_id": str(delivery.id), "contact_id": str(delivery.contact_id), "kind": delivery.kind},
    )
    return Delivery.Status.SENT


@dataclass
class BatchResult:
    """What became of each delivery of a batch, by id."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)

    def add(self, delivery: Delivery, status: str) -> None:
        buckets: dict[str, list[str]] = {
            Delivery.Status.SENT: self.sent,
            Delivery.Status.FAILED: self.failed,
            Delivery.Status.CANCELLED: self.cancelled,
            Delivery.Status.QUEUED: self.requeued,
        }
        buckets[status].append(str(delivery.id))


# The per-recipient values of a batch message; the rest of the content is the same for the group.
MERGE_FIELDS = ("first_name", "preferences_url", "unsubscribe_url")


def deliveries_send_batch(*, delivery_ids: Sequence[UUID | str]) -> BatchResult:
    """Send the queued deliveries among `delivery_ids` and return what became of each.

    All are claimed at once by one conditional update (rows another worker has are skipped).
    Consent and the suppression list are checked for each. Where the ESP supports batch sending
    (ESP_BATCH_SENDING), recipients whose rendered mail is the same apart from their name and links
    go out in one ESP call per chunk, with merge_data, merge_metadata and merge_headers (their own
    List-Unsubscribe); elsewhere one message per recipient. Each recipient's result is recorded: one
    refused recipient does not fail the others. Raise TransientSendError at the end when some were
    queued again for a retry (the retry claims only those).
    """
    token = uuid.uuid4()
    now = timezone.now()
    result = BatchResult()
    claimed = Delivery.objects.filter(id__in=list(delivery_ids), status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return result
    deliveries = list(
        Delivery.objects.select_related("contact").prefetch_related("contact__topics").filter(claim_token=token)
    )
    suppressed = _suppressed({address_hash(delivery.contact.email) for delivery in deliveries})
    ready = []
    with transaction.atomic():
        for delivery in deliveries:
            refusal = _may_send(delivery, suppressed)
            if refusal:
                _finish(delivery, Delivery.Status.CANCELLED, error=refusal)
                result.add(delivery, Delivery.Status.CANCELLED)
            else:
                ready.append(delivery)
    batch = settings.ESP_BATCH_SENDING.get(_esp_name())
    if batch:
        limit = min(int(batch["limit"]), max_chunk() or int(batch["limit"]))
        for (_kind, subject, text, html), group in _group_for_batch(ready, batch, result).items():
            for chunk in _chunks(group, limit):
                _send_chunk(chunk, RenderedMessage(subject=subject, text=text, html=html), result)
    else:
        for delivery in ready:
            result.add(delivery, _send_one(delivery))
    logger.info(
        "batch sent",
        extra={"sent": len(result.sent), "failed": len(result.failed), "requeued": len(result.requeued)},
    )
    if result.requeued:
        raise TransientSendError(f"{len(result.requeued)} queued again for a retry")
    return result


def deliveries_fail(*, delivery_ids: Iterable[UUID | str], error: str) -> int:
    """Mark the deliveries still queued as failed for good (retries used up). Return how many.

    A row left `sending` may have reached the ESP; it stays for the silence guard, never resent.
    """
    return Delivery.objects.filter(id__in=list(delivery_ids), status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.FAILED, error=error[:2000], updated_at=timezone.now()
    )


def _suppressed(hashes: set[str]) -> set[str]:
    return set(SuppressionEntry.objects.filter(address_hash__in=hashes).values_list("address_hash", flat=True))


@dataclass
class _BatchItem:
    delivery: Delivery
    merge_data: dict[str, str]


def _group_for_batch(
    deliveries: list[Delivery], batch: dict[str, Any], result: BatchResult
) -> dict[tuple, list[_BatchItem]]:
    """Render each delivery with ESP merge fields for its own values; group equal renderings.

    A delivery whose mail cannot be rendered fails alone, with the reason.
    """
    groups: dict[tuple, list[_BatchItem]] = defaultdict(list)
    renderings: dict[str, RenderedMessage] = {}
    for delivery in deliveries:
        try:
            rendered, merge_data = _render_for_batch(delivery, batch, renderings)
        except Exception as exc:  # a broken template must not strand the rest of the batch
            logger.exception("delivery could not be rendered", extra={"delivery_id": str(delivery.id)})
            _finish(delivery, Delivery.Status.FAILED, error=f"render error: {exc!r}")
            result.add(delivery, Delivery.Status.FAILED)
            continue
        key = (delivery.kind, rendered.subject, rendered.text, rendered.html)
        groups[key].append(_BatchItem(delivery=delivery, merge_data=merge_data))
    return groups


def _render_for_batch(
    delivery: Delivery, batch: dict[str, Any], renderings: dict[str, RenderedMessage] | None = None
) -> tuple[RenderedMessage, dict[str, str]]:
    """Return the delivery rendered with merge fields, and the values the ESP puts in their place.

    The HTML part gets its own, escaped, copy of each value: the ESP substitutes it verbatim.
    `renderings` remembers what equal contexts rendered to, so a group is rendered once.
    """
    placeholder: str = batch["placeholder"]
    key_format: str = batch.get("key", "{name}")
    context = message_context(delivery)
    text_context, html_context = dict(context), dict(context)
    merge_data: dict[str, str] = {}
    for name in MERGE_FIELDS:
        value = str(context.get(name) or "")
        if not value:  # templates test for emptiness; an empty value stays in the content
            continue
        text_context[name] = placeholder.format(name=name)
        html_context[name] = placeholder.format(name=f"{name}_html")
        merge_data[key_format.format(name=name)] = value
        merge_data[key_format.format(name=f"{name}_html")] = str(escape(value))
    locale = delivery.contact.locale
    memo_key = json.dumps([delivery.template, locale, text_context, html_context], sort_keys=True, default=str)
    if renderings is not None and memo_key in renderings:
        return renderings[memo_key], merge_data
    with translation.override(locale):
        as_text = render_message(delivery.template, text_context, locale)
        as_html = render_message(delivery.template, html_context, locale)
    rendered = RenderedMessage(subject=as_text.subject, text=as_text.text, html=as_html.html)
    if renderings is not None:
        renderings[memo_key] = rendered
    return rendered, merge_data


def _chunks(items: list[_BatchItem], size: int) -> Iterable[list[_BatchItem]]:
    """Yield chunks of at most `size` in which each address appears once (merge data is per address)."""
    pending = list(items)
    while pending:
        chunk: list[_BatchItem] = []
        seen: set[str] = set()
        rest: list[_BatchItem] = []
        for item in pending:
            email = item.delivery.contact.email
            if len(chunk) < size and email not in seen:
                chunk.append(item)
                seen.add(email)
            else:
                rest.append(item)
        yield chunk
        pending = rest


def _send_chunk(chunk: list[_BatchItem], rendered: RenderedMessage, result: BatchResult) -> None:
    """Send one batch message to the chunk's recipients and record each recipient's result."""
    first = chunk[0].delivery
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[item.delivery.contact.email for item in chunk],
    )
    message.attach_alternative(rendered.html, "text/html")
    message.merge_data = {item.delivery.contact.email: item.merge_data for item in chunk}
    message.metadata = {"kind": first.kind}
    message.merge_metadata = {
        item.delivery.contact.email: {"delivery_id": str(item.delivery.id), "kind": item.delivery.kind}
        for item in chunk
    }
    if first.is_marketing:
        message.merge_headers = {
            item.delivery.contact.email: unsubscribe_headers(item.delivery.contact) for item in chunk
        }
    else:
        message.track_clicks = False
    message.tags = [first.kind]
    acquire_send_slots(len(chunk))
    try:
        message.send()
    except AnymailRecipientsRefused:
        pass  # every recipient refused: anymail_status says so, recorded below
    except AnymailAPIError as exc:
        transient = exc.status_code in TRANSIENT_STATUSES or exc.status_code is None
        status = Delivery.Status.QUEUED if transient else Delivery.Status.FAILED
        label = "transient" if transient else "permanent"
        with transaction.atomic():
            for item in chunk:
                _finish(item.delivery, status, error=f"{label}: {exc.status_code}: {_describe(exc)}")
                result.add(item.delivery, status)
        return
    except OSError as exc:
        for item in chunk:
            _finish(item.delivery, Delivery.Status.QUEUED, error=f"transient: {exc}")
            result.add(item.delivery, Delivery.Status.QUEUED)
        return
    recipients = message.anymail_status.recipients
    esp_name = _esp_name()
    with transaction.atomic():  # one commit for the chunk's results
        _record_recipients(chunk, recipients, esp_name, result)


def _record_recipients(chunk: list[_BatchItem], recipients: dict[str, Any], esp_name: str, result: BatchResult) -> None:
    for item in chunk:
        recipient = recipients.get(item.delivery.contact.email)
        if recipient is None or recipient.status in REFUSED_STATUSES:
            why = recipient.status if recipient is not None else "no status"
            _finish(item.delivery, Delivery.Status.FAILED, error=f"recipient refused: {why}")
            result.add(item.delivery, Delivery.Status.FAILED)
            continue
        message_id = "" if recipient.message_id is None else str(recipient.message_id)
        _finish(item.delivery, Delivery.Status.SENT, esp_message_id=message_id, esp_name=esp_name)
        result.add(item.delivery, Delivery.Status.SENT)


def delivery_fail(*, delivery_id: UUID | str, error: str) -> None:
    """Mark a delivery failed for good (retries exhausted)."""
    Delivery.objects.filter(id=delivery_id).exclude(status=Delivery.Status.SENT).update(
        status=Delivery.Status.FAILED, error=error[:2000], updated_at=timezone.now()
    )


def _finish(delivery: Delivery, status: str, *, error: str = "", esp_message_id: str = "", esp_name: str = "") -> None:
    delivery.status = status
    delivery.error = error[:2000]
    fields = ["status", "error", "updated_at"]
    if status == Delivery.Status.SENT:
        delivery.sent_at = timezone.now()
        delivery.esp_message_id = esp_message_id
        delivery.esp_name = esp_name
        fields += ["sent_at", "esp_message_id", "esp_name"]
    delivery.save(update_fields=fields)
    if status == Delivery.Status.SENT:
        signals.delivery_sent.send(sender=Delivery, delivery=delivery)
    else:
        logger.warning(
            "delivery %s",
            status,
            extra={"delivery_id": str(delivery.id), "contact_id": str(delivery.contact_id), "error": delivery.error},
        )


def _describe(exc: Exception) -> str:
    """Return an error's text; anymail's own __str__ needs the HTTP response, which a fault may lack."""
    try:
        return str(exc)
    except Exception:
        return " ".join(str(arg) for arg in exc.args)


def _esp_name() -> str:
    """Return the configured ESP's name in lower case ("mailgun", "amazon ses", "test"); the key of ESP_BATCH_SENDING."""
    name = getattr(import_string(settings.EMAIL_BACKEND), "esp_name", None)
    return str(name).lower() if name else settings.EMAIL_BACKEND.rsplit(".", 2)[-2]


# Kinds a person waits for go to the latency-sensitive queue, the rest to bulk.
WELCOME_QUEUE_KINDS = frozenset({Delivery.Kind.CONFIRMATION, Delivery.Kind.ALREADY_SUBSCRIBED, Delivery.Kind.WELCOME})


def delivery_retry(*, delivery_id: UUID | str, enqueue: Callable[[Delivery], None]) -> Delivery | None:
    """Queue a failed delivery again and enqueue it after commit. Return it, or None when it was not failed."""
    reset = Delivery.objects.filter(id=delivery_id, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.QUEUED, error="", updated_at=timezone.now()
    )
    if not reset:
        return None
    delivery = Delivery.objects.get(id=delivery_id)
    logger.info("delivery retried", extra={"delivery_id": str(delivery.id), "contact_id": str(delivery.contact_id)})
    transaction.on_commit(lambda: enqueue(delivery))
    return delivery
