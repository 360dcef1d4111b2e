"""What became of one message handed to the ESP, and how an ESP error is classified."""

from __future__ import annotations

import logging
import math
import re
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from anymail.message import AnymailMessage, AnymailStatus
from anymail.utils import parse_address_list
from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)


Status = Literal["sent", "transient", "failed"]


# HTTP statuses worth trying again later: timeouts, too early, too many requests, and every 5xx.
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})


# What anymail reports per recipient when the ESP did not take the mail for that recipient.
REFUSED_RECIPIENT_STATUSES = frozenset({"rejected", "invalid", "failed"})


# "unknown": the ESP took the call without saying which recipients it accepted (SparkPost on a batch
# where some were refused). Counted as sent, never sent again: the ESP's webhook tells the rest.
UNKNOWN_STATUS_NOTE = "the ESP took the call but gave no status for this recipient"


@dataclass(frozen=True)
class SendOutcome:
    """What became of one message (or one recipient of a merged message)."""

    status: Status
    esp_message_id: str = ""
    error: str = ""
    # Seconds the ESP asked to wait before trying again (its Retry-After), when it said so.
    retry_after: float | None = None

    @property
    def error_class(self) -> str:
        """Return the Delivery.ErrorClass of a failed or transient outcome: what it is, for code to branch on.

        This module writes the texts the classes are read from ("recipient refused: …", "render error: …").
        """
        if self.status == "sent":
            return ""
        if self.status == "transient":
            return "transient"
        if self.error.startswith("recipient refused"):
            return "recipient_refused"
        if self.error.startswith("render error"):
            return "render_error"
        return "permanent"

    @property
    def is_connection_error(self) -> bool:
        return self.status == "transient" and self.error.startswith("connection")


def outcome_for_error(exc: BaseException) -> SendOutcome:
    """Classify an error raised while handing a message to the ESP."""
    if isinstance(exc, AnymailRecipientsRefused):
        return SendOutcome("failed", error=f"recipient refused: {_describe(exc)}")
    if isinstance(exc, AnymailAPIError):
        status = exc.status_code
        if status is None:  # no answer at all: refused connection, timeout, reset
            return SendOutcome("transient", error=f"connection: {_describe(exc)}")
        if status in TRANSIENT_HTTP_STATUSES or 500 <= status <= 599:
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None) or {}
            return SendOutcome(
                "transient",
                error=f"{status}: {_describe(exc)}",
                retry_after=retry_after_seconds(headers.get("Retry-After")),
            )
        return SendOutcome("failed", error=f"{status}: {_describe(exc)}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        code, text = answers[0] if answers else (0, b"")
        detail = f"{code} {_text(text)}".strip()
        if answers and all(400 <= answer_code < 500 for answer_code, _ in answers):
            return SendOutcome("transient", error=f"recipient deferred: {detail}")
        return SendOutcome("failed", error=f"recipient refused: {detail}")
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = f"smtp {exc.smtp_code}: {_text(exc.smtp_error)}"
        return SendOutcome("transient" if 400 <= exc.smtp_code < 500 else "failed", error=detail)
    if isinstance(exc, OSError):  # disconnects, timeouts, refused connections, TLS failures
        return SendOutcome("transient", error=f"connection: {type(exc).__name__}: {exc}")
    return SendOutcome("failed", error=f"{type(exc).__name__}: {_describe(exc)}")


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _send_built(backend: AnymailBaseBackend, payload: Any, message: EmailMessage) -> SendOutcome:
    """Send a message whose anymail payload is built (pre_send has run) in a call of its own, as anymail does."""
    status: AnymailStatus = message.anymail_status  # type: ignore[attr-defined]
    try:
        response = backend.post_to_esp(payload, message)  # type: ignore[attr-defined]
        status.esp_response = response
        status.set_recipient_status(backend.parse_recipient_status(response, payload, message))
        backend.run_post_send(message)
        backend.raise_for_recipient_status(status, response, payload, message)
    except Exception as exc:
        return outcome_for_error(exc)
    return _outcome_for_sent(message)


def _outcome_for_sent(message: EmailMessage) -> SendOutcome:
    status = getattr(message, "anymail_status", None)
    if status is None or not status.recipients:  # not an anymail backend: SMTP, files, locmem
        message_id = next((v for k, v in message.extra_headers.items() if k.lower() == "message-id"), "")
        return SendOutcome("sent", esp_message_id=str(message_id))
    refused = sorted({r.status for r in status.recipients.values() if r.status in REFUSED_RECIPIENT_STATUSES})
    accepted = [r for r in status.recipients.values() if r.status not in REFUSED_RECIPIENT_STATUSES]
    if not accepted:
        return SendOutcome("failed", error=f"recipient refused: {', '.join(refused)}")
    ids = sorted({_message_id(r.message_id) for r in accepted} - {""})
    error = f"some recipients refused: {', '.join(refused)}" if refused else ""
    if not error and any(r.status == "unknown" for r in accepted):
        error = UNKNOWN_STATUS_NOTE
    return SendOutcome("sent", esp_message_id=",".join(ids), error=error)


def _connection_broken(outcome: SendOutcome) -> bool:
    """Whether the lane's connection is no use any more (gone, or the SMTP server said 421)."""
    return outcome.is_connection_error or outcome.error.startswith(("smtp 421", "recipient deferred: 421"))


# An address every parser leaves as it is: ASCII dot-atoms, one @, no display name, nothing to quote.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _addr_specs(recipients: Sequence[str]) -> list[str]:
    """Return the bare addresses of `recipients`: parsed only when some carry a display name or a list."""
    if any(("<" in value or "," in value or '"' in value) for value in recipients):
        return [address.addr_spec for address in parse_address_list(recipients)]
    return [value.strip() for value in recipients]


def _recipient_statuses(message: AnymailMessage) -> dict[str, Any]:
    status = getattr(message, "anymail_status", None)
    recipients = getattr(status, "recipients", None) or {}
    return {str(address).lower(): recipient for address, recipient in recipients.items()}


def _message_id(value: Any) -> str:
    return "" if value is None else str(value)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    """Return an error's text; anymail's own __str__ needs the HTTP response, which a fault may lack."""
    try:
        text = str(exc)
    except Exception:
        text = " ".join(str(arg) for arg in exc.args)
    return text[:1000]
