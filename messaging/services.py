"""The delivery pipe: create deliveries, and send a batch of them. It knows no kinds.

A delivery says who, which template, whether it is marketing and which queue; the producer adds
what only it knows through a `prepare` callback per batch (extra template context, or a reason a
mail must not go out). Every send is claimed by a conditional update, so it happens once.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from anymail.message import AnymailMessage
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from messaging import esp
from messaging.bulk_sql import Unindexed, values_cte  # also registers the `__any` lookup
from messaging.esp import mime
from messaging.models import Delivery
from messaging.ratelimit import acquire_send_slots, max_chunk
from messaging.rendering import RenderedGroup, esp_merge_values, group_key, render_group_cached, split_context
from preferences.models import Contact
from preferences.policy import Policies, effective_frequency, load_policies
from preferences.selectors import contacts_attach_topics
from preferences.suppression import is_listed
from preferences.suppression import suppressed_hashes as listed_hashes
from preferences.tokens import Purpose, contact_url, token_timestamp

logger = logging.getLogger(__name__)


class TransientSendError(Exception):
    """The ESP could not take some messages now; their Deliveries are queued again for a retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
    marketing: bool,
    queue: str,
    context: dict[str, Any] | None = None,
    send_key: str = "",
    enqueue: Callable[[Delivery], None] | None = None,
) -> Delivery | None:
    """Create a queued Delivery, or return None when one with this key exists already.

    `enqueue` runs after the transaction commits, so a worker never looks for a row it cannot see.
    """
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                contact=contact,
                kind=kind,
                template=template,
                idempotency_key=idempotency_key,
                marketing=marketing,
                queue=queue,
                context=context or {},
                send_key=send_key,
            )
    except IntegrityError:
        return None
    if enqueue is not None:
        transaction.on_commit(lambda: enqueue(delivery))
    return delivery


def deliveries_cancel(*, contact: Contact) -> int:
    """Cancel the contact's queued marketing deliveries. Return how many were cancelled."""
    return deliveries_cancel_many(contact_ids=[contact.pk])


def deliveries_cancel_many(*, contact_ids: list[Any]) -> int:
    """Cancel the contacts' queued marketing deliveries in one statement. Return how many were cancelled."""
    return Delivery.objects.filter(contact_id__in=contact_ids, marketing=True, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.CANCELLED,
        error="cancelled: consent withdrawn",
        error_class=Delivery.ErrorClass.CANCELLED,
        updated_at=timezone.now(),
    )


def person_context(
    contact: Contact,
    *,
    marketing: bool,
    policies: Policies | None = None,
    timestamp: str | None = None,
    frequency_labels: dict[tuple[str, str, str], str] | None = None,
) -> dict[str, Any]:
    """Return what every message may say about its person: name, choices and links.

    `timestamp` (preferences.tokens.token_timestamp) signs a whole batch's links at one time;
    `frequency_labels` keeps the label of each (frequency, potential, language) for a whole batch.
    The label is in the person's own language: the batch is rendered in each person's language, but
    the label is text by the time it is rendered.
    """
    memo_key = (contact.frequency, contact.potential, contact.locale)
    frequency_label = frequency_labels.get(memo_key) if frequency_labels is not None else None
    if frequency_label is None:
        with translation.override(contact.locale):
            frequency_label = effective_frequency(contact, policies).label
        if frequency_labels is not None:
            frequency_labels[memo_key] = frequency_label
    return {
        "first_name": contact.first_name,
        "topics": [topic.name(contact.locale) for topic in contact.topic_list()],
        "frequency_label": frequency_label,
        "site_url": settings.SITE_URL,
        "preferences_url": contact_url(contact, Purpose.PREFERENCES, timestamp=timestamp),
        "unsubscribe_url": contact_url(contact, Purpose.UNSUBSCRIBE, timestamp=timestamp),
        "is_marketing": marketing,
    }


