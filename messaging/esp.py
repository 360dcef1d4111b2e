"""Hand messages to the ESP at the ESP's own scale, and say what became of each.

Two ways in, both for whatever `EMAIL_BACKEND` is configured (an anymail ESP, Django's SMTP backend
for a bank's own relay, the file or test backends):

- `send_messages`: one message per recipient, sent by a bounded pool of lanes inside the worker
  (`ESP_SEND_CONCURRENCY`; 1 sends one after the other in the calling thread). Each lane opens one
  connection for the chunk and reuses it: one SMTP connection, or one requests Session for anymail's
  HTTP backends. The work is waiting on the network, so threads are enough. Where the ESP has an
  endpoint that takes many distinct messages in one call (a `MessageBatchApi`: Postmark's
  `/email/batch`), each lane sends whole groups of messages per call instead of one.
- `send_merged`: one anymail batch call (`merge_data`, `merge_metadata`, `merge_headers`) for an ESP
  that takes many personalised messages at once (`ESP_BATCH_SENDING`).

Nothing here touches the database: the caller records the outcomes. Every message gets an outcome;
one failing message never fails the others.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import smtplib
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid, parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urljoin

import requests
from anymail.backends.base import AnymailBaseBackend
from anymail.backends.base_requests import AnymailRequestsBackend, RequestsPayload
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused, AnymailRequestsAPIError
from anymail.message import AnymailMessage, AnymailRecipientStatus, AnymailStatus
from anymail.utils import parse_address_list
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.utils import DNS_NAME
from django.db import connections

logger = logging.getLogger(__name__)

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
    `unrecorded_limit` units (default: as many as there are lanes; None: no limit) are handed over
    but not yet recorded, no lane takes another one: a worker killed at any moment leaves at most that
    many units the ESP may have taken without a record of it, as one at a time on each lane would. A
    unit is one message, or, with a batch API, one batch call of up to its batch size messages: the
    window is then lanes x batch size messages, the price of batch calls.
    Every message gets an outcome; those nobody could send come last, transient.
    """
    if not messages:
        return
    batch_api = _batch_api_for(get_connection())
    batch_size = batch_api.batch_size() if batch_api is not None else 1
    calls = math.ceil(len(messages) / batch_size)
    lanes = max(1, min(concurrency or settings.ESP_SEND_CONCURRENCY, calls))
    limit = lanes if unrecorded_limit == 0 else unrecorded_limit
    chunk = _Chunk(messages, batch_api=batch_api, batch_size=batch_size, unrecorded_limit=limit)
    if lanes == 1:
        lane = _lane_for(chunk)  # in the calling thread, one unit at a time: nothing to wait for
        try:
            while True:
                chunk.acknowledge()  # the caller asked for more: what it was given is recorded
                going_on = lane.step(chunk)
                if done := chunk.collect():
                    yield done
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
    addresses = _addr_specs(message.to)
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
    """The messages of one call, handed out to lanes a unit at a time, and their outcomes.

    `taken` counts messages handed to a lane, `recorded` those the caller has recorded; a lane waits
    while their difference leaves no room for a whole unit (one message, or `batch_size` with a batch
    API) within `unrecorded_limit` units.
    """

    def __init__(
        self,
        messages: Sequence[EmailMessage],
        *,
        batch_api: MessageBatchApi | None = None,
        batch_size: int = 1,
        unrecorded_limit: int | None = None,
    ) -> None:
        self.messages = messages
        self.batch_api = batch_api
        self.batch_size = batch_size
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
        taken = self.take_many(1)
        return taken[0] if taken else None

    def take_many(self, count: int) -> list[int]:
        """Hand a lane up to `count` messages, once they fit within the unrecorded limit."""
        with self._changed:
            count = min(count, len(self.messages) - self._taken)
            while (
                self.unrecorded_limit is not None
                and self._taken - self._recorded + count > self.unrecorded_limit * self.batch_size
                and not self._stopped
            ):
                self._changed.wait()
            if self.halted is not None or self._stopped:
                return []
            indices = [index for _, index in zip(range(count), self._next, strict=False)]
            self._taken += len(indices)
            return indices

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
    lane = _lane_for(chunk)
    try:
        while lane.step(chunk):
            pass
    finally:
        lane.close()


def _lane_for(chunk: _Chunk) -> _Lane | _BatchLane:
    return _Lane() if chunk.batch_api is None else _BatchLane(chunk.batch_api)


class _Lane:
    """One connection to the ESP, opened at the first message and reused; reopened after a break."""

    def __init__(self) -> None:
        self.connection: BaseEmailBackend | None = None
        self.connection_errors = 0

    def step(self, chunk: _Chunk) -> bool:
        """Take one message and send it; False when the chunk is empty or this lane should give up."""
        index = chunk.take()
        return index is not None and self.send(chunk, index)

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


