"""Leaving, understood: what people chose on the way out (an alternative, or leaving) and why."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from preferences.models import Contact, LeaveFeedback

# A reason given on the page belongs to the choice made there, minutes before, not to an older one.
REASON_WINDOW = timedelta(hours=1)


def leave_record(*, contact: Contact, outcome: str) -> LeaveFeedback:
    """Record that the contact left or chose an alternative (less often, pause, fewer topics)."""
    return LeaveFeedback.objects.create(contact=contact, outcome=outcome, contact_source=contact.source[:100])


def leave_give_reason(*, contact: Contact, reason: str) -> LeaveFeedback | None:
    """Attach the optional reason to the contact's latest choice on the way out; return it, or None.

    A reason without a recent choice (an old page, a replayed form) is dropped.
    """
    if reason not in LeaveFeedback.Reason.values:
        return None
    latest = (
        LeaveFeedback.objects.filter(contact=contact, occurred_at__gte=timezone.now() - REASON_WINDOW)
        .order_by("-occurred_at", "-id")
        .first()
    )
    if latest is None:
        return None
    latest.reason = reason
    latest.save(update_fields=["reason"])
    return latest
