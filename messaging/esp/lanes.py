"""A bounded pool of lanes in the worker, each on one kept-alive connection for its chunk."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import make_msgid
from typing import Any

from anymail.backends.base import AnymailBaseBackend
from anymail.backends.base_requests import AnymailRequestsBackend
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.utils import DNS_NAME
from django.db import connections

from messaging.esp.mime import PersonalMail, send_personal, smtp_configured
from messaging.esp.outcomes import (
    SendOutcome,
    _connection_broken,
    _outcome_for_sent,
    _send_built,
    outcome_for_error,
)
from messaging.esp.postmark import (
    BatchEndpointMissing,
    BatchEntry,
    MessageBatchApi,
    _batch_api_for,
)

# After this many connection errors in a row a lane stops taking messages; the other lanes go on,
# and what nobody could send is transient. A dead relay then costs a few timeouts, not one per mail.
LANE_CONNECTION_ERRORS_LIMIT = 2


# How long the caller waits, once one send is done, for the other lanes' sends in flight, so that it
# records them together: short next to an ESP's answer, long next to a send that needs no network.
COLLECT_WAIT_SECONDS = 0.005


def send_messages(
    messages: Sequence[EmailMessage | PersonalMail], *, concurrency: int | None = None
) -> list[SendOutcome]:
    """Send each message on its own and return their outcomes in the same order.

    Up to `concurrency` (default `default_lanes()`) lanes send at once, each over one connection
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
    messages: Sequence[EmailMessage | PersonalMail], *, concurrency: int | None = None, unrecorded_limit: int | None = 0
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
    lanes = max(1, min(concurrency or default_lanes(), calls))
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


def default_lanes() -> int:
    """Lanes per worker process: `SMTP_SEND_CONCURRENCY` for an SMTP relay, else `ESP_SEND_CONCURRENCY`."""
    return settings.SMTP_SEND_CONCURRENCY if smtp_configured() else settings.ESP_SEND_CONCURRENCY


class _Chunk:
    """The messages of one call, handed out to lanes a unit at a time, and their outcomes.

    `taken` counts messages handed to a lane, `recorded` those the caller has recorded; a lane waits
    while their difference leaves no room for a whole unit (one message, or `batch_size` with a batch
    API) within `unrecorded_limit` units.
    """

    def __init__(
        self,
        messages: Sequence[EmailMessage | PersonalMail],
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
            self.api.release(self.backend)
            _close_quietly(self.backend)
            self.backend = None


def _send_group(chunk: _Chunk, api: MessageBatchApi, backend: AnymailRequestsBackend, indices: list[int]) -> bool:
    """Send these messages in as few batch calls as they allow; return whether the connection broke."""
    calls: dict[tuple[str, ...], list[tuple[int, BatchEntry]]] = {}
    for index in indices:
        message = chunk.messages[index]
        if isinstance(message, PersonalMail):  # made for SMTP: an API takes the ordinary message
            message = message.fallback()
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
            outcome = _send_built(backend, api.single_payload(backend, entry), entry.message)
            chunk.record(index, outcome)
            broken = outcome.is_connection_error
    return broken


def _open_connection() -> BaseEmailBackend:
    connection = get_connection()
    connection.open()
    return connection


def _send_one(connection: BaseEmailBackend, message: EmailMessage | PersonalMail) -> SendOutcome:
    if not isinstance(connection, AnymailBaseBackend) and not any(
        name.lower() == "message-id" for name in message.extra_headers
    ):
        message.extra_headers["Message-ID"] = make_msgid(domain=DNS_NAME.get_fqdn())
    try:
        if isinstance(message, PersonalMail):
            send_personal(connection, message)  # SMTP: bytes from the group's skeleton
        else:
            connection.send_messages([message])
    except Exception as exc:
        return outcome_for_error(exc)
    return _outcome_for_sent(message)  # type: ignore[arg-type]  # a PersonalMail has the same extra_headers


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