class _BatchLane:
    """One requests Session to the ESP, sending a group of messages per batch call; reopened after a break."""

    def __init__(self, api: MessageBatchApi) -> None:
        self.api = api
        self.backend: BaseEmailBackend | None = None
        self.failed_calls = 0

    def step(self, chunk: _Chunk) -> bool:
        """Take one group and send it; False when the chunk is empty or this lane should give up."""
        indices = chunk.take_many(chunk.batch_size)
        if not indices:
            return False
        if self.backend is None:
            try:
                self.backend = _open_connection()
            except Exception as exc:
                for index in indices:
                    chunk.record(index, outcome_for_error(exc))
                return False  # this lane cannot connect; the others take the rest
        assert isinstance(self.backend, AnymailRequestsBackend)
        if _send_group(chunk, self.api, self.backend, indices):
            self.close()
            self.failed_calls += 1
            return self.failed_calls < LANE_CONNECTION_ERRORS_LIMIT
        self.failed_calls = 0
        return True

    def close(self) -> None:
        if self.backend is not None:
            _close_quietly(self.backend)
            self.backend = None


def _send_group(chunk: _Chunk, api: MessageBatchApi, backend: AnymailRequestsBackend, indices: list[int]) -> bool:
    """Send these messages in as few batch calls as they allow; return whether the connection broke."""
    calls: dict[tuple[str, ...], list[tuple[int, BatchEntry]]] = {}
    for index in indices:
        message = chunk.messages[index]
        try:
            prepared = api.prepare(backend, message)
        except Exception as exc:
            prepared = outcome_for_error(exc)
        if isinstance(prepared, SendOutcome):  # cancelled, refused before the call, or sent alone
            chunk.record(index, prepared)
        else:
            calls.setdefault(prepared.key, []).append((index, prepared))
    broken = False
    for entries in calls.values():
        if api.available(backend):
            try:
                outcomes = api.post(backend, [entry for _, entry in entries])
            except BatchEndpointMissing as missing:
                api.mark_missing(backend, missing.status)
            else:
                for (index, _), outcome in zip(entries, outcomes, strict=True):
                    chunk.record(index, outcome)
                broken = outcomes[0].is_connection_error
                continue
        # No batch endpoint there: the messages built for it go one per call.
        for index, entry in entries:
            outcome = _send_built(backend, entry.payload, entry.message)
            chunk.record(index, outcome)
            broken = outcome.is_connection_error
    return broken


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


class BatchEndpointMissing(Exception):
    """The ESP answered its batch endpoint with 404 or 405: a compatible server that has none."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class BatchEntry:
    """One message built for a batch call: its part of the body, and what the call must share."""

    message: EmailMessage
    payload: RequestsPayload
    json: str  # this message's JSON object, as anymail serialised it
    key: tuple[str, ...]  # messages share a call only when their keys are equal (e.g. the server token)


class MessageBatchApi:
    """An ESP endpoint that takes many distinct messages in one call and answers for each.

    A subclass names the anymail backend it serves and its size setting, builds each message's part
    with that backend's own payload code (`prepare`), and maps the answer back to one `SendOutcome`
    per message (`post`). A server that answers the endpoint with 404/405 is sent one message per
    call from then on, for the rest of the process.
    """

    backend_class: type[AnymailRequestsBackend]
    endpoint: str  # joined to the backend's API URL
    size_setting: str  # settings name: messages per call, 0 turns batching off
    max_size: int  # the most the ESP takes in one call

    def __init__(self) -> None:
        self._missing: set[str] = set()  # endpoint URLs that answered 404/405
        self._lock = threading.Lock()

    def batch_size(self) -> int:
        return max(0, min(int(getattr(settings, self.size_setting, self.max_size)), self.max_size))

    def url(self, backend: AnymailRequestsBackend) -> str:
        return urljoin(backend.api_url, self.endpoint)

    def serves(self, backend: BaseEmailBackend) -> bool:
        return isinstance(backend, self.backend_class) and self.batch_size() > 0 and self.available(backend)

    def available(self, backend: AnymailRequestsBackend) -> bool:
        return self.url(backend) not in self._missing

    def mark_missing(self, backend: AnymailRequestsBackend, status: int) -> None:
        url = self.url(backend)
        with self._lock:
            if url in self._missing:
                return
            self._missing.add(url)
        logger.warning(
            "the ESP has no batch endpoint; sending one message per call from now on",
            extra={"url": url, "http_status": status},
        )

    def prepare(self, backend: AnymailRequestsBackend, message: EmailMessage) -> BatchEntry | SendOutcome:
        """Build the message's part of a call, or send it on its own and return its outcome."""
        raise NotImplementedError

    def post(self, backend: AnymailRequestsBackend, entries: list[BatchEntry]) -> list[SendOutcome]:
        """Make one call with these entries and return their outcomes in order."""
        raise NotImplementedError