def unsubscribe_headers(contact: Contact, unsubscribe_url: str | None = None) -> dict[str, str]:
    """Return the RFC 2369 / RFC 8058 headers every marketing mail carries (from the mail's own link, if given).

    Only the https one-click link: nothing reads a mailbox, so no mailto address is advertised.
    """
    if unsubscribe_url is None:
        unsubscribe_url = contact_url(contact, Purpose.UNSUBSCRIBE)
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def refusal(contact: Contact, *, marketing: bool, suppressed_hashes: set[str], now: datetime) -> str:
    """Return why a mail to `contact` must not go out now, or '' when it may (consent at send time)."""
    if contact.suppressed_at is not None:
        return "suppressed"
    if is_listed(contact.email, suppressed_hashes):
        return "suppressed address"
    if marketing and not contact.may_receive_marketing(now):
        return f"no consent: {contact.status}" + (", paused" if contact.is_paused(now) else "")
    return ""


# ------------------------------------------------------------------------------------------- the pipe


@dataclass
class Prepared:
    """What the producer adds to a batch: template context and refusals, by delivery id."""

    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


Prepare = Callable[[list[Delivery]], Prepared]
OnRecorded = Callable[[list[Delivery]], None]


@dataclass
class BatchResult:
    """What became of each delivery of a batch, by id."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    retry_after: float | None = None

    def add(self, delivery: Delivery) -> None:
        buckets: dict[str, list[str]] = {
            Delivery.Status.SENT: self.sent,
            Delivery.Status.FAILED: self.failed,
            Delivery.Status.CANCELLED: self.cancelled,
            Delivery.Status.QUEUED: self.requeued,
        }
        buckets[delivery.status].append(str(delivery.id))


@dataclass
class _Mail:
    delivery: Delivery
    values: dict[str, str]


class _Recorder:
    """Collects outcomes and writes them in one statement per flush, with the producer's own writes."""

    def __init__(self, result: BatchResult, on_recorded: OnRecorded | None) -> None:
        self.result = result
        self.on_recorded = on_recorded
        self.pending: list[Delivery] = []
        self.esp_name = esp_name()

    def finish(self, delivery: Delivery, outcome: esp.SendOutcome | None = None, *, cancelled: str = "") -> None:
        if cancelled:
            delivery.status, delivery.error = Delivery.Status.CANCELLED, cancelled
            delivery.error_class = Delivery.ErrorClass.CANCELLED
        elif outcome is None or outcome.status == "failed":
            delivery.status = Delivery.Status.FAILED
            error = outcome.error if outcome is not None else "failed"
            delivery.error_class = outcome.error_class if outcome is not None else Delivery.ErrorClass.PERMANENT
            # A refusal or a broken template says what it is; anything else the ESP refused for good says so.
            permanent = delivery.error_class == Delivery.ErrorClass.PERMANENT
            delivery.error = f"permanent: {error}" if permanent else error
        elif outcome.status == "transient":
            delivery.status, delivery.error = Delivery.Status.QUEUED, f"transient: {outcome.error}"
            delivery.error_class = Delivery.ErrorClass.TRANSIENT
            if outcome.retry_after is not None:
                self.result.retry_after = max(self.result.retry_after or 0.0, outcome.retry_after)
        else:
            delivery.status, delivery.error = Delivery.Status.SENT, ""
            delivery.error_class = Delivery.ErrorClass.NONE
            delivery.esp_message_id, delivery.esp_name = outcome.esp_message_id, self.esp_name
        delivery.error = delivery.error[:2000]
        self.pending.append(delivery)

    def flush(self) -> None:
        """Write the pending outcomes in one UPDATE and let the producer record its part, in one transaction."""
        if not self.pending:
            return
        now = timezone.now()
        rows = []
        for delivery in self.pending:
            sent = delivery.status == Delivery.Status.SENT
            if sent:
                delivery.sent_at = now
            rows.append(
                (delivery.id, delivery.status, delivery.error, delivery.error_class, delivery.esp_message_id,
                 delivery.esp_name, delivery.sent_at if sent else None)
            )  # fmt: skip
        columns = ["id", "status", "error", "error_class", "esp_message_id", "esp_name", "sent_at"]
        cte, params = values_cte(Delivery, columns, rows)
        table = connection.ops.quote_name(Delivery._meta.db_table)
        sql = (
            f"{cte} UPDATE {table} SET status = v.status, error = v.error, error_class = v.error_class, "
            "esp_message_id = v.esp_message_id, "
            f"esp_name = v.esp_name, sent_at = COALESCE(v.sent_at, {table}.sent_at), updated_at = %s "
            f"FROM v WHERE {table}.id = v.id"
        )
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    sql, [*params, Delivery._meta.get_field("updated_at").get_db_prep_value(now, connection)]
                )
            if self.on_recorded is not None:
                self.on_recorded(self.pending)
        # Sent mail is logged once per batch, with counts (deliveries_send); what did not go, per delivery.
        for delivery in self.pending:
            self.result.add(delivery)
            if delivery.status != Delivery.Status.SENT:
                logger.warning(
                    "delivery %s",
                    delivery.status,
                    extra={
                        "delivery_id": str(delivery.id),
                        "contact_id": str(delivery.contact_id),
                        "error": delivery.error,
                    },
                )
        self.pending = []


