"""Table-driven tests of the cadence rules: intervals, windows, time zones, DST and pauses."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from cadence import rules
from cadence.rules import SendWindow

AMS = rules.zone("Europe/Amsterdam")
NYC = rules.zone("America/New_York")
WEEKDAYS = SendWindow()  # mon-fri 09:00-17:00


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("earliest", "tz", "expected_local"),
    [
        # Inside the window: at once.
        (utc(2026, 11, 25, 10, 0), AMS, datetime(2026, 11, 25, 11, 0)),
        # Before opening: at opening, local time.
        (utc(2026, 11, 25, 5, 0), AMS, datetime(2026, 11, 25, 9, 0)),
        # After closing on Friday: Monday morning.
        (utc(2026, 11, 27, 17, 0), AMS, datetime(2026, 11, 30, 9, 0)),
        # Saturday: Monday.
        (utc(2026, 11, 28, 12, 0), AMS, datetime(2026, 11, 30, 9, 0)),
        # The same UTC moment is a different local day in New York.
        (utc(2026, 11, 25, 3, 0), NYC, datetime(2026, 11, 25, 9, 0)),
        (utc(2026, 11, 25, 23, 0), NYC, datetime(2026, 11, 26, 9, 0)),
        # The night of the switch to summer time (Sunday 29 March 2026): Monday 09:00 CEST.
        (utc(2026, 3, 28, 23, 0), AMS, datetime(2026, 3, 30, 9, 0)),
        # The switch back to winter time (25 October 2026).
        (utc(2026, 10, 24, 23, 0), AMS, datetime(2026, 10, 26, 9, 0)),
    ],
)
def test_a_due_time_is_moved_into_the_send_window(earliest, tz, expected_local):
    placed = rules.place_in_window(earliest, tz=tz, window=WEEKDAYS)
    assert placed.astimezone(tz).replace(tzinfo=None) == expected_local
    assert placed >= earliest


@pytest.mark.parametrize(
    "window_text", ["mon-fri 09:00-17:00", "daily 02:00-03:30", "sat,sun 10:00-12:00", "fri-mon 08:00-20:00"]
)
@pytest.mark.parametrize("tz", [AMS, NYC, rules.zone("Asia/Kolkata"), rules.zone("UTC")])
@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_a_placed_time_is_inside_the_window_and_never_early_across_dst(window_text, tz, jitter):
    window = SendWindow.parse(window_text)
    start = utc(2026, 3, 26, 0, 0)
    for hour in range(0, 24 * 8, 5):
        earliest = start + timedelta(hours=hour)
        placed = rules.place_in_window(earliest, tz=tz, window=window, jitter=jitter)
        local = placed.astimezone(tz)
        assert placed >= earliest
        assert local.weekday() in window.days
        # Non-existent wall times (02:00-03:00 on 29 March in Amsterdam) are pushed past the gap.
        assert window.start <= local.time() <= window.end or local.time() >= time(3)


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("mon-fri 09:00-17:00", {0, 1, 2, 3, 4}, time(9), time(17)),
        ("daily 08:30-20:00", set(range(7)), time(8, 30), time(20)),
        ("sat,sun 10:00-12:00", {5, 6}, time(10), time(12)),
        ("fri-mon 08:00-20:00", {4, 5, 6, 0}, time(8), time(20)),
    ],
)
def test_a_send_window_is_read_from_text(text, days, start, end):
    assert SendWindow.parse(text) == SendWindow(frozenset(days), start, end)


@pytest.mark.parametrize("text", ["weekdays", "mon-fri 17:00-09:00", "xyz 09:00-10:00", "mon-fri 9-5"])
def test_a_bad_send_window_is_refused_loudly(text):
    with pytest.raises(ValueError):
        SendWindow.parse(text)


@pytest.mark.parametrize(
    ("interval_days", "expected_grace"),
    [
        (1, timedelta(days=1)),
        (2, timedelta(days=1)),
        (14, timedelta(days=3.5)),
        (30, timedelta(days=7.5)),
        (91, timedelta(days=22.75)),
    ],
)
def test_the_grace_is_a_quarter_of_the_interval_and_at_least_a_day(interval_days, expected_grace):
    assert rules.grace(timedelta(days=interval_days)) == expected_grace


@pytest.mark.parametrize(
    ("last", "days", "paused_until", "tz", "expected_local"),
    [
        # Monthly from a Wednesday at 10:00 UTC: 30 days later is a Friday, inside the window.
        (utc(2026, 11, 25, 10, 0), 30, None, AMS, datetime(2026, 12, 25, 11, 0)),
        # Biweekly from a Friday 17:30 local: the window is shut by then; Monday morning.
        (utc(2026, 11, 13, 16, 30), 14, None, AMS, datetime(2026, 11, 30, 9, 0)),
        # Weekly from Friday evening: Monday would leave too little grace, so Saturday in the window hours.
        (utc(2026, 11, 13, 16, 30), 7, None, AMS, datetime(2026, 11, 21, 9, 0)),
        # A pause that ends after the interval moves the due time to the pause end (in the window).
        (utc(2026, 11, 2, 10, 0), 14, utc(2027, 2, 3, 8, 0), AMS, datetime(2027, 2, 3, 9, 0)),
        # A pause that ended before the interval is over changes nothing.
        (utc(2026, 11, 25, 10, 0), 30, utc(2026, 12, 1, 0, 0), AMS, datetime(2026, 12, 25, 11, 0)),
        # Across the switch to summer time the interval is real time: 10:00 CET + 14 days = 11:00 CEST.
        (utc(2026, 3, 20, 9, 0), 14, None, AMS, datetime(2026, 4, 3, 11, 0)),
    ],
)
def test_the_next_due_time_without_jitter(last, days, paused_until, tz, expected_local, monkeypatch):
    monkeypatch.setattr(rules, "jitter_fraction", lambda key: 0.0)
    due = rules.next_due(
        last_sent_at=last,
        interval=timedelta(days=days),
        tz=tz,
        window=WEEKDAYS,
        jitter_key="x",
        paused_until=paused_until,
    )
    assert due.astimezone(tz).replace(tzinfo=None) == expected_local


@pytest.mark.parametrize("days", [1, 7, 14, 30, 91])
@pytest.mark.parametrize("window_text", ["mon-fri 09:00-17:00", "sun 10:00-11:00", "daily 09:00-17:00"])
def test_the_next_due_time_is_never_early_and_never_late_enough_to_be_silent(days, window_text):
    interval = timedelta(days=days)
    window = SendWindow.parse(window_text)
    for n in range(60):
        last = utc(2026, 3, 1) + timedelta(hours=7 * n, minutes=13 * n)
        due = rules.next_due(last_sent_at=last, interval=interval, tz=AMS, window=window, jitter_key=f"c{n}")
        assert last + interval <= due <= last + interval + rules.grace(interval) - rules.SEND_MARGIN


def test_jitter_spreads_contacts_over_the_window_and_is_the_same_every_run():
    last = utc(2026, 11, 2, 6, 0)
    dues = [
        rules.next_due(
            last_sent_at=last, interval=timedelta(days=14), tz=AMS, window=WEEKDAYS, jitter_key=f"contact-{n}:1"
        )
        for n in range(2000)
    ]
    assert len({d.replace(second=0) for d in dues}) > 300, "a crowd must not land on one minute"
    again = rules.next_due(
        last_sent_at=last, interval=timedelta(days=14), tz=AMS, window=WEEKDAYS, jitter_key="contact-7:1"
    )
    assert again == dues[7]


@pytest.mark.parametrize(
    ("now", "last", "days", "paused_until", "silent"),
    [
        (utc(2026, 12, 1), utc(2026, 11, 1), 30, None, False),  # within the interval
        (utc(2026, 12, 8), utc(2026, 11, 1), 30, None, False),  # in the grace (7.5 days)
        (utc(2026, 12, 9), utc(2026, 11, 1), 30, None, True),  # past interval plus grace
        (utc(2026, 12, 9), utc(2026, 11, 1), 30, utc(2027, 1, 1), False),  # paused now
        (utc(2027, 1, 5), utc(2026, 11, 1), 30, utc(2027, 1, 1), False),  # the pause ended; interval restarts
        (utc(2027, 2, 8), utc(2026, 11, 1), 30, utc(2027, 1, 1), True),
        (utc(2026, 11, 3, 1), utc(2026, 11, 1), 1, None, True),  # daily: grace is a full day
        (utc(2026, 11, 2, 23), utc(2026, 11, 1), 1, None, False),
    ],
)
def test_who_counts_as_silent(now, last, days, paused_until, silent):
    assert (
        rules.is_silent(now=now, last_marketing_at=last, interval=timedelta(days=days), paused_until=paused_until)
        is silent
    )
