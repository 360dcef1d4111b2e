"""The writes of the cadence engine: start and move schedules, claim due work, repair silence."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from cadence import keys, rules
from cadence.models import Schedule, WelcomeStep
from cadence.sending import deliveries_enqueue, delivery_enqueue, schedules_record_sends
from messaging.brake import send_is_braked
from messaging.models import Delivery, DeliveryEvent
from messaging.services import delivery_create
from preferences.frequencies import frequencies
from preferences.models import Contact
from preferences.policy import Policies, effective_frequency, load_policies

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


def nurture_due(
    *, contact: Contact, last_sent_at: datetime | None, slot: int, now: datetime, jitter_key: str = ""
) -> datetime:
    """Return when the contact's next nurture mail is due, given when the last marketing mail went out."""
    if last_sent_at is None:
        return max(now, contact.paused_until or now)
    return rules.next_due(
        last_sent_at=last_sent_at,
        interval=effective_frequency(contact, cadence_policies()).interval,
        tz=rules.zone(contact.time_zone, settings.DEFAULT_CONTACT_TIMEZONE),
        window=send_window(),
        jitter_key=jitter_key or f"{contact.id}:{slot}",
        paused_until=contact.paused_until,
    )


@transaction.atomic
def schedule_start(*, contact: Contact) -> Schedule:
    """Start (or restart) a confirmed contact's schedule and queue the first welcome mail at once.

    The next step of the welcome series becomes due after its delay; after the series, nurture.
    """
    now = timezone.now()
    steps = welcome_series()
    schedule = Schedule.objects.select_for_update().filter(contact=contact).first()
    if schedule is None:
        confirmed_at = contact.confirmed_at or now
        if len(steps) > 1:
            next_due = max(now, confirmed_at + steps[1].delay)
        else:
            # Moved again when the welcome is sent.
            next_due = now + effective_frequency(contact, cadence_policies()).interval
        schedule = Schedule.objects.create(contact=contact, next_due_at=next_due, welcome_step=1)
    else:
        schedule.is_active = True
        schedule.next_due_at = nurture_due(
            contact=contact, last_sent_at=schedule.last_sent_at, slot=schedule.slot, now=now
        )
        schedule.save(update_fields=["is_active", "next_due_at", "updated_at"])
    delivery_create(
        contact=contact,
        kind=Delivery.Kind.WELCOME,
        template=steps[0].template if steps else "welcome",
        idempotency_key=keys.welcome_key(contact.id, 0),
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
            due = (contact.confirmed_at or schedule.created_at) + steps[schedule.welcome_step].delay
            if contact.paused_until and contact.paused_until > due:
                due = contact.paused_until
            schedule.next_due_at = due
        else:
            schedule.next_due_at = nurture_due(
                contact=contact, last_sent_at=schedule.last_sent_at, slot=schedule.slot, now=now
            )
        schedule.save(update_fields=["is_active", "next_due_at", "updated_at"])
        return schedule


def schedule_stop(*, contact: Contact) -> int:
    """Deactivate the contact's schedule (unsubscribed or suppressed). Return 1 when one was active."""
    return Schedule.objects.filter(contact_id=contact.pk, is_active=True).update(
        is_active=False, updated_at=timezone.now()
    )


_series_cache: tuple[float, int] = (0.0, 0)


def series_length() -> int:
    """Return the number of active welcome steps, read at most every 30 seconds per process."""
    global _series_cache
    read_at, length = _series_cache
    if time.monotonic() - read_at > 30:
        length = WelcomeStep.objects.filter(is_active=True).count()
        _series_cache = (time.monotonic(), length)
    return length


# ---------------------------------------------------------------------------------------------- the tick


@dataclass
class TickResult:
    claimed: int = 0
    batches: int = 0
    seconds: float = 0.0
    batch_ids: list[list[str]] = field(default_factory=list, repr=False)


def schedules_claim_due(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    claim_size: int | None = None,
    max_batches: int | None = None,
    max_seconds: float | None = None,
    portable: bool | None = None,
    keep_ids: bool = False,
) -> TickResult:
    """Claim due schedules, create their Delivery rows in the same transaction, move them on, and once
    it commits enqueue one `send_batch` task per `batch_size` mails. Return what was claimed.

    Each transaction claims up to `claim_size` schedules (fewer, larger statements are cheaper).
    Stops after `max_batches` tasks or `max_seconds`, or when nothing is due; the next run continues.
    Safe to run concurrently: rows are locked with SKIP LOCKED and every mail has a unique key.
    With `keep_ids` the result lists the delivery ids of each batch (memory grows with the claims).
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.CADENCE_TICK_BATCH_SIZE
    claim_size = max(claim_size or settings.CADENCE_TICK_CLAIM_SIZE, batch_size)
    max_batches = max_batches or settings.CADENCE_TICK_MAX_BATCHES
    max_seconds = max_seconds or settings.CADENCE_TICK_MAX_SECONDS
    if portable is None:
        portable = connection.vendor != "postgresql"
    claim = _claim_batch_portable if portable else _claim_batch_postgres
    steps = welcome_series()
    # The day's nurture round is one send for the bounce and complaint brake; while it is braked the
    # tick claims welcome steps only, and nurture schedules stay due until a marketer resumes it.
    round_key = keys.nurture_send_key(now.astimezone(UTC).date())
    nurture_braked = send_is_braked(round_key)
    started = time.monotonic()
    result = TickResult()
    while result.batches < max_batches and time.monotonic() - started < max_seconds:
        limit = min(claim_size, (max_batches - result.batches) * batch_size)
        with transaction.atomic():
            ids, claimed = claim(
                now=now, limit=limit, steps=steps, nurture_send_key=round_key, nurture_braked=nurture_braked
            )
            batches = [ids[start : start + batch_size] for start in range(0, len(ids), batch_size)]
            for batch in batches:
                transaction.on_commit(partial(deliveries_enqueue, batch, queue=Delivery.Queue.BULK))
        result.batches += len(batches)
        if keep_ids:
            result.batch_ids += batches
        result.claimed += claimed
        if claimed < limit:
            break
    result.seconds = time.monotonic() - started
    logger.info("cadence tick", extra={"claimed": result.claimed, "batches": result.batches})
    return result


def _frequency_days_sql(params: list[Any]) -> str:
    """Return SQL for the interval in days of `due`: the chosen frequency, capped by the potential's policy."""
    options = frequencies()
    policies = cadence_policies()
    whens = []
    for potential in Contact.Potential.values:
        for frequency in options:
            probe = Contact(frequency=frequency.key, potential=potential)
            whens.append("WHEN due.potential = %s AND due.frequency = %s THEN %s")
            params.extend([potential, frequency.key, effective_frequency(probe, policies).days])
    params.append(options[-1].days)
    return f"(CASE {' '.join(whens)} ELSE %s END)"


def _claim_batch_postgres(
    *, now: datetime, limit: int, steps: list[WelcomeStep], nurture_send_key: str, nurture_braked: bool
) -> tuple[list[str], int]:
    """Claim, move and create deliveries in one statement. Return the new delivery ids and the claim count."""
    n = len(steps)
    templates = [step.template for step in steps]
    delays = [step.delay for step in steps]
    frequency_params: list[Any] = []
    frequency_days = _frequency_days_sql(frequency_params)
    columns, expressions, values = _delivery_columns(now)
    # Each claim moves the schedule on provisionally; the send places the next nurture mail exactly.
    sql = f"""
    WITH due AS (
        SELECT s.ctid AS row_id, s.contact_id, s.welcome_step AS old_step, c.frequency, c.potential, COALESCE(c.confirmed_at, s.created_at) AS since
        FROM cadence_schedule s JOIN preferences_contact c ON c.id = s.contact_id
        WHERE s.is_active AND s.next_due_at <= %s AND (NOT %s OR s.welcome_step < %s)
        ORDER BY s.next_due_at
        LIMIT %s
        FOR UPDATE OF s SKIP LOCKED
    ), moved AS (
        UPDATE cadence_schedule s
        SET slot = s.slot + 1,
            next_due_at = CASE
                WHEN due.old_step + 1 < %s THEN GREATEST(due.since + (%s::interval[])[due.old_step + 2], %s)
                ELSE %s + make_interval(days => {frequency_days})
            END,
            welcome_step = LEAST(due.old_step + 1, GREATEST(%s, due.old_step)),
            updated_at = %s
        FROM due
        WHERE s.ctid = due.row_id
        RETURNING s.contact_id, s.slot, due.old_step
    ), created AS (
        INSERT INTO messaging_delivery ({", ".join(columns)}, contact_id, kind, template, idempotency_key, send_key)
        SELECT {", ".join(expressions)}, m.contact_id,
            CASE WHEN m.old_step < %s THEN 'welcome' ELSE 'nurture' END,
            CASE WHEN m.old_step < %s THEN (%s::text[])[m.old_step + 1] ELSE 'nurture' END,
            CASE WHEN m.old_step < %s THEN {keys.key_sql(keys.WELCOME, contact="m.contact_id", step="m.old_step")}
                 ELSE {keys.key_sql(keys.NURTURE, contact="m.contact_id", slot="m.slot")} END,
            CASE WHEN m.old_step < %s THEN '' ELSE %s END
        FROM moved m
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    )
    SELECT NULL::uuid, (SELECT count(*) FROM moved) UNION ALL SELECT id, NULL FROM created
    """
    params: list[Any] = [now, nurture_braked, n, limit, n, delays, now, now, *frequency_params, n, now, *values]
    params += [n, n, templates, n, n, nurture_send_key]
    with connection.cursor() as cursor:
        # Losing the last claims in a database crash is harmless: the claim, the moved schedules and the
        # deliveries vanish together, and a task for a delivery that does not exist sends nothing.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    claimed = next(row[1] for row in rows if row[0] is None)
    return [str(row[0]) for row in rows if row[0] is not None], claimed


def _delivery_columns(now: datetime) -> tuple[list[str], list[str], list[Any]]:
    """Return the Delivery columns other than contact, kind, template and key, the SQL for their values,
    and the parameters. Read from the model, so a field added later (with a default) needs no change here.
    """
    columns: list[str] = []
    expressions: list[str] = []
    values: list[Any] = []
    for model_field in Delivery._meta.concrete_fields:
        if (
            model_field.attname in {"contact_id", "kind", "template", "idempotency_key", "send_key"}
            or model_field.column is None
        ):
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.primary_key:
            expressions.append("gen_random_uuid()")
            continue
        expressions.append(f"CAST(%s AS {model_field.cast_db_type(connection)})")
        if model_field.attname in {"created_at", "updated_at"}:
            values.append(now)
        elif model_field.attname == "status":
            values.append(Delivery.Status.QUEUED)
        elif model_field.attname == "marketing":
            values.append(True)  # the welcome series and nurture mail
        elif model_field.attname == "queue":
            values.append(Delivery.Queue.BULK)
        else:
            values.append(model_field.get_db_prep_save(model_field.get_default(), connection))
    return columns, expressions, values


def _claim_batch_portable(
    *, now: datetime, limit: int, steps: list[WelcomeStep], nurture_send_key: str, nurture_braked: bool
) -> tuple[list[str], int]:
    """The same claim through the ORM, for SQLite (which serialises writers anyway)."""
    due = Schedule.objects.select_for_update(skip_locked=True).filter(is_active=True, next_due_at__lte=now)
    if nurture_braked:
        due = due.filter(welcome_step__lt=len(steps))
    schedules = list(due.select_related("contact").order_by("next_due_at")[:limit])
    ids = []
    policies = cadence_policies()
    for schedule in schedules:
        contact = schedule.contact
        old_step = schedule.welcome_step
        schedule.slot += 1
        if old_step < len(steps):
            kind, template, key = (
                Delivery.Kind.WELCOME,
                steps[old_step].template,
                keys.welcome_key(contact.id, old_step),
            )
            send_key = ""
            schedule.welcome_step = old_step + 1
        else:
            kind, template, key = Delivery.Kind.NURTURE, "nurture", keys.nurture_key(contact.id, schedule.slot)
            send_key = nurture_send_key
        if schedule.welcome_step < len(steps):
            schedule.next_due_at = max(
                now, (contact.confirmed_at or schedule.created_at) + steps[schedule.welcome_step].delay
            )
        else:
            schedule.next_due_at = now + effective_frequency(contact, policies).interval
        delivery = delivery_create(
            contact=contact,
            kind=kind,
            template=template,
            idempotency_key=key,
            marketing=True,
            queue=Delivery.Queue.BULK,
            send_key=send_key,
        )
        if delivery is not None:
            ids.append(str(delivery.id))
    Schedule.objects.bulk_update(schedules, ["slot", "welcome_step", "next_due_at", "updated_at"])
    return ids, len(schedules)


# ------------------------------------------------------------------------------------------- the guard


@dataclass
class SilenceCounts:
    silent: int = 0
    welcome_overdue: int = 0
    unreachable: int = 0
    lost_sends: int = 0
    requeued: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _esp_saw_it() -> Exists:
    """Return the condition "the ESP reported an event about this delivery": it was handed off, whatever its row says."""
    return Exists(DeliveryEvent.objects.filter(delivery_id=OuterRef("pk")))


def _record_sent_from_events(delivery: Delivery, *, from_status: str, now: datetime) -> bool:
    """Mark a delivery the ESP reported on as sent (at its first event); a marketing mail also moves the
    schedule as a send does. Return False when another process changed the row first."""
    first_event = DeliveryEvent.objects.filter(delivery_id=delivery.pk).aggregate(at=Min("occurred_at"))["at"]
    sent_at = min(first_event or now, now)
    changed = Delivery.objects.filter(id=delivery.pk, status=from_status).update(
        status=Delivery.Status.SENT,
        sent_at=sent_at,
        error="recorded as sent: the ESP reported on it after its worker stopped",
        updated_at=now,
    )
    if changed and delivery.is_marketing:
        delivery.sent_at = sent_at
        schedules_record_sends(deliveries=[delivery])
    return bool(changed)


@transaction.atomic
def _replace_lost(delivery: Delivery, *, now: datetime) -> bool:
    """Mark a delivery stuck in "sending" as lost and replace it, in one transaction. Return False when
    another process changed it first.

    A nurture mail's slot comes back (the schedule is due now); any other kind is sent again, late,
    under `keys.late_key()`: a confirmation, reminder or announcement is never dropped.
    """
    changed = Delivery.objects.filter(id=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.FAILED, error="lost: the worker stopped while sending; replaced", updated_at=now
    )
    if not changed:
        return False
    if delivery.kind == Delivery.Kind.NURTURE:
        Schedule.objects.filter(contact_id=delivery.contact_id, is_active=True).update(next_due_at=now)
    else:
        delivery_create(
            contact=delivery.contact,
            kind=delivery.kind,
            template=delivery.template,
            idempotency_key=keys.late_key(delivery.idempotency_key),
            marketing=delivery.marketing,
            queue=delivery.queue,
            context=delivery.context,
            send_key=delivery.send_key,
            enqueue=delivery_enqueue,
        )
    return True


def deliveries_recover_lost(*, now: datetime, stuck_after: timedelta | None = None) -> tuple[int, int]:
    """Recover deliveries of every kind whose send or task was lost. Return (lost, queued again).

    A delivery stuck in "sending" (its worker died) that the ESP reported on was handed off: it is
    recorded as sent. Any other is marked lost and replaced (`_replace_lost`). A delivery queued for
    four times as long without a task taking it is queued again; a queued one that the ESP reported
    on is recorded as sent instead.
    """
    stuck_after = stuck_after if stuck_after is not None else timedelta(minutes=settings.CADENCE_STUCK_SENDING_MINUTES)
    lost = 0
    stuck = (
        Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=now - stuck_after)
        .annotate(esp_saw_it=_esp_saw_it())
        .select_related("contact")[:5000]
    )
    for delivery in stuck:
        if delivery.esp_saw_it:
            _record_sent_from_events(delivery, from_status=Delivery.Status.SENDING, now=now)
        elif _replace_lost(delivery, now=now):
            lost += 1
    # Workers far behind are not a lost task: only what has waited four times as long is queued again.
    # A delivery waiting for a retry after a transient ESP error is not lost either until its longest
    # possible countdown has passed: queueing it sooner would send before the ESP's Retry-After.
    retry_wait = timedelta(seconds=max(settings.SEND_RETRY_BACKOFF_MAX, settings.SEND_RETRY_AFTER_MAX))
    waiting = list(
        Delivery.objects.filter(status=Delivery.Status.QUEUED, updated_at__lt=now - 4 * stuck_after)
        .exclude(attempts__gt=0, updated_at__gte=now - retry_wait - stuck_after)
        .annotate(esp_saw_it=_esp_saw_it())
        .only("id", "kind", "queue", "marketing", "contact_id", "idempotency_key", "context")[:20000]
    )
    requeued = 0
    by_queue: dict[str, list[Any]] = {}
    for delivery in waiting:
        if delivery.esp_saw_it:
            _record_sent_from_events(delivery, from_status=Delivery.Status.QUEUED, now=now)
            continue
        by_queue.setdefault(delivery.queue, []).append(delivery.pk)
    for queue, ids in by_queue.items():
        # Stamped as queued again now: the next run leaves them alone for another four times `stuck_after`
        # instead of adding a task for each of them every run (a flood that starves the workers).
        with transaction.atomic():
            restamped = list(
                Delivery.objects.filter(id__in=ids, status=Delivery.Status.QUEUED, updated_at__lt=now - 4 * stuck_after)
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            Delivery.objects.filter(id__in=restamped).update(updated_at=now)
        deliveries_enqueue(restamped, queue=queue)
        requeued += len(restamped)
    return lost, requeued


def delivery_retry_refusal(*, delivery_id: Any) -> str:
    """Return why ops must not send a failed delivery again ('' when it may be), holding its row lock
    until the transaction ends, so the guard cannot replace it meanwhile.

    Refused: what is not failed (sent, queued, cancelled), what the guard replaced (lost; a late
    copy exists) and what the ESP reported on (it went out). A lost delivery is never sent twice.
    """
    delivery = Delivery.objects.select_for_update().filter(id=delivery_id).first()
    if delivery is None:
        return "unknown"
    if delivery.status != Delivery.Status.FAILED or delivery.sent_at is not None:
        return "not failed"
    if (
        delivery.error.startswith("lost")
        or Delivery.objects.filter(idempotency_key=keys.late_key(delivery.idempotency_key)).exists()
    ):
        return "replaced"
    if DeliveryEvent.objects.filter(delivery_id=delivery.pk).exists():
        return "reported by the ESP"
    return ""


def owed_mail(*, now: datetime | None = None, via: str = "") -> Q:
    """Return the filter for contacts the cadence owes mail: confirmed and not suppressed, and with `now`,
    not paused at `now`. `via` is the path to the contact ("contact__" from a Schedule).

    The one definition behind "silent", "welcome overdue" and ops' "without a schedule".
    """
    condition = Q(**{f"{via}status": Contact.Status.CONFIRMED, f"{via}suppressed_at__isnull": True})
    if now is not None:
        condition &= Q(**{f"{via}paused_until__isnull": True}) | Q(**{f"{via}paused_until__lte": now})
    return condition


def _reachable() -> Q:
    return Q(is_active=True) & owed_mail(via="contact__")


def silent_schedules(*, now: datetime) -> Q:
    """Return the filter for schedules whose subscriber is silent: reachable, not paused, and no marketing
    mail for longer than their interval (as the potential's policy caps it) plus the grace."""
    by_frequency = Q(pk__in=[])
    known = []
    policies = cadence_policies()
    for frequency in frequencies():
        known.append(frequency.key)
        for potential in Contact.Potential.values:
            interval = effective_frequency(Contact(frequency=frequency.key, potential=potential), policies).interval
            cutoff = now - interval - rules.grace(interval)
            by_frequency |= Q(
                contact__frequency=frequency.key, contact__potential=potential, last_sent_at__lt=cutoff
            ) & (Q(contact__paused_until__isnull=True) | Q(contact__paused_until__lt=cutoff))
    # A frequency no longer offered counts as the least frequent one.
    longest = frequencies()[-1]
    cutoff = now - longest.interval - rules.grace(longest.interval)
    by_frequency |= Q(last_sent_at__lt=cutoff, contact__paused_until__isnull=True) & ~Q(contact__frequency__in=known)
    return _reachable() & by_frequency


def welcome_overdue_schedules(*, now: datetime) -> Q:
    """Return the filter for confirmed, reachable contacts still without any marketing mail ten minutes on."""
    return _reachable() & Q(last_sent_at__isnull=True, contact__confirmed_at__lt=now - rules.WELCOME_OVERDUE_AFTER)


def silence_count(*, now: datetime | None = None) -> SilenceCounts:
    """Return how many subscribers are silent, waiting too long for their welcome, or unreachable."""
    now = now or timezone.now()
    return SilenceCounts(
        silent=Schedule.objects.filter(silent_schedules(now=now)).count(),
        welcome_overdue=Schedule.objects.filter(welcome_overdue_schedules(now=now)).count(),
        unreachable=Schedule.objects.filter(
            contact__status=Contact.Status.CONFIRMED, contact__suppressed_at__isnull=False
        ).count(),
    )


GUARD_LOCK = "cadence:silence-guard:running"


def silence_repair(*, now: datetime | None = None, stuck_after: timedelta | None = None) -> SilenceCounts:
    """Count silence by reason, recover lost sends, and make every silent or welcome-overdue subscriber
    due now (unless paused). Return the counts found before the repair.

    One guard at a time: a run that finds another still going (a slow run while beat starts the next)
    only counts. The lock expires after CADENCE_GUARD_LOCK_SECONDS should its holder die.
    """
    now = now or timezone.now()
    token = uuid.uuid4().hex
    if not shared_cache.add(GUARD_LOCK, token, timeout=settings.CADENCE_GUARD_LOCK_SECONDS):
        logger.info("silence guard already running: this run only counts")
        return silence_count(now=now)
    try:
        return _silence_repair(now=now, stuck_after=stuck_after)
    finally:
        if shared_cache.get(GUARD_LOCK) == token:
            shared_cache.delete(GUARD_LOCK)


def _silence_repair(*, now: datetime, stuck_after: timedelta | None) -> SilenceCounts:
    counts = silence_count(now=now)
    counts.lost_sends, counts.requeued = deliveries_recover_lost(now=now, stuck_after=stuck_after)
    # A mail still on its way is not repaired with a second one: it counts as silent until it is sent.
    pending = Delivery.objects.filter(
        contact_id=OuterRef("pk"),
        kind__in=Delivery.MARKETING_KINDS,
        status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING],
    )
    for condition in (silent_schedules(now=now), welcome_overdue_schedules(now=now)):
        ids = (
            Schedule.objects.filter(condition & owed_mail(now=now, via="contact__"), next_due_at__gt=now)
            .exclude(Exists(pending))
            .values("pk")
        )
        Schedule.objects.filter(pk__in=ids).update(next_due_at=now, updated_at=now)
    logger.info("silence guard", extra=counts.as_dict())
    return counts
