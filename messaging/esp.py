"""Hand messages to the ESP at the ESP's own scale, and say what became of each.

Two ways in, both for whatever `EMAIL_BACKEND` is configured (an anymail ESP, Django's SMTP backend
for a bank's own relay, the file or test backends):

- `send_messages`: one message per recipient, sent by a bounded pool of lanes inside the worker
  (`ESP_SEND_CONCURRENCY`; 1 sends one after the other in the calling thread). Each lane opens one
  connection for the chunk and reuses it: one SMTP connection, or one requests Session for anymail's
  HTTP backends. The work is waiting on the network, so threads are enough.
- `send_merged`: one anymail batch call (`merge_data`, `merge_metadata`, `merge_headers`) for an ESP
  that takes many personalised messages at once (`ESP_BATCH_SENDING`).

Nothing here touches the database: the caller records the outcomes. Every message gets an outcome;
one failing message never fails the others.
"""

from __future__ import annotations

import contextlib
import math
import smtplib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid, parsedate_to_datetime
from typing import Any, Literal

from anymail.backends.base import AnymailBaseBackend
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from anymail.utils import parse_address_list
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.utils import DNS_NAME
from django.db import connections

Status = Literal["sent", "transient", "failed"]

# HTTP statuses worth trying again later: timeouts, too early, too many requests, and every 5xx.
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})
# What anymail reports per recipient when the ESP did not take the mail for that recipient.
REFUSED_RECIPIENT_STATUSES = frozenset({"rejected", "invalid", "failed"})
# "unknown": the ESP took the call without saying which recipients it accepted (SparkPost on a batch
# where some were refused). Counted as sent, never sent again: the ESP's webhook tells the rest.
UNKNOWN_STATUS_NOTE = "the ESP took the call but gave no status for this recipient"
# After this many connection errors in a row a lane stops taking messages; the other lanes go on,
# and what nobody could send is transient. A dead relay then costs a few timeouts, not one per mail.
LANE_CONNECTION_ERRORS_LIMIT = 2


@dataclass(frozen=True)
class SendOutcome:
    """What became of one message (or one recipient of a merged message)."""

    status: Status
    esp_message_id: str = ""
    error: str = ""
    # Seconds the ESP asked to wait before trying again (its Retry-After), when it said so.
    retry_after: float | None = None

    @property
    def is_connection_error(self) -> bool:
        return self.status == "transient" and self.error.startswith("connection")


def send_messages(messages: Sequence[EmailMessage], *, concurrency: int | None = None) -> list[SendOutcome]:
    """Send each message on its own and return their outcomes in the same order.

    Up to `concurrency` (default `ESP_SEND_CONCURRENCY`) lanes send at once, each over one connection
    of its own for the whole call. A 429 (the ESP's rate limit) stops the call: messages not yet
    handed over come back transient with the ESP's Retry-After, so the ESP is not pressed harder.
    Messages without a Message-ID get one when the backend is not anymail (SMTP, files), and it is
    their `esp_message_id`.
    """
    if not messages:
        return []
    lanes = max(1, min(concurrency or settings.ESP_SEND_CONCURRENCY, len(messages)))
    chunk = _Chunk(messages)
    if lanes == 1:
        _run_lane(chunk)
    else:
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="esp-lane") as pool:
            for future in [pool.submit(_run_lane_in_thread, chunk) for _ in range(lanes)]:
                future.result()
    return chunk.results()


def send_merged(message: AnymailMessage) -> dict[str, SendOutcome]:
    """Send one batch message in one ESP call; return each `to` address's outcome, keyed as given.

    Per-recipient results come from anymail's `anymail_status.recipients`; an error for the whole
    call is every recipient's outcome.
    """
    addresses = [address.addr_spec for address in parse_address_list(message.to)]
    connection = get_connection()
    try:
        connection.send_messages([message])
    except AnymailRecipientsRefused:
        pass  # every recipient refused: anymail_status says how, read below
    except Exception as exc:
        outcome = outcome_for_error(exc)
        return dict.fromkeys(addresses, outcome)
    recipients = _recipient_statuses(message)
    outcomes = {}
    for address in addresses:
        recipient = recipients.get(address.lower())
        if recipient is None:
            outcomes[address] = SendOutcome("failed", error="recipient refused: no status from the ESP")
        elif recipient.status in REFUSED_RECIPIENT_STATUSES:
            outcomes[address] = SendOutcome("failed", error=f"recipient refused: {recipient.status}")
        else:
            note = UNKNOWN_STATUS_NOTE if recipient.status == "unknown" else ""
            outcomes[address] = SendOutcome("sent", esp_message_id=_message_id(recipient.message_id), error=note)
    return outcomes


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


