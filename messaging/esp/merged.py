"""One anymail batch call (merge data and headers) for an ESP that personalises many messages at once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from anymail.exceptions import AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import get_connection
from django.db import connections

from messaging.esp.outcomes import (
    REFUSED_RECIPIENT_STATUSES,
    UNKNOWN_STATUS_NOTE,
    SendOutcome,
    _addr_specs,
    _message_id,
    _recipient_statuses,
    outcome_for_error,
)

# How long the caller waits, once one call is done, for the other lanes' calls in flight, so that it
# records them together (as messaging.esp.lanes does for single messages).
COLLECT_WAIT_SECONDS = 0.005

MergedOutcomes = dict[str, SendOutcome]


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


def send_merged_stream(
    messages: Sequence[AnymailMessage],
    *,
    concurrency: int | None = None,
    before_call: Callable[[AnymailMessage], None] | None = None,
) -> Generator[list[tuple[int, MergedOutcomes]], None, None]:
    """Send each batch message in a call of its own, up to `concurrency` (default `ESP_SEND_CONCURRENCY`) calls
    at once, yielding `(index, outcomes)` pairs as the calls finish.

    Asking for the next step tells the lanes that what was yielded is recorded: a call starts only while
    fewer than `concurrency` calls are handed over and not yet recorded, so a worker killed at any moment
    leaves at most one call per lane without a record. `before_call` runs in the calling thread before
    each call starts (the rate limit). A 429 stops the calls not yet started: their recipients come last,
    transient, with the ESP's Retry-After.
    """
    if not messages:
        return
    lanes = max(1, min(concurrency or settings.ESP_SEND_CONCURRENCY, len(messages)))
    halted: SendOutcome | None = None
    if lanes == 1:
        for index, message in enumerate(messages):
            if halted is not None:
                yield [(index, _untried(message, halted))]
                continue
            if before_call is not None:
                before_call(message)
            outcomes = send_merged(message)
            halted = _rate_limited(outcomes)
            yield [(index, outcomes)]
        return
    upcoming = iter(enumerate(messages))
    in_flight: dict[Future[MergedOutcomes], int] = {}
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="esp-merged") as pool:

        def start(count: int) -> None:
            for _ in range(count):
                taken = next(upcoming, None)
                if taken is None:
                    return
                if before_call is not None:
                    before_call(taken[1])
                in_flight[pool.submit(_send_merged_in_thread, taken[1])] = taken[0]

        start(lanes)
        try:
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                more, _ = wait(set(in_flight) - done, timeout=COLLECT_WAIT_SECONDS, return_when=FIRST_COMPLETED)
                finished = [(in_flight.pop(future), future.result()) for future in done | more]
                for _, outcomes in finished:
                    halted = halted or _rate_limited(outcomes)
                yield sorted(finished, key=lambda pair: pair[0])
                if halted is None:
                    start(len(finished))  # what was yielded is recorded: as many calls may start again
        finally:
            for future in in_flight:
                future.cancel()
    if halted is not None:
        for index, message in upcoming:
            yield [(index, _untried(message, halted))]


def _send_merged_in_thread(message: AnymailMessage) -> MergedOutcomes:
    """Send one batch message from a pool thread, which must not hold a database connection."""
    try:
        return send_merged(message)
    finally:
        with contextlib.suppress(Exception):
            connections.close_all()  # this thread's connections only


def _rate_limited(outcomes: MergedOutcomes) -> SendOutcome | None:
    return next((outcome for outcome in outcomes.values() if outcome.error.startswith("429")), None)


def _untried(message: AnymailMessage, halted: SendOutcome) -> MergedOutcomes:
    outcome = SendOutcome(
        "transient", error=f"not sent: the ESP asked to wait ({halted.error})"[:500], retry_after=halted.retry_after
    )
    return dict.fromkeys(_addr_specs(message.to), outcome)
