"""What messaging tells the cadence engine about ESP feedback. Receivers live in cadence.

No signal runs per mail sent: the send path calls and returns. ESP events are news from outside,
told once per processed batch of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from django.dispatch import Signal


class RecordedEvent(NamedTuple):
    """A new ESP event about a delivery, addressed to the delivery's contact."""

    contact_id: Any
    type: str  # DeliveryEvent.Type
    occurred_at: datetime


# Sent once per processed batch of ESP events with `events`: a list of RecordedEvent (the batch's new
# events addressed to their delivery's contact), inside the batch's transaction, so a receiver that
# fails makes the batch fail and be taken again.
delivery_events_recorded = Signal()

# A marketer resumed a send the brake held: its held deliveries are queued again. Sent once per resume,
# after the commit, with `send_key` and `delivery_ids`; the producer (cadence) puts them on their queues.
send_resumed = Signal()