class PostmarkBatchApi(MessageBatchApi):
    """Postmark's `POST /email/batch`: up to 500 distinct messages, one result per message.

    https://postmarkapp.com/developer/api/email-api#send-batch-emails
    """

    backend_class = PostmarkBackend
    endpoint = "email/batch"
    size_setting = "ESP_POSTMARK_BATCH_SIZE"
    max_size = 500

    def prepare(self, backend: AnymailRequestsBackend, message: EmailMessage) -> BatchEntry | SendOutcome:
        # The first steps of anymail's own send (AnymailBaseBackend._send), then PostmarkPayload.
        message.anymail_status = AnymailStatus()  # type: ignore[attr-defined]
        if not backend.run_pre_send(message) or not message.recipients():
            return _outcome_for_sent(message)  # cancelled by a pre_send receiver, or nobody to send to
        payload = backend.build_message_payload(message, backend.send_defaults)
        if payload.get_api_endpoint() != "email":  # a stored template, merge_data, the bulk API
            return _send_built(backend, payload, message)
        return BatchEntry(message=message, payload=payload, json=payload.serialize_data(), key=(payload.server_token,))

    def post(self, backend: AnymailRequestsBackend, entries: list[BatchEntry]) -> list[SendOutcome]:
        first = entries[0].payload
        headers = {**first.headers, "X-Postmark-Server-Token": first.server_token}  # type: ignore[attr-defined]
        body = ("[" + ",".join(entry.json for entry in entries) + "]").encode()
        assert backend.session is not None
        try:
            response = backend.session.post(self.url(backend), data=body, headers=headers, timeout=backend.timeout)
        except requests.RequestException as exc:
            return [SendOutcome("transient", error=f"connection: {type(exc).__name__}: {exc}"[:1000])] * len(entries)
        if response.status_code in (404, 405):
            raise BatchEndpointMissing(response.status_code)
        if not 200 <= response.status_code < 300:  # the whole call: 429 and 5xx transient, 422 failed
            error = AnymailRequestsAPIError(response=response, backend=backend)
            return [outcome_for_error(error)] * len(entries)
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if (
            not isinstance(answers, list)
            or len(answers) != len(entries)
            or not all(isinstance(a, dict) for a in answers)
        ):
            error_text = f"{response.status_code}: not one answer per message from Postmark's batch call"
            return [SendOutcome("failed", error=error_text)] * len(entries)
        return [self._outcome(backend, entry, answer, response) for entry, answer in zip(entries, answers, strict=True)]

    def _outcome(
        self, backend: AnymailRequestsBackend, entry: BatchEntry, answer: dict[str, Any], response: requests.Response
    ) -> SendOutcome:
        """One message's outcome from its element of the answer, read as anymail reads a single answer."""
        code = answer.get("ErrorCode", 0)
        text = str(answer.get("Message", ""))
        if code == 0 and answer.get("MessageID"):
            message_id = str(answer["MessageID"])
            state = "queued" if "delivery may be delayed" in text else "sent"
            inactive = set(PostmarkBackend._addr_specs_from_error_msg(text, POSTMARK_INACTIVE_PATTERN))
            recipients = {
                address.addr_spec: (
                    AnymailRecipientStatus(message_id=None, status="rejected")
                    if address.addr_spec.lower() in inactive
                    else AnymailRecipientStatus(message_id=message_id, status=state)
                )
                for address in entry.payload.to_emails + entry.payload.cc_and_bcc_emails  # type: ignore[attr-defined]
            }
            status: AnymailStatus = entry.message.anymail_status  # type: ignore[attr-defined]
            status.esp_response = response
            status.set_recipient_status(recipients)
            try:
                backend.run_post_send(entry.message)
            except Exception:  # the message is out; a failing receiver must not make it look unsent
                logger.exception("a post_send receiver failed")
            return _outcome_for_sent(entry.message)
        if code == 406 or (code == 300 and POSTMARK_RECIPIENT_ERROR.match(text)):
            return SendOutcome("failed", error=f"recipient refused: {code} {text.strip()}"[:1000])
        return SendOutcome("failed", error=f"Postmark error {code}: {text.strip()}"[:1000])


# Postmark's texts about recipients, as anymail's Postmark backend reads them.
POSTMARK_INACTIVE_PATTERN = r"inactive addresses:\s*(.*)\.\s*Inactive recipients"
POSTMARK_RECIPIENT_ERROR = re.compile(r"^(Invalid|Error\s+parsing)\s+'(To|Cc|Bcc)'", re.IGNORECASE)
# The ESP endpoints that take many distinct messages per call, tried in order.
MESSAGE_BATCH_APIS: tuple[MessageBatchApi, ...] = (PostmarkBatchApi(),)


def _batch_api_for(backend: BaseEmailBackend) -> MessageBatchApi | None:
    return next((api for api in MESSAGE_BATCH_APIS if api.serves(backend)), None)


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


__all__ = [
    "MESSAGE_BATCH_APIS",
    "MessageBatchApi",
    "PostmarkBatchApi",
    "SendOutcome",
    "outcome_for_error",
    "retry_after_seconds",
    "send_merged",
    "send_messages",
    "send_stream",
]
