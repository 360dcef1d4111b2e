"""What messaging tells the cadence engine about ESP feedback. Receivers live in cadence.

No signal runs per mail sent: the send path calls and returns. A webhook event is news from outside.
"""

from __future__ import annotations

from django.dispatch import Signal

# An ESP reported something about a delivery (a webhook); sent once per new DeliveryEvent addressed to
# the delivery's contact, inside the transaction that records it, so a receiver that fails makes the
# webhook fail and the ESP send it again.
delivery_event_recorded = Signal()

# A marketer resumed a send the brake held: its held deliveries are queued again. Sent once per resume,
# after the commit, with `send_key` and `delivery_ids`; the producer (cadence) puts them on their queues.
send_resumed = Signal()
