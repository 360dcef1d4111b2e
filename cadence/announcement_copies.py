"""Each person's copy of a marketing announcement, and the mail that carries it.

A copy waits (`pending`) until the person's next marketing mail, or goes in a mail of its own when the
person's cadence allows one now. A batch claims the copies its mails carry in one statement
(`copies_claim`): a copy rides in exactly one mail at a time, and a mail that was not sent gives it
back. Once its mail is sent the copy is delivered (`copies_record`): one per person, ever, by the
unique key on (announcement, contact).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from cadence.kinds import Kind
from cadence.models import Announcement, AnnouncementRecipient
from messaging.bulk_sql import values_cte
from messaging.models import Delivery

# The marketing mails of a person's own schedule: each carries the copies that wait for it.
CARRIER_KINDS = frozenset({Kind.NURTURE, Kind.REENGAGEMENT, Kind.WELCOME})
# A carrier whose delivery is in one of these may still go out: its copies stay with it.
_LIVE = (Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT)


def carries_copies(delivery: Delivery) -> bool:
    """Return whether the delivery carries announcement copies: a marketing mail of the person's schedule,
    or a marketing announcement's mail of its own."""
    return delivery.marketing and (delivery.kind in CARRIER_KINDS or delivery.kind == Kind.ANNOUNCEMENT)


@dataclass
class Claimed:
    """The copies a batch carries: announcements by delivery id (in claim order), and the announcements."""

    by_delivery: dict[str, list[Announcement]] = field(default_factory=dict)

    def for_delivery(self, delivery_id: str) -> list[Announcement]:
        return self.by_delivery.get(delivery_id, [])


def copies_claim(deliveries: Iterable[Delivery]) -> Claimed:
    """Claim, for each carrier, the copies of its person that wait (or that rode in a mail that did not go),
    in one UPDATE for the whole batch, and return them. A marketing announcement's own mail claims its own
    copy and every other copy that waits (it is the person's next mail); a mail of the schedule claims
    every copy that waits.
    """
    rows = [
        (
            delivery.contact_id,
            delivery.id,
            delivery.context.get("announcement_id") if delivery.kind == Kind.ANNOUNCEMENT else None,
        )
        for delivery in deliveries
        if carries_copies(delivery)
    ]
    claimed = Claimed()
    if not rows:
        return claimed
    cte, params = values_cte(AnnouncementRecipient, ["contact_id", "delivered_in", "announcement_id"], rows)
    table = connection.ops.quote_name(AnnouncementRecipient._meta.db_table)
    deliveries_table = connection.ops.quote_name(Delivery._meta.db_table)
    live = ", ".join("%s" for _ in _LIVE)
    sql = (
        f"{cte} UPDATE {table} SET state = %s, delivered_in = v.delivered_in FROM v "
        f"WHERE {table}.contact_id = v.contact_id "
        f"AND (v.announcement_id IS NULL OR {table}.announcement_id = v.announcement_id OR {table}.state = %s) "
        f"AND ({table}.state = %s OR ({table}.state = %s AND ({table}.delivered_in = v.delivered_in "
        f"OR NOT EXISTS (SELECT 1 FROM {deliveries_table} d WHERE d.id = {table}.delivered_in "
        f"AND d.status IN ({live}))))) "
        f"RETURNING {table}.announcement_id, {table}.delivered_in"
    )
    state = AnnouncementRecipient.State
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, state.RIDING, state.PENDING, state.PENDING, state.RIDING, *_LIVE])
        returned = cursor.fetchall()
    if not returned:
        return claimed
    announcements = Announcement.objects.in_bulk({announcement_id for announcement_id, _ in returned})
    uuid_field = AnnouncementRecipient._meta.get_field("delivered_in")
    for announcement_id, delivered_in in sorted(returned, key=lambda row: row[0]):
        delivery_id = str(uuid_field.to_python(delivered_in))
        announcement = announcements.get(announcement_id)
        if announcement is not None:
            claimed.by_delivery.setdefault(delivery_id, []).append(announcement)
    return claimed


def copies_record(deliveries: Iterable[Delivery]) -> None:
    """Deliver the copies carried by sent mails, and give back those of mails cancelled or failed (they
    wait for the person's next mail). A mail queued again for a retry keeps its copies."""
    sent: dict[Any, Any] = {}
    ended: list[Any] = []
    for delivery in deliveries:
        if delivery.status == Delivery.Status.SENT:
            sent[delivery.id] = delivery.sent_at or timezone.now()
        elif delivery.status in (Delivery.Status.CANCELLED, Delivery.Status.FAILED):
            ended.append(delivery.id)
    riding = AnnouncementRecipient.objects.filter(state=AnnouncementRecipient.State.RIDING)
    if sent:
        # The mails of one flush are recorded at one time.
        riding.filter(delivered_in__in=list(sent)).update(
            state=AnnouncementRecipient.State.DELIVERED, delivered_at=max(sent.values())
        )
    if ended:
        riding.filter(delivered_in__in=ended).update(state=AnnouncementRecipient.State.PENDING)