def deliveries_send(
    *,
    delivery_ids: Sequence[UUID | str],
    prepare: Prepare | None = None,
    on_recorded: OnRecorded | None = None,
) -> BatchResult:
    """Send the queued deliveries among `delivery_ids` and return what became of each.

    All are claimed at once by one conditional update (rows another worker has are skipped) and
    loaded with their contacts in one query. Consent (for marketing) and the suppression list are
    checked per recipient; `prepare` then adds the producer's context or refuses some. Each group
    of equal mails is rendered once, with each person's values merged in. Mail goes to the ESP in
    chunks (one merged call per chunk where the ESP takes them, ESP_BATCH_SENDING; else one message
    per recipient on one connection), the rate limit taken per chunk. Results are written as they
    come, a few calls or messages at a time: at most ESP_SEND_CONCURRENCY merged calls or single messages
    are handed over unrecorded, one UPDATE per write, in one transaction with `on_recorded` (the
    producer's own writes). One
    refused recipient fails alone. Raise TransientSendError at the end when some were queued again.
    """
    token = uuid.uuid4()
    now = timezone.now()
    result = BatchResult()
    ids = list(delivery_ids)
    claimable = Delivery.objects.filter(id__any=ids).alias(current=Unindexed("status"))
    claimed = claimable.filter(current=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING,
        claim_token=token,
        claimed_at=now,
        attempts=F("attempts") + 1,
        updated_at=now,
        # Written at the claim, before the hand-off: an ESP event about a mail whose worker died before
        # recording it is still known to come from the ESP it was handed to (messaging.feedback).
        esp_name=esp_name(),
    )
    if not claimed:
        return result
    # By primary key (claim_token has no index: looked up alone it would scan the whole table), then in
    # the order the batch names them, whatever order the database returns them in.
    deliveries = list(Delivery.objects.select_related("contact").filter(id__any=ids, claim_token=token))
    position = {str(delivery_id): n for n, delivery_id in enumerate(ids)}
    deliveries.sort(key=lambda delivery: position.get(str(delivery.id), 0))
    contacts_attach_topics(delivery.contact for delivery in deliveries)
    recorder = _Recorder(result, on_recorded)
    suppressed = listed_hashes(delivery.contact.email for delivery in deliveries)
    ready = []
    for delivery in deliveries:
        why = refusal(delivery.contact, marketing=delivery.marketing, suppressed_hashes=suppressed, now=now)
        if why:
            recorder.finish(delivery, cancelled=why)
        else:
            ready.append(delivery)
    prepared = prepare(ready) if prepare is not None and ready else Prepared()
    mails = []
    for delivery in ready:
        why = prepared.refused.get(str(delivery.id), "")
        if why:
            recorder.finish(delivery, cancelled=why)
        else:
            mails.append(delivery)
    groups = _render_groups(mails, prepared, recorder)
    batch = settings.ESP_BATCH_SENDING.get(recorder.esp_name)
    singles = groups
    if batch:
        # A group of one goes as a message of its own: the same mail, without the merge machinery.
        singles = [(rendered, group) for rendered, group in groups if len(group) == 1]
        limit = min(int(batch["limit"]), max_chunk() or int(batch["limit"]))
        calls = [
            (chunk, _merged_message(chunk, rendered, batch))
            for rendered, group in groups
            if len(group) > 1
            for chunk in _chunks(group, limit)
        ]
        # Several calls at once on the lanes, recorded as they finish: no lane starts a call while its
        # last one waits for its record, so a killed worker leaves at most one call per lane unrecorded.
        stream = esp.send_merged_stream(
            [message for _, message in calls], before_call=lambda message: acquire_send_slots(len(message.to))
        )
        for finished in stream:
            for index, outcomes in finished:
                for mail in calls[index][0]:
                    recorder.finish(mail.delivery, outcomes.get(mail.delivery.contact.email))
            recorder.flush()
    if singles:
        build = _smtp_mail if mime.smtp_configured() else _esp_message
        messages = [(mail, build(mail, rendered)) for rendered, group in singles for mail in group]
        limit = max_chunk() or len(messages) or 1
        for start in range(0, len(messages), limit):
            part = messages[start : start + limit]
            acquire_send_slots(len(part))
            # Recorded as the lanes finish, a few at a time: no lane takes a mail while as many as there
            # are lanes wait for their record, so a killed worker leaves at most that many unrecorded.
            for done in esp.send_stream([message for _, message in part]):
                for index, outcome in done:
                    recorder.finish(part[index][0].delivery, outcome)
                recorder.flush()
    recorder.flush()
    logger.info(
        "batch sent",
        extra={
            "sent": len(result.sent),
            "failed": len(result.failed),
            "cancelled": len(result.cancelled),
            "requeued": len(result.requeued),
            "esp": recorder.esp_name,
        },
    )
    if result.requeued:
        raise TransientSendError(f"{len(result.requeued)} queued again for a retry", retry_after=result.retry_after)
    return result


