"""Create and send deliveries. Every send is claimed by a conditional update, so it happens once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation

from messaging import signals
from messaging.models import Delivery
from messaging.rendering import render_message
from preferences.frequencies import get_frequency
from preferences.models import Contact
from preferences.tokens import Purpose, contact_url, make_token

logger = logging.getLogger(__name__)

# HTTP statuses from an ESP that are worth retrying.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class TransientSendError(Exception):
    """The ESP could not take the message now; the Delivery is queued again for a retry."""


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
    frequency = get_frequency(contact.frequency)
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
    return context


def unsubscribe_headers(contact: Contact) -> dict[str, str]:
    """Return the RFC 2369 / RFC 8058 headers every marketing mail carries."""
    token = make_token(contact, Purpose.UNSUBSCRIBE)
    return {
        "List-Unsubscribe": (
            f"<{contact_url(contact, Purpose.UNSUBSCRIBE)}>, "
            f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe%20{token}>"
        ),
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


def _may_send(delivery: Delivery) -> str:
    """Return why the delivery must not go out now, or '' when it may (consent checked at send time)."""
    contact = delivery.contact
    if contact.suppressed_at is not None:
        return "suppressed"
    if delivery.is_marketing and not contact.may_receive_marketing():
        return f"no consent: {contact.status}" + (", paused" if contact.is_paused() else "")
    if delivery.kind == Delivery.Kind.CONFIRMATION and contact.status != Contact.Status.PENDING:
        return "nothing to confirm"
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
    message = build_message(delivery)
    try:
        message.send()
    except AnymailRecipientsRefused as exc:
        _finish(delivery, Delivery.Status.FAILED, error=f"recipient refused: {_describe(exc)}")
        return delivery
    except AnymailAPIError as exc:
        if exc.status_code in TRANSIENT_STATUSES or exc.status_code is None:
            _finish(delivery, Delivery.Status.QUEUED, error=f"transient: {exc.status_code}: {_describe(exc)}")
            raise TransientSendError(_describe(exc)) from exc
        _finish(delivery, Delivery.Status.FAILED, error=f"permanent: {exc.status_code}: {_describe(exc)}")
        return delivery
    except OSError as exc:  # SMTP and connection errors
        _finish(delivery, Delivery.Status.QUEUED, error=f"transient: {exc}")
        raise TransientSendError(str(exc)) from exc
    status = getattr(message, "anymail_status", None)
    esp_id = status.message_id if status is not None else None
    _finish(delivery, Delivery.Status.SENT, esp_message_id="" if esp_id is None else str(esp_id), esp_name=_esp_name())
    logger.info(
        "delivery sent",
        extra={"delivery_id": str(delivery.id), "contact_id": str(delivery.contact_id), "kind": delivery.kind},
    )
    return delivery


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


def _describe(exc: Exception) -> str:
    """Return an error's text; anymail's own __str__ needs the HTTP response, which a fault may lack."""
    try:
        return str(exc)
    except Exception:
        return " ".join(str(arg) for arg in exc.args)


def _esp_name() -> str:
    backend = settings.EMAIL_BACKEND
    return backend.split(".")[-2] if backend.startswith("anymail.") else backend.rsplit(".", 2)[-2]
