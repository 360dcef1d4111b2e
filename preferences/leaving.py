"""Leaving, understood: what people chose on the way out (an alternative, or leaving) and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from preferences.frequencies import Frequency
from preferences.models import Contact, LeaveFeedback
from preferences.policy import allowed_frequencies, effective_frequency
from preferences.services import Evidence, contact_unsubscribe, contact_update_preferences

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


def contact_leave(*, contact: Contact, evidence: Evidence) -> bool:
    """Unsubscribe the contact from every email and record that they left; return False when already out."""
    left = contact_unsubscribe(contact=contact, evidence=evidence)
    if left:
        leave_record(contact=contact, outcome=LeaveFeedback.Outcome.LEFT)
    return left


def contact_choose_alternative(*, contact: Contact, evidence: Evidence, outcome: str, **changes: Any) -> None:
    """Apply the alternative to leaving the contact chose (`outcome`: less often, a pause, fewer topics) and
    record it; `changes` are contact_update_preferences' arguments."""
    contact_update_preferences(contact=contact, evidence=evidence, **changes)
    leave_record(contact=contact, outcome=outcome)


def less_often_options(contact: Contact) -> list[Frequency]:
    """Return the frequencies less frequent than the one applied now that the contact may choose."""
    applied = effective_frequency(contact)
    return [f for f in allowed_frequencies(contact) if f.days > applied.days]
