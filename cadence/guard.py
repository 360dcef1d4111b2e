"""The silence guard: count who is owed mail and silent, recover lost sends, make the silent due now."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from cadence import keys, rules, schedules
from cadence.enqueue import deliveries_enqueue, delivery_enqueue
from cadence.kinds import Kind
from cadence.models import Schedule
from messaging.models import Delivery, DeliveryEvent
from messaging.services import delivery_create
from preferences.frequencies import frequencies
from preferences.models import Contact, marketable_q
from preferences.policy import effective_table

logger = logging.getLogger(__name__)


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
        error_class=Delivery.ErrorClass.NONE,
        updated_at=now,
    )
    if changed and delivery.marketing:
        delivery.sent_at = sent_at
        schedules.schedules_record_sends(deliveries=[delivery])
    return bool(changed)


@transaction.atomic
def _replace_lost(delivery: Delivery, *, now: datetime) -> bool:
    """Mark a delivery stuck in "sending" as lost and replace it, in one transaction. Return False when
    another process changed it first.

    A nurture mail's slot comes back (the schedule is due now); any other kind is sent again, late,
    under `keys.late_key()`: a confirmation, reminder or announcement is never dropped.
    """
    changed = Delivery.objects.filter(id=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.FAILED,
        error="lost: the worker stopped while sending; replaced",
        error_class=Delivery.ErrorClass.LOST,
        updated_at=now,
    )
    if not changed:
        return False
    if delivery.kind == Kind.NURTURE:
        schedules.schedules_make_due(Schedule.objects.filter(contact_id=delivery.contact_id, is_active=True), now=now)
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
        delivery.error_class == Delivery.ErrorClass.LOST
        or Delivery.objects.filter(idempotency_key=keys.late_key(delivery.idempotency_key)).exists()
    ):
        return "replaced"
    if DeliveryEvent.objects.filter(delivery_id=delivery.pk).exists():
        return "reported by the ESP"
    return ""


def _owed_mail(*, now: datetime) -> Q:
    """Return the filter for schedules the cadence owes mail now: active, and their contact marketable now
    (`marketable_q`: a paused person is owed nothing until the pause ends, to the guard, health and ops)."""
    return Q(is_active=True) & marketable_q(now, via="contact__")


def silent_schedules(*, now: datetime) -> Q:
    """Return the filter for schedules whose subscriber is silent: reachable, not paused, and no marketing
    mail for longer than their interval (as the potential's policy caps it) plus the grace."""
    by_frequency = Q(pk__in=[])
    known = set()
    for frequency, potential, applied in effective_table(schedules.cadence_policies()):
        known.add(frequency)
        cutoff = now - applied.interval - rules.grace(applied.interval)
        by_frequency |= Q(contact__frequency=frequency, contact__potential=potential, last_sent_at__lt=cutoff) & (
            Q(contact__paused_until__isnull=True) | Q(contact__paused_until__lt=cutoff)
        )
    # A frequency no longer offered counts as the least frequent one.
    longest = frequencies()[-1]
    cutoff = now - longest.interval - rules.grace(longest.interval)
    by_frequency |= (
        Q(last_sent_at__lt=cutoff)
        & (Q(contact__paused_until__isnull=True) | Q(contact__paused_until__lt=cutoff))
        & ~Q(contact__frequency__in=known)
    )
    return _owed_mail(now=now) & by_frequency


def welcome_overdue_schedules(*, now: datetime) -> Q:
    """Return the filter for confirmed, reachable contacts still without any marketing mail ten minutes on."""
    return _owed_mail(now=now) & Q(
        last_sent_at__isnull=True, contact__confirmed_at__lt=now - rules.WELCOME_OVERDUE_AFTER
    )


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
        marketing=True,
        status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING],
    )
    for condition in (silent_schedules(now=now), welcome_overdue_schedules(now=now)):
        ids = Schedule.objects.filter(condition, next_due_at__gt=now).exclude(Exists(pending)).values("pk")
        schedules.schedules_make_due(Schedule.objects.filter(pk__in=ids), now=now)
    logger.info("silence guard", extra=counts.as_dict())
    return counts
