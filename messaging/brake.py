"""The bounce and complaint brake: a send whose hard-bounce or complaint rate passes its threshold holds
the rest of itself until a marketer resumes or cancels it.

A send is every delivery with the same `send_key` (an announcement, a day's nurture round, one
import's contacts). Rates are counted over the send's mails sent within BRAKE_WINDOW_HOURS, once at
least BRAKE_MIN_SENDS went out (after a resume: only those sent since). Held deliveries keep their
row and key: nothing is lost while paused.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from messaging import signals
from messaging.models import Delivery, DeliveryEvent, SendBrake

logger = logging.getLogger(__name__)


def send_is_braked(send_key: str) -> bool:
    """Return whether producers must stop adding to this send."""
    return bool(send_key) and SendBrake.objects.filter(send_key=send_key, status=SendBrake.Status.HELD).exists()


def send_brake_check(*, send_key: str, now: datetime | None = None) -> SendBrake | None:
    """Hold the send's queued deliveries when its bounce or complaint rate is past the threshold.

    A send a marketer resumed is judged again on the mail sent after the resume only, so that the
    rate that stopped it does not stop it again at once, and a resumed send that keeps bouncing
    stops again. Return the SendBrake that now holds the send, or None (no key, too few sends,
    rates fine, held or cancelled already).
    """
    if not send_key:
        return None
    earlier = SendBrake.objects.filter(send_key=send_key).first()
    if earlier is not None and earlier.status != SendBrake.Status.RESUMED:
        return None
    now = now or timezone.now()
    since = now - timedelta(hours=settings.BRAKE_WINDOW_HOURS)
    if earlier is not None and earlier.decided_at is not None:
        since = max(since, earlier.decided_at)
    figures = Delivery.objects.filter(send_key=send_key, status=Delivery.Status.SENT, sent_at__gte=since).aggregate(
        sent=Count("id"),
        bounced=Count("id", filter=Q(feedback=DeliveryEvent.Type.BOUNCED)),
        complained=Count("id", filter=Q(feedback=DeliveryEvent.Type.COMPLAINED)),
    )
    sent = figures["sent"]
    if sent < settings.BRAKE_MIN_SENDS:
        return None
    if (
        figures["bounced"] / sent <= settings.BRAKE_BOUNCE_RATE
        and figures["complained"] / sent <= settings.BRAKE_COMPLAINT_RATE
    ):
        return None
    counts = {"sent": sent, "bounced": figures["bounced"], "complained": figures["complained"]}
    with transaction.atomic():
        if earlier is None:
            brake, created = SendBrake.objects.get_or_create(send_key=send_key, defaults=counts)
            if not created:
                return None
        else:
            # Held again: one row per send; the decision it replaces is in the log.
            held_again = SendBrake.objects.filter(
                pk=earlier.pk, status=SendBrake.Status.RESUMED, decided_at=earlier.decided_at
            ).update(status=SendBrake.Status.HELD, held_at=now, decided_by="", decided_at=None, **counts)
            if not held_again:
                return None
            logger.warning(
                "resumed send held again",
                extra={"send_key": send_key, "resumed_by": earlier.decided_by, **counts},
            )
            brake = SendBrake.objects.get(pk=earlier.pk)
        brake.held_count = Delivery.objects.filter(send_key=send_key, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.HELD
        )
        brake.save(update_fields=["held_count"])
    return brake


def send_resume(*, brake: SendBrake, user: str) -> int:
    """Queue the held deliveries of a braked send again and tell their producer (`send_resumed`, after the
    commit), which enqueues them. Return how many."""
    with transaction.atomic():
        brake = SendBrake.objects.select_for_update().get(pk=brake.pk)
        if brake.status != SendBrake.Status.HELD:
            return 0
        held = Delivery.objects.filter(send_key=brake.send_key, status=Delivery.Status.HELD)
        ids = [str(pk) for pk in held.values_list("id", flat=True)]
        Delivery.objects.filter(id__in=ids, status=Delivery.Status.HELD).update(status=Delivery.Status.QUEUED)
        brake.status, brake.decided_by, brake.decided_at = SendBrake.Status.RESUMED, user[:150], timezone.now()
        brake.save(update_fields=["status", "decided_by", "decided_at"])
        transaction.on_commit(
            partial(signals.send_resumed.send, sender=SendBrake, send_key=brake.send_key, delivery_ids=ids)
        )
    return len(ids)


def send_cancel(*, brake: SendBrake, user: str) -> int:
    """Cancel the held deliveries of a braked send for good. Return how many."""
    with transaction.atomic():
        brake = SendBrake.objects.select_for_update().get(pk=brake.pk)
        if brake.status != SendBrake.Status.HELD:
            return 0
        cancelled = Delivery.objects.filter(send_key=brake.send_key, status=Delivery.Status.HELD).update(
            status=Delivery.Status.CANCELLED, error="cancelled: send braked", error_class=Delivery.ErrorClass.CANCELLED
        )
        brake.status, brake.decided_by, brake.decided_at = SendBrake.Status.CANCELLED, user[:150], timezone.now()
        brake.save(update_fields=["status", "decided_by", "decided_at"])
    return cancelled
