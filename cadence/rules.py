"""The cadence maths: pure functions, no database, no clock. Every datetime in and out is aware."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = timedelta(days=1)
SEND_MARGIN = timedelta(hours=12)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SendWindow:
    """The local days and hours in which marketing mail may arrive, for example weekdays 09:00-17:00."""

    days: frozenset[int] = frozenset(range(5))  # 0 = Monday
    start: time = time(9)
    end: time = time(17)

    def __post_init__(self) -> None:
        if not self.days or self.start >= self.end:
            raise ValueError("A send window needs at least one day and a start before its end.")

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """Return the window written as 'mon-fri 09:00-17:00' (or 'mon,wed,sat 08:30-20:00', 'daily ...')."""
        try:
            day_part, hour_part = text.split()
            if day_part == "daily":
                days = set(range(7))
            else:
                days = set()
                for chunk in day_part.split(","):
                    first, _sep, last = chunk.partition("-")
                    a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
                    days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
            start_text, end_text = hour_part.split("-")
            start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
        except ValueError as exc:
            raise ValueError(f"Send window {text!r} is not like 'mon-fri 09:00-17:00'.") from exc
        return cls(frozenset(days), start, end)


def zone(name: str, default: str = "UTC") -> ZoneInfo:
    """Return the time zone called `name`, or `default` when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def jitter_fraction(key: str) -> float:
    """Return a number in [0, 1) that is the same for the same key on every machine and run."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _local(day: datetime, at: time, tz: ZoneInfo) -> datetime:
    # A wall time that does not exist (spring forward) lands after the gap; an ambiguous one on its first pass.
    naive = datetime.combine(day.date(), at)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def place_in_window(earliest: datetime, *, tz: ZoneInfo, window: SendWindow, jitter: float = 0.0) -> datetime:
    """Return the first moment at or after `earliest` inside the window, pushed later by `jitter` of what is
    left of that day's window. The result is never before `earliest` and always inside the window (UTC)."""
    local = earliest.astimezone(tz)
    for offset in range(8):
        day = local + offset * DAY if offset else local
        if day.weekday() not in window.days:
            continue
        opens, closes = _local(day, window.start, tz), _local(day, window.end, tz)
        begin = max(opens, local) if offset == 0 else opens
        if begin >= closes:
            continue
        span = closes - begin
        return (begin + timedelta(seconds=int(span.total_seconds() * jitter))).astimezone(UTC)
    raise AssertionError("a window with at least one day always opens within 8 days")


def grace(interval: timedelta, *, share: float = 0.25, minimum: timedelta = DAY) -> timedelta:
    """Return how long after a missed interval a subscriber counts as silent: a share, at least a day."""
    return max(interval * share, minimum)


def next_due(
    *,
    last_sent_at: datetime,
    interval: timedelta,
    tz: ZoneInfo,
    window: SendWindow,
    jitter_key: str,
    paused_until: datetime | None = None,
) -> datetime:
    """Return when the next nurture mail is due after one went out at `last_sent_at`.

    Never sooner than one interval later (in real elapsed time, so DST cannot shorten it), never inside
    a pause, inside the contact's send window with deterministic jitter, and never so late that the
    subscriber turns silent: when the window would push past the grace less a margin of 12 hours for
    the tick and the send, its days are ignored, then the window itself.
    """
    earliest = last_sent_at + interval
    if paused_until is not None and paused_until > earliest:
        earliest = paused_until
    latest = earliest + grace(interval) - SEND_MARGIN
    placed = place_in_window(earliest, tz=tz, window=window, jitter=jitter_fraction(jitter_key))
    if placed <= latest:
        return placed
    every_day = SendWindow(frozenset(range(7)), window.start, window.end)
    placed = place_in_window(earliest, tz=tz, window=every_day, jitter=0.0)
    return placed if placed <= latest else earliest.astimezone(UTC)


def silent_since(*, last_marketing_at: datetime, interval: timedelta, paused_until: datetime | None = None) -> datetime:
    """Return the moment a subscriber who last heard from us at `last_marketing_at` becomes silent.

    A pause moves the reference to its end: the interval starts again when the pause is over.
    """
    reference = last_marketing_at
    if paused_until is not None and paused_until > reference:
        reference = paused_until
    return reference + interval + grace(interval)


def is_silent(
    *, now: datetime, last_marketing_at: datetime, interval: timedelta, paused_until: datetime | None = None
) -> bool:
    """Return whether a reachable subscriber has gone longer than interval plus grace without marketing mail."""
    if paused_until is not None and paused_until > now:
        return False
    return now > silent_since(last_marketing_at=last_marketing_at, interval=interval, paused_until=paused_until)


# A confirmed contact without any marketing mail this long after confirming waits too long for the welcome.
WELCOME_OVERDUE_AFTER = timedelta(minutes=10)