def _render_groups(
    deliveries: list[Delivery], prepared: Prepared, recorder: _Recorder
) -> list[tuple[RenderedGroup, list[_Mail]]]:
    """Render each group of equal mails once. A group whose mail cannot be rendered fails, with the reason."""
    policies = load_policies()
    timestamp = token_timestamp()
    groups: dict[Hashable, tuple[str, str, dict[str, Any], list[_Mail]]] = {}
    memo: dict[int, tuple[Any, str]] = {}
    labels: dict[tuple[str, str, str], str] = {}
    for delivery in deliveries:
        contact = delivery.contact
        context = person_context(
            contact, marketing=delivery.marketing, policies=policies, timestamp=timestamp, frequency_labels=labels
        )
        context.update(delivery.context)
        context.update(prepared.contexts.get(str(delivery.id), {}))
        shared, values = split_context(context)
        key = group_key(delivery.template, contact.locale, shared, memo)
        if key not in groups:
            groups[key] = (delivery.template, contact.locale, shared, [])
        groups[key][3].append(_Mail(delivery=delivery, values=values))
    rendered_groups = []
    for key, (template, locale, shared, mails) in groups.items():
        try:
            rendered = render_group_cached(template, shared, locale, key)
        except Exception as exc:  # a broken template must not strand the rest of the batch
            logger.exception("mail could not be rendered", extra={"template": template})
            for mail in mails:
                recorder.finish(mail.delivery, esp.SendOutcome(status="failed", error=f"render error: {exc!r}"))
            continue
        rendered_groups.append((rendered, mails))
    return rendered_groups


def _message(mail: _Mail, rendered: Any) -> AnymailMessage:
    delivery = mail.delivery
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.contact.email],
        headers=unsubscribe_headers(delivery.contact, mail.values.get("unsubscribe_url")) if delivery.marketing else {},
    )
    message.attach_alternative(rendered.html, "text/html")
    message.metadata = {"delivery_id": str(delivery.id), "kind": delivery.kind}
    message.tags = [delivery.kind]
    if not delivery.marketing:
        message.track_clicks = False
    # Messages of one shape differ only in recipient, subject, bodies, header and metadata values
    # (messaging.esp.postmark builds one payload per shape).
    message.batch_shape = (delivery.kind, delivery.marketing)  # type: ignore[attr-defined]
    return message


def _esp_message(mail: _Mail, group: RenderedGroup) -> AnymailMessage:
    return _message(mail, group.merge(mail.values))


