"""The reminder tick: service reminders before a product renews or ends, at the contact's local send hour."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from cadence import keys
from cadence.enqueue import deliveries_enqueue
from cadence.kinds import Kind
from cadence.models import ReminderRule
from messaging.models import Delivery
from preferences.models import Product

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.DEFAULT_CONTACT_TIMEZONE)


def is_send_time(
    time_zone: str,
    reminder_day: date,
    now: datetime,
    send_hour: int,
    *,
    catch_up_days: int = 0,
    event_date: date | None = None,
) -> bool:
    """Return whether, in `time_zone`, it is `reminder_day` and the send hour has come, or `reminder_day` was
    one of the last `catch_up_days` days (a tick missed while beat was down) and `event_date` has not passed."""
    local = now.astimezone(_zone(time_zone))
    today = local.date()
    if reminder_day == today:
        return local.hour >= send_hour
    missed = today - timedelta(days=catch_up_days) <= reminder_day < today
    return missed and (event_date is None or event_date >= today)


def _products_due(rule: ReminderRule, reminder_day: date, now: datetime, send_hour: int) -> QuerySet[Product]:
    """Return the products whose reminder under `rule` is due now and was not created yet."""
    event_date = reminder_day + timedelta(days=rule.days_before)
    products = Product.objects.filter(
        product_type=rule.product_type,
        contact__suppressed_at__isnull=True,
        contact__service_reminders=True,
        **{rule.date_field: event_date},
    ).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=reminder_day))
    if rule.event == ReminderRule.Event.RENEWAL:
        # A product that ends before its renewal date does not renew.
        products = products.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=F("renews_on")))
    # Few distinct time zones hold a product due on one date: pick those where the send hour has come.
    zones = set(products.order_by().values_list("contact__time_zone", flat=True).distinct())
    catch_up = settings.REMINDER_CATCH_UP_DAYS
    due_zones = [
        zone
        for zone in zones
        if is_send_time(zone, reminder_day, now, send_hour, catch_up_days=catch_up, event_date=event_date)
    ]
    prefix, suffix = keys.reminder_key("|", rule.pk, event_date).split("|")
    key = Concat(Value(prefix), Cast("pk", CharField()), Value(suffix), output_field=CharField())
    already = Delivery.objects.filter(idempotency_key=OuterRef("reminder_key"))
    return (
        products.filter(contact__time_zone__in=due_zones)
        .annotate(reminder_key=key)
        .exclude(Exists(already))
        .only("pk", "contact_id", "name")
        .order_by("pk")
    )


def reminders_create_due(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Create and enqueue (on the bulk queue) every reminder due now. Return how many were created.

    A reminder is due on its event date minus the rule's days, once the contact's local clock has
    reached REMINDER_SEND_HOUR. A reminder day missed in the last REMINDER_CATCH_UP_DAYS (beat was down) is
    caught up, unless its event date has passed. Running the tick again, or twice at once, creates nothing new.
    """
    now = now or timezone.now()
    send_hour = settings.REMINDER_SEND_HOUR
    utc_today = now.astimezone(ZoneInfo("UTC")).date()
    # Every time zone on earth is within a day of UTC, so one of these is each contact's today; the days
    # before it catch up reminders a tick missed while beat was down (REMINDER_CATCH_UP_DAYS).
    first = utc_today - timedelta(days=1 + settings.REMINDER_CATCH_UP_DAYS)
    candidate_days = [first + timedelta(days=n) for n in range((utc_today + timedelta(days=1) - first).days + 1)]
    created = 0
    for rule in ReminderRule.objects.filter(active=True):
        for reminder_day in candidate_days:
            event_date = reminder_day + timedelta(days=rule.days_before)
            products = _products_due(rule, reminder_day, now, send_hour)
            last_pk = 0
            while True:
                batch = list(products.filter(pk__gt=last_pk)[:batch_size])
                if not batch:
                    break
                last_pk = batch[-1].pk
                created += _create_batch(rule, batch, event_date)
    if created:
        logger.info("reminders created", extra={"count": created})
    return created


@transaction.atomic
def _create_batch(rule: ReminderRule, products: list[Product], event_date: date) -> int:
    """Insert one batch of reminders in one statement; enqueue, after commit, those this call inserted."""
    deliveries = [
        Delivery(
            contact_id=product.contact_id,
            kind=Kind.REMINDER,
            template=rule.template_name,
            idempotency_key=keys.reminder_key(product.pk, rule.pk, event_date),
            marketing=False,
            queue=Delivery.Queue.BULK,
            context={
                "product_id": product.pk,
                "product_name": product.name,
                "event": rule.event,
                "event_date": event_date.isoformat(),
                "days_before": rule.days_before,
            },
        )
        for product in products
    ]
    # A key taken by a concurrent tick is skipped; the ids made here exist only for rows inserted here.
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    inserted = [
        str(pk) for pk in Delivery.objects.filter(id__in=[d.id for d in deliveries]).values_list("id", flat=True)
    ]
    if inserted:
        transaction.on_commit(lambda: deliveries_enqueue(inserted, queue=Delivery.Queue.BULK))
    return len(inserted)
