"""Retention: deliveries and their ESP events older than DELIVERY_RETENTION_DAYS are pruned in batches,
and processed ESP webhook posts (EventPost) EVENT_POST_RETENTION_DAYS after they were processed.

Before a batch is deleted its rows are counted into DeliveryMonthlyCount (month, kind, status), so
monthly totals stay right. Nothing else reads old deliveries: the silence guard and the cadence rules
use `Schedule.last_sent_at`, relationship health reads events of the last HEALTH_SUNSET_AFTER_MONTHS
(shorter than the default retention), and only finished rows (sent, failed, cancelled) are pruned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from messaging.models import Delivery, DeliveryEvent, DeliveryMonthlyCount, EventPost

FINISHED = [str(Delivery.Status.SENT), str(Delivery.Status.FAILED), str(Delivery.Status.CANCELLED)]


@dataclass
class PruneResult:
    deliveries: int = 0
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    done: bool = False  # nothing older than the cutoff is left


PRUNE_SQL = """
WITH batch AS (
    SELECT id FROM messaging_delivery
    WHERE created_at < %(cutoff)s AND status = ANY(%(finished)s)
    ORDER BY created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM messaging_deliveryevent e USING batch WHERE e.delivery_id = batch.id RETURNING 1
), deliveries AS (
    DELETE FROM messaging_delivery d USING batch WHERE d.id = batch.id RETURNING d.kind, d.status, d.created_at
), counted AS (
    INSERT INTO messaging_deliverymonthlycount (month, kind, status, count)
    SELECT date_trunc('month', created_at AT TIME ZONE %(tz)s)::date, kind, status, count(*)
    FROM deliveries GROUP BY 1, 2, 3
    ON CONFLICT (month, kind, status) DO UPDATE SET count = messaging_deliverymonthlycount.count + EXCLUDED.count
    RETURNING 1
)
SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM events), (SELECT count(*) FROM counted)
"""


def _prune_batch(*, cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """Count, then delete one batch of the oldest finished deliveries before `cutoff` and their events."""
    if connection.vendor == "postgresql":
        # One statement: no rows through Python, and the counts move in the same transaction as the delete.
        params: dict[str, Any] = {"cutoff": cutoff, "finished": FINISHED, "limit": batch_size, "tz": settings.TIME_ZONE}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(PRUNE_SQL, params)
            deliveries, events, _months = cursor.fetchone()
        return deliveries, events
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(created_at__lt=cutoff, status__in=FINISHED)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch_size]
            .select_for_update(skip_locked=True)
        )
        if not ids:
            return 0, 0
        rows = (
            Delivery.objects.filter(id__in=ids)
            .annotate(month=TruncMonth("created_at", tzinfo=timezone.get_default_timezone()))
            .values("month", "kind", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            month = row["month"].date() if isinstance(row["month"], datetime) else row["month"]
            counted, created = DeliveryMonthlyCount.objects.select_for_update().get_or_create(
                month=month, kind=row["kind"], status=row["status"], defaults={"count": row["n"]}
            )
            if not created:
                counted.count += row["n"]
                counted.save(update_fields=["count"])
        events, _ = DeliveryEvent.objects.filter(delivery_id__in=ids).delete()
        _total, per_model = Delivery.objects.filter(id__in=ids).delete()
    return per_model.get(Delivery._meta.label, 0), events


def deliveries_prune(
    *, now: datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> PruneResult:
    """Prune deliveries older than DELIVERY_RETENTION_DAYS in batches until none is left or time is up."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.DELIVERY_RETENTION_DAYS)
    batch_size = batch_size or settings.DELIVERY_RETENTION_BATCH_SIZE
    max_seconds = settings.DELIVERY_RETENTION_MAX_SECONDS if max_seconds is None else max_seconds
    result = PruneResult()
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        deliveries, events = _prune_batch(cutoff=cutoff, batch_size=batch_size)
        if not deliveries:
            result.done = True
            break
        result.deliveries += deliveries
        result.events += events
        result.batches += 1
    result.seconds = time.monotonic() - started
    return result


def event_posts_prune(
    *, now: datetime | None = None, batch_size: int | None = None, max_seconds: float | None = None
) -> int:
    """Delete processed ESP posts processed more than EVENT_POST_RETENTION_DAYS ago, in batches; return how many.

    Their events are recorded (DeliveryEvent) and the raw body is kept only to look into recent ones.
    New posts wait for processing, and quarantined ones stay until an admin deletes them (they are the
    evidence of what could not be parsed).
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_POST_RETENTION_DAYS)
    batch_size = batch_size or settings.DELIVERY_RETENTION_BATCH_SIZE
    max_seconds = settings.DELIVERY_RETENTION_MAX_SECONDS if max_seconds is None else max_seconds
    pruned = 0
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        # Oldest first by primary key: the old processed posts are where the index starts.
        ids = list(
            EventPost.objects.filter(state=EventPost.State.PROCESSED, processed_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        deleted, _ = EventPost.objects.filter(id__in=ids, state=EventPost.State.PROCESSED).delete()
        pruned += deleted
    return pruned


def deliveries_monthly_totals() -> dict[tuple[str, str, str], int]:
    """Return deliveries per (YYYY-MM, kind, status): what is kept plus what was pruned."""
    totals: dict[tuple[str, str, str], int] = {}
    for row in DeliveryMonthlyCount.objects.values("month", "kind", "status", "count"):
        key = (f"{row['month']:%Y-%m}", row["kind"], row["status"])
        totals[key] = totals.get(key, 0) + row["count"]
    kept = (
        Delivery.objects.annotate(month=TruncMonth("created_at", tzinfo=timezone.get_default_timezone()))
        .values("month", "kind", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for kept_row in kept:
        key = (f"{kept_row['month']:%Y-%m}", kept_row["kind"], kept_row["status"])
        totals[key] = totals.get(key, 0) + kept_row["n"]
    return totals
