"""The tick: claim due schedules, create their deliveries and queue them in batches."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cadence import keys, schedules
from cadence.enqueue import deliveries_enqueue
from cadence.kinds import Kind
from cadence.models import Schedule, WelcomeStep
from messaging.brake import send_is_braked
from messaging.models import Delivery
from messaging.services import delivery_create
from preferences.policy import effective_frequency

logger = logging.getLogger(__name__)


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
    steps = schedules.welcome_series()
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


def _claim_batch_postgres(
    *, now: datetime, limit: int, steps: list[WelcomeStep], nurture_send_key: str, nurture_braked: bool
) -> tuple[list[str], int]:
    """Claim, move and create deliveries in one statement. Return the new delivery ids and the claim count."""
    n = len(steps)
    templates = [step.template for step in steps]
    moved_params: list[Any] = []
    moved = schedules.claim_move_sql(moved_params, steps=steps, now=now)
    columns, expressions, values = _delivery_columns(now)
    may_go_params: list[Any] = []
    may_go = schedules.marketing_may_go_sql(may_go_params, now=now, last_sent_at="s.last_sent_at", alias="c")
    # Each claim moves the schedule on provisionally; the send places the next nurture mail exactly.
    sql = f"""
    WITH due AS (
        SELECT s.ctid AS row_id, s.contact_id, s.welcome_step AS old_step, c.frequency, c.potential, c.paused_until,
            COALESCE(c.confirmed_at, s.created_at) AS since
        FROM cadence_schedule s JOIN preferences_contact c ON c.id = s.contact_id
        WHERE s.is_active AND s.next_due_at <= %s AND (NOT %s OR s.welcome_step < %s)
            AND (s.welcome_step < %s OR {may_go})
        ORDER BY s.next_due_at
        LIMIT %s
        FOR UPDATE OF s SKIP LOCKED
    ), moved AS ({moved}), created AS (
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
    params: list[Any] = [now, nurture_braked, n, n, *may_go_params, limit, *moved_params, *values]
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
    due_schedules = list(due.select_related("contact").order_by("next_due_at")[:limit])
    ids = []
    policies = schedules.cadence_policies()
    claimed = []
    for schedule in due_schedules:
        contact = schedule.contact
        if schedule.welcome_step >= len(steps) and not schedules.marketing_may_go(
            last_sent_at=schedule.last_sent_at, interval=effective_frequency(contact, policies).interval, now=now
        ):
            continue  # the claim's SQL skips it the same way: it stays due until its interval has passed
        claimed.append(schedule)
        old_step = schedules.schedule_claim_move(schedule, steps=steps, now=now, policies=policies)
        if old_step < len(steps):
            kind, template = Kind.WELCOME, steps[old_step].template
            key, send_key = keys.welcome_key(contact.id, old_step), ""
        else:
            kind, template = Kind.NURTURE, "nurture"
            key, send_key = keys.nurture_key(contact.id, schedule.slot), nurture_send_key
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
    schedules.schedules_save_claims(claimed)
    return ids, len(claimed)