def _smtp_mail(mail: _Mail, group: RenderedGroup) -> mime.PersonalMail | AnymailMessage:
    """The person's SMTP message from the group's skeleton (built once per group), else Django's own."""
    delivery = mail.delivery
    skeleton = mime.skeleton_for(group, from_email=settings.DEFAULT_FROM_EMAIL, marketing=delivery.marketing)
    if skeleton is None:
        return _esp_message(mail, group)
    unsubscribe = (
        unsubscribe_headers(delivery.contact, mail.values.get("unsubscribe_url")) if delivery.marketing else {}
    )
    return mime.PersonalMail(
        skeleton=skeleton,
        values=mail.values,
        to=delivery.contact.email,
        from_email=settings.DEFAULT_FROM_EMAIL,
        list_unsubscribe=unsubscribe.get("List-Unsubscribe", ""),
        fallback=lambda: _esp_message(mail, group),
    )


def _chunks(mails: list[_Mail], size: int) -> Iterable[list[_Mail]]:
    """Yield chunks of at most `size` in which each address appears once (merge data is per address)."""
    pending = list(mails)
    while pending:
        chunk: list[_Mail] = []
        seen: set[str] = set()
        rest: list[_Mail] = []
        for mail in pending:
            email = mail.delivery.contact.email
            if len(chunk) < size and email not in seen:
                chunk.append(mail)
                seen.add(email)
            else:
                rest.append(mail)
        yield chunk
        pending = rest


def _merged_message(chunk: list[_Mail], group: RenderedGroup, batch: dict[str, Any]) -> AnymailMessage:
    """Return the one merged message (merge data, metadata and headers per recipient) for the chunk."""
    first = chunk[0].delivery
    rendered = group.for_esp(batch["placeholder"])
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[mail.delivery.contact.email for mail in chunk],
    )
    message.attach_alternative(rendered.html, "text/html")
    key_format = batch.get("key", "{name}")
    message.merge_data = {mail.delivery.contact.email: esp_merge_values(mail.values, key_format) for mail in chunk}
    message.metadata = {"kind": first.kind}
    message.merge_metadata = {
        mail.delivery.contact.email: {"delivery_id": str(mail.delivery.id), "kind": mail.delivery.kind}
        for mail in chunk
    }
    if first.marketing:
        message.merge_headers = {
            mail.delivery.contact.email: unsubscribe_headers(mail.delivery.contact, mail.values.get("unsubscribe_url"))
            for mail in chunk
        }
    else:
        message.track_clicks = False
    message.tags = [first.kind]
    return message


def deliveries_fail(
    *, delivery_ids: Iterable[UUID | str], error: str, error_class: str = Delivery.ErrorClass.RETRIES_EXHAUSTED
) -> int:
    """Mark the deliveries still queued as failed for good (by default: retries used up). Return how many.

    A row left `sending` may have reached the ESP; it stays for the silence guard, never resent.
    """
    return Delivery.objects.filter(id__any=list(delivery_ids), status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.FAILED, error=error[:2000], error_class=error_class, updated_at=timezone.now()
    )


def esp_name() -> str:
    """Return the configured ESP's name in lower case ("mailgun", "amazon ses", "test"); the key of ESP_BATCH_SENDING."""
    name = getattr(import_string(settings.EMAIL_BACKEND), "esp_name", None)
    return str(name).lower() if name else settings.EMAIL_BACKEND.rsplit(".", 2)[-2]


def delivery_retry(*, delivery_id: UUID | str, enqueue: Callable[[Delivery], None]) -> Delivery | None:
    """Queue a failed delivery again and enqueue it after commit. Return it, or None when it was not failed."""
    reset = Delivery.objects.filter(id=delivery_id, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.QUEUED, error="", error_class=Delivery.ErrorClass.NONE, updated_at=timezone.now()
    )
    if not reset:
        return None
    delivery = Delivery.objects.get(id=delivery_id)
    logger.info("delivery retried", extra={"delivery_id": str(delivery.id), "contact_id": str(delivery.contact_id)})
    transaction.on_commit(lambda: enqueue(delivery))
    return delivery
