"""What messaging tells the cadence engine. Receivers live in cadence/receivers.py."""

from __future__ import annotations

from django.dispatch import Signal

# A delivery was handed to the ESP; `delivery` has its contact loaded and `sent_at` set.
delivery_sent = Signal()
# A message is being rendered; `delivery` is the one. A receiver may return a dict of extra template
# context (the nurture digest), merged into the context.
message_context_requested = Signal()
# An ESP reported something about a delivery (a webhook); sent once per new DeliveryEvent, inside the
# transaction that records it, so a receiver that fails makes the webhook fail and the ESP send it again.
delivery_event_recorded = Signal()
