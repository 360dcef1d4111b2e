"""The hand-off to the ESP: many ready messages in, one outcome per message (or recipient) out.

This is the only place that calls the email backend. Errors are classified here: 408/425/429/5xx
and connection errors are transient (try again later), everything else the ESP refuses is failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.core.mail import EmailMessage, get_connection

logger = logging.getLogger(__name__)

# HTTP statuses from an ESP that are worth retrying.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# What an ESP may answer per recipient that means the mail did not go out.
REFUSED_STATUSES = frozenset({"rejected", "invalid", "failed", "unknown"})


@dataclass(frozen=True)
class SendOutcome:
    """What became of one message (or one recipient of a merged message)."""

    status: Literal["sent", "transient", "failed"]
    esp_message_id: str = ""
    error: str = ""
    retry_after: float | None = None


def send_messages(messages: list[EmailMessage]) -> list[SendOutcome]:
    """Send each message on one connection; return their outcomes in the same order."""
    if not messages:
        return []
    connection = get_connection()
    outcomes = []
    try:
        connection.open()
    except OSError as exc:
        return [SendOutcome(status="transient", error=f"transient: {exc}")] * len(messages)
    try:
        for message in messages:
            message.connection = connection
            outcomes.append(_send_one(message))
    finally:
        try:
            connection.close()
        except OSError:
            logger.warning("closing the ESP connection failed", exc_info=True)
    return outcomes


def send_merged(message: AnymailMessage) -> dict[str, SendOutcome]:
    """Send one message with merge_data to all its recipients; return each recipient's outcome by address."""
    try:
        message.send()
    except AnymailRecipientsRefused:
        pass  # every recipient refused: anymail_status says so
    except (AnymailAPIError, OSError) as exc:
        outcome = _error_outcome(exc)
        return dict.fromkeys(message.to, outcome)
    recipients = message.anymail_status.recipients
    outcomes = {}
    for email in message.to:
        recipient = recipients.get(email)
        if recipient is None or recipient.status in REFUSED_STATUSES:
            why = recipient.status if recipient is not None else "no status"
            outcomes[email] = SendOutcome(status="failed", error=f"recipient refused: {why}")
        else:
            message_id = "" if recipient.message_id is None else str(recipient.message_id)
            outcomes[email] = SendOutcome(status="sent", esp_message_id=message_id)
    return outcomes


def _send_one(message: EmailMessage) -> SendOutcome:
    try:
        message.send()
    except AnymailRecipientsRefused as exc:
        return SendOutcome(status="failed", error=f"recipient refused: {_describe(exc)}")
    except (AnymailAPIError, OSError) as exc:
        return _error_outcome(exc)
    status = getattr(message, "anymail_status", None)
    message_id = status.message_id if status is not None else None
    if status is not None and status.recipients:
        recipient = next(iter(status.recipients.values()))
        if recipient.status in REFUSED_STATUSES:
            return SendOutcome(status="failed", error=f"recipient refused: {recipient.status}")
        message_id = recipient.message_id
    return SendOutcome(status="sent", esp_message_id="" if message_id is None else str(message_id))


def _error_outcome(exc: Exception) -> SendOutcome:
    if isinstance(exc, AnymailAPIError):
        if exc.status_code in TRANSIENT_STATUSES or exc.status_code is None:
            return SendOutcome(
                status="transient",
                error=f"transient: {exc.status_code}: {_describe(exc)}",
                retry_after=_retry_after(exc),
            )
        return SendOutcome(status="failed", error=f"permanent: {exc.status_code}: {_describe(exc)}")
    return SendOutcome(status="transient", error=f"transient: {exc}")


def _retry_after(exc: AnymailAPIError) -> float | None:
    response: Any = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    """Return an error's text; anymail's own __str__ needs the HTTP response, which a fault may lack."""
    try:
        return str(exc)
    except Exception:
        return " ".join(str(arg) for arg in exc.args)
