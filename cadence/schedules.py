"""The only writer of `Schedule.next_due_at`: when each person's next mail is due, and every move of it.

The due rules live here once: the welcome series (`welcome_step_due`), nurture after a send
(`nurture_due`: the interval in the contact's zone and send window, with jitter), the provisional move
of a claim (rendered into the SQL claim from the same rule), a slot taken by re-engagement, and a
schedule made due now by the silence guard.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from cadence import rules
from cadence.enqueue import delivery_enqueue
from cadence.keys import welcome_key
from cadence.kinds import Kind
from cadence.models import Schedule, WelcomeStep
from messaging.bulk_sql import changed_rows, values_cte
from messaging.models import Delivery
from messaging.services import delivery_create
from preferences.frequencies import frequencies
from preferences.models import Contact
from preferences.policy import Policies, effective_frequency, effective_table, load_policies

logger = logging.getLogger(__name__)


@cache
def _window(text: str) -> rules.SendWindow:
    return rules.SendWindow.parse(text)


def send_window() -> rules.SendWindow:
    """Return the configured send window (settings.CADENCE_SEND_WINDOW)."""
    return _window(settings.CADENCE_SEND_WINDOW)


def cadence_policies() -> Policies:
    """Return the cadence policies by potential (one small query: read once per batch, not per contact)."""
    return load_policies()


def welcome_series() -> list[WelcomeStep]:
    """Return the active welcome steps in order; the first is sent at confirmation."""
    return list(WelcomeStep.objects.filter(is_active=True).order_by("position"))


def nurture_due(*, contact: Contact, last_sent_at: datetime | None, now: datetime) -> datetime:
    """Return when the contact's next nurture mail is due, given when the last marketing mail went out.

    The same last mail always gives the same moment (`nurture_jitter_key`): the send that records it and
    any later re-planning (a change of frequency, a restart) agree, so re-planning without a longer
    interval never moves a promised mail later.
    """
    if last_sent_at is None:
        return max(now, contact.paused_until or now)
    return rules.next_due(
        last_sent_at=last_sent_at,
        interval=effective_frequency(contact, cadence_policies()).interval,
        tz=rules.zone(contact.time_zone, settings.DEFAULT_CONTACT_TIMEZONE),
        window=send_window(),
        jitter_key=nurture_jitter_key(contact.pk, last_sent_at),
        paused_until=contact.paused_until,
    )


def nurture_jitter_key(contact_id: Any, last_sent_at: datetime) -> str:
    """Return the key of the jitter that places a contact's next nurture mail in the send window: the
    contact and the moment of their last mail, so it spreads contacts and moves on with each mail."""
    return f"{contact_id}:{round(last_sent_at.timestamp() * 1_000_000)}"


def welcome_step_due(*, since: datetime, delay: timedelta, now: datetime, paused_until: datetime | None) -> datetime:
    """Return when a welcome step is due: `delay` after confirmation (`since`), never before `now`, and not
    while the contact is paused. The SQL claim renders the same rule (`_welcome_step_due_sql`)."""
    return max(since + delay, now, paused_until or now)


def _welcome_step_due_sql(*, since: str, delay: str, now: str, paused_until: str) -> str:
    """Return `welcome_step_due` as SQL over the given expressions (PostgreSQL)."""
    return f"GREATEST({since} + {delay}, {now}, COALESCE({paused_until}, {now}))"


def provisional_due(*, contact: Contact, now: datetime, policies: Policies) -> datetime:
    """Return where a claim moves a schedule after the welcome series: one interval on. The send then
    places the next nurture mail exactly (`schedules_record_sends`); a lost send is repaired by the guard."""
    return now + effective_frequency(contact, policies).interval


def _interval_days_sql(params: list[Any], *, policies: Policies, alias: str = "due") -> str:
    """Return the effective interval in days as SQL over `<alias>.potential` and `<alias>.frequency`, from
    `effective_table` (the chosen frequency, capped by the potential's policy)."""
    whens = []
    for frequency, potential, applied in effective_table(policies):
        whens.append(f"WHEN {alias}.potential = %s AND {alias}.frequency = %s THEN %s")
        params.extend([potential, frequency, applied.days])
    params.append(frequencies()[-1].days)
    return f"(CASE {' '.join(whens)} ELSE %s END)"


def claim_move_sql(params: list[Any], *, steps: list[WelcomeStep], now: datetime) -> str:
    """Return the UPDATE that moves claimed schedules on (the SQL claim; `schedule_claim_move` is the same in
    Python), appending its parameters to `params`. It reads the CTE `due` (row_id, old_step, since,
    paused_until, potential, frequency) and returns each schedule's contact_id, new slot and old step.

    Next due: the next welcome step's `welcome_step_due`, or after the series `provisional_due`.
    """
    step_due = _welcome_step_due_sql(
        since="due.since", delay="(%s::interval[])[due.old_step + 2]", now="%s", paused_until="due.paused_until"
    )
    params.extend([len(steps), [step.delay for step in steps], now, now, now])
    days = _interval_days_sql(params, policies=cadence_policies())
    params.extend([len(steps), now])
    return f"""
        UPDATE cadence_schedule s
        SET slot = s.slot + 1,
            next_due_at = CASE WHEN due.old_step + 1 < %s THEN {step_due} ELSE %s + make_interval(days => {days}) END,
            welcome_step = LEAST(due.old_step + 1, GREATEST(%s, due.old_step)),
            updated_at = %s
        FROM due
        WHERE s.ctid = due.row_id
        RETURNING s.contact_id, s.slot, due.old_step
    """


def schedule_claim_move(schedule: Schedule, *, steps: list[WelcomeStep], now: datetime, policies: Policies) -> int:
    """Move a claimed schedule on in memory (the Python claim; save with `schedules_save_claims`):
    the next slot, the next welcome step, and its next due time. Return the step it was at."""
    contact = schedule.contact
    old_step = schedule.welcome_step
    schedule.slot += 1
    if old_step < len(steps):
        schedule.welcome_step = old_step + 1
    if schedule.welcome_step < len(steps):
        schedule.next_due_at = welcome_step_due(
            since=contact.confirmed_at or schedule.created_at,
            delay=steps[schedule.welcome_step].delay,
            now=now,
            paused_until=contact.paused_until,
        )
    else:
        schedule.next_due_at = provisional_due(contact=contact, now=now, policies=policies)
    return old_step


def schedules_save_claims(schedules: list[Schedule]) -> None:
    """Write the moves made by `schedule_claim_move`."""
    Schedule.objects.bulk_update(schedules, ["slot", "welcome_step", "next_due_at", "updated_at"])


def schedules_make_due(schedules: QuerySet[Schedule], *, now: datetime) -> int:
    """Make the schedules due now (the guard repairs silence; a lost nurture mail gets its slot back)."""
    return schedules.update(next_due_at=now, updated_at=now)


# MAY A MARKETING MAIL GO TO THIS PERSON NOW
# One rule, written once in Python and rendered from the same intervals as a filter and as SQL: the
# tick's claim, re-engagement and announcements all ask it.


def marketing_may_go(*, last_sent_at: datetime | None, interval: timedelta, now: datetime) -> bool:
    """Return whether a marketing mail outside the welcome series may go now: the last marketing mail
    (if any) went out at least one effective interval ago, in real elapsed time."""
    return last_sent_at is None or now - last_sent_at >= interval


def effective_intervals(policies: Policies) -> list[tuple[str, str, timedelta]]:
    """Return (potential, frequency, effective interval) for every combination, from `effective_table`."""
    return [(potential, frequency, applied.interval) for frequency, potential, applied in effective_table(policies)]


def marketing_may_go_q(*, now: datetime, policies: Policies | None = None) -> Q:
    """Return `marketing_may_go` as a filter over contacts (by their schedule's last marketing mail)."""
    allowed = Q(schedule__isnull=True) | Q(schedule__last_sent_at__isnull=True)
    for potential, frequency, interval in effective_intervals(policies or cadence_policies()):
        allowed |= Q(potential=potential, frequency=frequency, schedule__last_sent_at__lte=now - interval)
    return allowed


def marketing_may_go_sql(params: list[Any], *, now: datetime, last_sent_at: str, alias: str) -> str:
    """Return `marketing_may_go` as SQL over the column `last_sent_at` and `<alias>.potential`/`.frequency`
    (the contact), appending its parameters to `params`."""
    params.append(now)
    days = _interval_days_sql(params, policies=cadence_policies(), alias=alias)
    return f"({last_sent_at} IS NULL OR {last_sent_at} <= %s - make_interval(days => {days}))"


def schedules_take_slots(*, contacts: list[Contact], now: datetime, policies: Policies | None = None) -> set[Any]:
    """Take the next marketing slot of every contact a marketing mail may go to now (`marketing_may_go`, and
    no other marketing mail on its way) for a mail outside the tick; return their ids. Their nurture mail
    comes one interval after this one (the send moves it exactly). A few queries for the whole list; call
    inside a transaction (the schedules are locked; a concurrent tick skips them)."""
    if not contacts:
        return set()
    policies = policies or cadence_policies()
    ids = [contact.pk for contact in contacts]
    schedules = {
        schedule.contact_id: schedule
        for schedule in Schedule.objects.select_for_update().filter(contact_id__in=ids).order_by("contact_id")
    }
    busy = set(
        Delivery.objects.filter(
            contact_id__in=ids, marketing=True, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
        ).values_list("contact_id", flat=True)
    )
    taken: set[Any] = set()
    moved: list[Schedule] = []
    for contact in contacts:
        schedule = schedules.get(contact.pk)
        interval = effective_frequency(contact, policies).interval
        last_sent_at = schedule.last_sent_at if schedule is not None else None
        if contact.pk in busy or not marketing_may_go(last_sent_at=last_sent_at, interval=interval, now=now):
            continue
        taken.add(contact.pk)
        if schedule is not None:
            schedule.next_due_at, schedule.updated_at = max(schedule.next_due_at, now + interval), now
            moved.append(schedule)
    Schedule.objects.bulk_update(moved, ["next_due_at", "updated_at"], batch_size=1000)
    return taken


def schedule_take_slot(*, contact: Contact, interval: timedelta, now: datetime) -> bool:
    """Take the contact's next marketing slot for a mail outside the tick (re-engagement) and return True,
    or return False when one may not go now: the last marketing mail is younger than the interval, or
    another marketing mail is on its way. Call inside a transaction (the schedule's row is locked).
    """
    schedule = Schedule.objects.select_for_update().filter(contact=contact).first()
    last_sent_at = schedule.last_sent_at if schedule is not None else None
    if not marketing_may_go(last_sent_at=last_sent_at, interval=interval, now=now):
        return False
    pending = Delivery.objects.filter(
        contact=contact, marketing=True, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    )
    if pending.exists():
        return False
    if schedule is not None:
        # The nurture mail that was due now comes one interval after this one (the send moves it exactly).
        Schedule.objects.filter(pk=schedule.pk).update(next_due_at=now + interval, updated_at=now)
    return True


def schedules_create_from_history(*, history: list[tuple[Contact, datetime, int, int]]) -> None:
    """Create the schedules of contacts with a mail history: (contact, last marketing mail, welcome step,
    slot). Each is due at its next welcome step (`welcome_step_due`) or, after the series, at its next
    nurture slot (`nurture_due`). For imported or demo history."""
    now = timezone.now()
    steps = welcome_series()
    schedules = []
    for contact, last_sent_at, step, slot in history:
        if step < len(steps):
            next_due = welcome_step_due(
                since=contact.confirmed_at or now, delay=steps[step].delay, now=now, paused_until=contact.paused_until
            )
        else:
            next_due = nurture_due(contact=contact, last_sent_at=last_sent_at, now=now)
        schedules.append(
            Schedule(contact=contact, last_sent_at=last_sent_at, welcome_step=step, slot=slot, next_due_at=next_due)
        )
    Schedule.objects.bulk_create(schedules, batch_size=2000)


def schedules_create_after_sends(*, sends: list[tuple[Contact, datetime]]) -> None:
    """Create the schedules of contacts past their welcome series whose last marketing mail went out at
    the given time, each due at its next nurture slot (`schedules_create_from_history`)."""
    past_the_series = len(welcome_series()) or 1
    schedules_create_from_history(history=[(contact, last, past_the_series, 0) for contact, last in sends])


_series_cache: tuple[float, int] = (0.0, 0)


def series_length() -> int:
    """Return the number of active welcome steps, read at most every 30 seconds per process."""
    global _series_cache
    read_at, length = _series_cache
    if time.monotonic() - read_at > 30:
        length = WelcomeStep.objects.filter(is_active=True).count()
        _series_cache = (time.monotonic(), length)
    return length


@transaction.atomic
def schedule_start(*, contact: Contact) -> Schedule:
    """Start (or restart) a confirmed contact's schedule and queue the first welcome mail at once.

    The next step of the welcome series becomes due after its delay; after the series, nurture.
    """
    now = timezone.now()
    steps = welcome_series()
    schedule = Schedule.objects.select_for_update().filter(contact=contact).first()
    if schedule is None:
        if len(steps) > 1:
            next_due = welcome_step_due(
                since=contact.confirmed_at or now, delay=steps[1].delay, now=now, paused_until=contact.paused_until
            )
        else:
            # Moved again when the welcome is sent.
            next_due = provisional_due(contact=contact, now=now, policies=cadence_policies())
        schedule = Schedule.objects.create(contact=contact, next_due_at=next_due, welcome_step=1)
    else:
        schedule.is_active = True
        schedule.next_due_at = nurture_due(contact=contact, last_sent_at=schedule.last_sent_at, now=now)
        schedule.save(update_fields=["is_active", "next_due_at", "updated_at"])
    delivery_create(
        contact=contact,
        kind=Kind.WELCOME,
        template=steps[0].template if steps else "welcome",
        idempotency_key=welcome_key(contact.id, 0),
        marketing=True,
        queue=Delivery.Queue.WELCOME,
        enqueue=delivery_enqueue,
    )
    return schedule


def schedule_reschedule(*, contact: Contact) -> Schedule | None:
    """Move the schedule after a change of frequency, pause or status. Return it, or None without one.

    A frequency change counts from the last mail, so it never causes a second mail within the new interval.
    """
    now = timezone.now()
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(contact_id=contact.pk).first()
        if schedule is None:
            return None
        contact = Contact.objects.get(pk=contact.pk)
        schedule.is_active = contact.status == Contact.Status.CONFIRMED and contact.suppressed_at is None
        steps = welcome_series()
        if schedule.welcome_step < len(steps):
            schedule.next_due_at = welcome_step_due(
                since=contact.confirmed_at or schedule.created_at,
                delay=steps[schedule.welcome_step].delay,
                now=now,
                paused_until=contact.paused_until,
            )
        else:
            schedule.next_due_at = nurture_due(contact=contact, last_sent_at=schedule.last_sent_at, now=now)
        schedule.save(update_fields=["is_active", "next_due_at", "updated_at"])
        return schedule


def schedule_stop(*, contact: Contact) -> int:
    """Deactivate the contact's schedule (unsubscribed or suppressed). Return 1 when one was active."""
    return schedules_stop(contact_ids=[contact.pk])


def schedules_stop(*, contact_ids: list[Any]) -> int:
    """Deactivate the contacts' schedules in one statement. Return how many were active."""
    return Schedule.objects.filter(contact_id__in=contact_ids, is_active=True).update(
        is_active=False, updated_at=timezone.now()
    )


def schedules_record_sends(*, deliveries: list[Delivery], policies: Policies | None = None) -> int:
    """Record that marketing mails went out, in one UPDATE: each schedule's last mail, and after the welcome
    series its next nurture mail (sent_at + interval in the contact's zone and send window, with jitter).

    A schedule that already records a later mail is left alone. Return how many schedules moved.
    `policies` (load_policies) saves reading them when the caller has them.
    """
    latest: dict[Any, Delivery] = {}
    for delivery in deliveries:
        if delivery.sent_at is None:
            continue
        known = latest.get(delivery.contact_id)
        if known is None or known.sent_at is None or known.sent_at < delivery.sent_at:
            latest[delivery.contact_id] = delivery
    if not latest:
        return 0
    if policies is None:
        policies = load_policies()
    window = send_window()
    intervals: dict[tuple[str, str], timedelta] = {}
    zones: dict[str, ZoneInfo] = {}
    rows = []
    for contact_id, delivery in latest.items():
        contact = delivery.contact
        assert delivery.sent_at is not None
        interval = intervals.get((contact.frequency, contact.potential))
        if interval is None:
            interval = intervals[contact.frequency, contact.potential] = effective_frequency(contact, policies).interval
        tz = zones.get(contact.time_zone)
        if tz is None:
            tz = zones[contact.time_zone] = rules.zone(contact.time_zone, settings.DEFAULT_CONTACT_TIMEZONE)
        next_due = rules.next_due(
            last_sent_at=delivery.sent_at,
            interval=interval,
            tz=tz,
            window=window,
            jitter_key=nurture_jitter_key(contact_id, delivery.sent_at),
            paused_until=contact.paused_until,
        )
        rows.append((contact_id, delivery.sent_at, next_due))
    cte, params = values_cte(Schedule, ["contact_id", "last_sent_at", "next_due_at"], rows)
    table = connection.ops.quote_name(Schedule._meta.db_table)
    now = Schedule._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    sql = (
        f"{cte} UPDATE {table} SET last_sent_at = v.last_sent_at, "
        f"next_due_at = CASE WHEN {table}.welcome_step >= %s THEN v.next_due_at ELSE {table}.next_due_at END, "
        f"updated_at = %s FROM v WHERE {table}.contact_id = v.contact_id "
        f"AND ({table}.last_sent_at IS NULL OR {table}.last_sent_at < v.last_sent_at)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, series_length(), now])
        return changed_rows(cursor)