class _Chunk:
    """The messages of one call, handed out to lanes one at a time, and their outcomes."""

    def __init__(self, messages: Sequence[EmailMessage]) -> None:
        self.messages = messages
        self.outcomes: list[SendOutcome | None] = [None] * len(messages)
        self._next = iter(range(len(messages)))
        self._lock = threading.Lock()
        self.halted: SendOutcome | None = None  # set by a 429: nothing more goes out
        self.last_connection_error: SendOutcome | None = None

    def take(self) -> int | None:
        with self._lock:
            if self.halted is not None:
                return None
            return next(self._next, None)

    def record(self, index: int, outcome: SendOutcome) -> None:
        self.outcomes[index] = outcome
        if outcome.error.startswith("429"):
            with self._lock:
                self.halted = self.halted or outcome
        elif outcome.is_connection_error:
            self.last_connection_error = outcome

    def results(self) -> list[SendOutcome]:
        if self.halted is not None:
            untried = SendOutcome(
                "transient",
                error=f"not sent: the ESP asked to wait ({self.halted.error})"[:500],
                retry_after=self.halted.retry_after,
            )
        elif self.last_connection_error is not None:
            untried = SendOutcome("transient", error=f"not sent: {self.last_connection_error.error}"[:500])
        else:
            untried = SendOutcome("transient", error="connection: not sent")
        return [untried if outcome is None else outcome for outcome in self.outcomes]


def _run_lane_in_thread(chunk: _Chunk) -> None:
    """Run a lane in a pool thread, where no query may run and no database connection is left open."""
    try:
        with _no_queries():
            _run_lane(chunk)
    finally:
        connections.close_all()  # this thread's connections only


def _run_lane(chunk: _Chunk) -> None:
    """Send messages from the chunk over one connection until the chunk is empty or the lane gives up."""
    connection: BaseEmailBackend | None = None
    connection_errors = 0
    try:
        while (index := chunk.take()) is not None:
            message = chunk.messages[index]
            if connection is None:
                try:
                    connection = _open_connection()
                except Exception as exc:
                    chunk.record(index, outcome_for_error(exc))
                    return  # this lane cannot connect; the others take the rest
            outcome = _send_one(connection, message)
            chunk.record(index, outcome)
            if _connection_broken(outcome):
                _close_quietly(connection)
                connection = None
                connection_errors += 1
                if connection_errors >= LANE_CONNECTION_ERRORS_LIMIT:
                    return
            else:
                connection_errors = 0
    finally:
        if connection is not None:
            _close_quietly(connection)


def _open_connection() -> BaseEmailBackend:
    connection = get_connection()
    connection.open()
    return connection


def _send_one(connection: BaseEmailBackend, message: EmailMessage) -> SendOutcome:
    if not isinstance(connection, AnymailBaseBackend) and not any(
        name.lower() == "message-id" for name in message.extra_headers
    ):
        message.extra_headers["Message-ID"] = make_msgid(domain=DNS_NAME.get_fqdn())
    try:
        connection.send_messages([message])
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


def _close_quietly(connection: BaseEmailBackend) -> None:
    with contextlib.suppress(Exception):
        connection.close()


@contextlib.contextmanager
def _no_queries() -> Iterator[None]:
    """Refuse every query in this thread: a lane must not hold or use a database connection."""

    def refuse(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        raise RuntimeError("no database queries while handing messages to the ESP")

    with contextlib.ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(refuse))
        yield


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


__all__ = ["SendOutcome", "outcome_for_error", "retry_after_seconds", "send_merged", "send_messages"]
