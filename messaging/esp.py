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
import time
from collections.abc import Callable, Generator, Iterator, Sequence
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
# How long the caller waits, once one send is done, for the other lanes' sends in flight, so that it
# records them together: short next to an ESP's answer, long next to a send that needs no network.
COLLECT_WAIT_SECONDS = 0.005


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
    outcomes: list[SendOutcome | None] = [None] * len(messages)
    for done in send_stream(messages, concurrency=concurrency, unrecorded_limit=None):
        for index, outcome in done:
            outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


def send_stream(
    messages: Sequence[EmailMessage], *, concurrency: int | None = None, unrecorded_limit: int | None = 0
) -> Generator[list[tuple[int, SendOutcome]], None, None]:
    """Send like `send_messages`, yielding `(index, outcome)` pairs as the lanes finish them.

    Asking for the next step tells the lanes that what was yielded is recorded. While
    `unrecorded_limit` messages (default: as many as there are lanes; None: no limit) are handed over
    but not yet recorded, no lane takes another one: a worker killed at any moment leaves at most that
    many mails the ESP may have taken without a record of it, as one at a time on each lane would.
    Every message gets an outcome; those nobody could send come last, transient.
    """
    if not messages:
        return
    lanes = max(1, min(concurrency or settings.ESP_SEND_CONCURRENCY, len(messages)))
    limit = lanes if unrecorded_limit == 0 else unrecorded_limit
    chunk = _Chunk(messages, unrecorded_limit=limit)
    if lanes == 1:
        lane = _Lane()  # in the calling thread, one message at a time: nothing to wait for
        try:
            while True:
                chunk.acknowledge()  # the caller asked for more: what it was given is recorded
                index = chunk.take()
                if index is None:
                    break
                going_on = lane.send(chunk, index)
                yield chunk.collect()
                if not going_on:
                    break
        finally:
            lane.close()
    else:
        chunk.lanes_running = lanes
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="esp-lane") as pool:
            futures = [pool.submit(_run_lane_in_thread, chunk) for _ in range(lanes)]
            try:
                while done := chunk.collect(wait=True):
                    yield done
            finally:
                chunk.stop()  # the caller gave up (or all is done): lanes take nothing more
                for future in futures:
                    future.result()
    untried = chunk.untried()
    if untried:
        yield untried


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
    """The messages of one call, handed out to lanes one at a time, and their outcomes.

    `taken` counts messages handed to a lane, `recorded` those the caller has recorded; a lane waits
    while their difference is `unrecorded_limit`.
    """

    def __init__(self, messages: Sequence[EmailMessage], *, unrecorded_limit: int | None = None) -> None:
        self.messages = messages
        self.outcomes: list[SendOutcome | None] = [None] * len(messages)
        self.unrecorded_limit = unrecorded_limit
        self.lanes_running = 0
        self._next = iter(range(len(messages)))
        self._changed = threading.Condition()
        self._done: list[int] = []  # finished, not yet given to the caller
        self._taken = 0
        self._given = 0  # given to the caller; recorded once the caller asks for more
        self._recorded = 0
        self._stopped = False
        self.halted: SendOutcome | None = None  # set by a 429: nothing more goes out
        self.last_connection_error: SendOutcome | None = None

    def take(self) -> int | None:
        with self._changed:
            while (
                self.unrecorded_limit is not None
                and self._taken - self._recorded >= self.unrecorded_limit
                and not self._stopped
            ):
                self._changed.wait()
            if self.halted is not None or self._stopped:
                return None
            index = next(self._next, None)
            if index is not None:
                self._taken += 1
            return index

    def record(self, index: int, outcome: SendOutcome) -> None:
        with self._changed:
            self.outcomes[index] = outcome
            self._done.append(index)
            if outcome.error.startswith("429"):
                self.halted = self.halted or outcome
            elif outcome.is_connection_error:
                self.last_connection_error = outcome
            self._changed.notify_all()

    def lane_finished(self) -> None:
        with self._changed:
            self.lanes_running -= 1
            self._changed.notify_all()

    def acknowledge(self) -> None:
        """The caller has recorded all it was given: lanes may take as many again."""
        with self._changed:
            self._recorded = self._given
            self._changed.notify_all()

    def collect(self, *, wait: bool = False) -> list[tuple[int, SendOutcome]]:
        """Count what was given before as recorded, and return what finished since.

        With `wait`, wait for some, then for the rest in flight (up to COLLECT_WAIT_SECONDS): one
        record for all the lanes' sends, not one for each.
        """
        self.acknowledge()
        with self._changed:
            while wait and not self._done and self.lanes_running > 0:
                self._changed.wait()
            deadline = time.monotonic() + COLLECT_WAIT_SECONDS
            while wait and self.lanes_running > 0 and self._taken - self._given - len(self._done) > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            done, self._done = self._done, []
            self._given += len(done)
            return [(index, self.outcomes[index]) for index in done]  # type: ignore[misc]

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def untried(self) -> list[tuple[int, SendOutcome]]:
        """The messages no lane handed over, each with a transient outcome saying why."""
        if self.halted is not None:
            outcome = SendOutcome(
                "transient",
                error=f"not sent: the ESP asked to wait ({self.halted.error})"[:500],
                retry_after=self.halted.retry_after,
            )
        elif self.last_connection_error is not None:
            outcome = SendOutcome("transient", error=f"not sent: {self.last_connection_error.error}"[:500])
        else:
            outcome = SendOutcome("transient", error="connection: not sent")
        return [(index, outcome) for index, done in enumerate(self.outcomes) if done is None]


def _run_lane_in_thread(chunk: _Chunk) -> None:
    """Run a lane in a pool thread, where no query may run and no database connection is left open."""
    try:
        with _no_queries():
            _run_lane(chunk)
    finally:
        chunk.lane_finished()
        connections.close_all()  # this thread's connections only


def _run_lane(chunk: _Chunk) -> None:
    """Send messages from the chunk over one connection until the chunk is empty or the lane gives up."""
    lane = _Lane()
    try:
        while (index := chunk.take()) is not None:
            if not lane.send(chunk, index):
                return
    finally:
        lane.close()


class _Lane:
    """One connection to the ESP, opened at the first message and reused; reopened after a break."""

    def __init__(self) -> None:
        self.connection: BaseEmailBackend | None = None
        self.connection_errors = 0

    def send(self, chunk: _Chunk, index: int) -> bool:
        """Send one message of the chunk and record its outcome; False when this lane should give up."""
        if self.connection is None:
            try:
                self.connection = _open_connection()
            except Exception as exc:
                chunk.record(index, outcome_for_error(exc))
                return False  # this lane cannot connect; the others take the rest
        outcome = _send_one(self.connection, chunk.messages[index])
        chunk.record(index, outcome)
        if _connection_broken(outcome):
            self.close()
            self.connection_errors += 1
            return self.connection_errors < LANE_CONNECTION_ERRORS_LIMIT
        self.connection_errors = 0
        return True

    def close(self) -> None:
        if self.connection is not None:
            _close_quietly(self.connection)
            self.connection = None


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


__all__ = ["SendOutcome", "outcome_for_error", "retry_after_seconds", "send_merged", "send_messages", "send_stream"]
