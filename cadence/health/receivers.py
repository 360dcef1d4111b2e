"""Keep relationship health current: recompute on preference changes, record ESP engagement and bounces."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.dispatch import receiver

from cadence.health.services import ENGAGEMENT_EVENTS, HEALTH_EVENTS, health_recompute
from cadence.models import ContactHealth
from cadence.tasks import health_recompute_contact, health_recompute_contacts
from messaging import signals as messaging_signals
from messaging.bulk_sql import values_cte
from messaging.models import DeliveryEvent
from preferences import signals
from preferences.models import Contact


@receiver(signals.preferences_changed)
@receiver(signals.contact_suppressed)
@receiver(signals.contact_confirmed)
def recompute_health(sender: Any, contact: Contact, **kwargs: Any) -> None:
    contact_id = str(contact.pk)
    transaction.on_commit(lambda: health_recompute_contact.delay(contact_id))


@receiver(signals.contacts_suppressed)
def recompute_health_of_many(sender: Any, contacts: list[Contact], **kwargs: Any) -> None:
    """One task for a batch's suppressed contacts (a task per contact cost a broker publish each)."""
    contact_ids = [str(contact.pk) for contact in contacts]
    transaction.on_commit(lambda: health_recompute_contacts.delay(contact_ids))


@receiver(messaging_signals.delivery_events_recorded, dispatch_uid="cadence.health_from_delivery_events")
def record_engagement(sender: Any, events: list[messaging_signals.RecordedEvent], **kwargs: Any) -> None:
    """Opens and clicks keep a relationship healthy (and end a sunset); bounces and complaints count too.

    Once per batch of ESP events: the batch's contacts' engagement is written in one statement and
    their health recomputed in one pass.
    """
    per_contact: dict[Any, list[Any]] = {}  # contact id -> [engaged at, bounces, last bounce, complained at]
    for event in events:
        if event.type not in HEALTH_EVENTS:
            continue
        row = per_contact.setdefault(event.contact_id, [None, 0, None, None])
        if event.type in ENGAGEMENT_EVENTS:
            row[0] = max(filter(None, (row[0], event.occurred_at)))
        elif event.type == DeliveryEvent.Type.BOUNCED:
            row[1] += 1
            row[2] = max(filter(None, (row[2], event.occurred_at)))
        else:
            row[3] = max(filter(None, (row[3], event.occurred_at)))
    if not per_contact:
        return
    ContactHealth.objects.bulk_create([ContactHealth(contact_id=pk) for pk in per_contact], ignore_conflicts=True)
    columns = ["contact_id", "last_engaged_at", "bounce_count", "last_bounce_at", "complained_at"]
    cte, params = values_cte(ContactHealth, columns, [(pk, *row) for pk, row in per_contact.items()])
    table = connection.ops.quote_name(ContactHealth._meta.db_table)
    h = table
    later = "CASE WHEN v.{0} IS NOT NULL AND ({1}.{0} IS NULL OR v.{0} > {1}.{0}) THEN v.{0} ELSE {1}.{0} END"
    sql = (
        f"{cte} UPDATE {table} SET "
        f"last_engaged_at = {later.format('last_engaged_at', h)}, "
        f"sunset_stage = CASE WHEN v.last_engaged_at IS NOT NULL THEN 0 ELSE {h}.sunset_stage END, "
        f"sunset_at = CASE WHEN v.last_engaged_at IS NOT NULL THEN NULL ELSE {h}.sunset_at END, "
        f"bounce_count = {h}.bounce_count + v.bounce_count, "
        f"last_bounce_at = {later.format('last_bounce_at', h)}, "
        f"complained_at = {later.format('complained_at', h)} "
        f"FROM v WHERE {h}.contact_id = v.contact_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    health_recompute(contact_ids=list(per_contact), act=False)
