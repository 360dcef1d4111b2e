"""Recompute a contact's health when preferences reports a change (after the change commits)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from cadence.health_tasks import health_recompute_contact
from preferences import signals
from preferences.models import Contact


@receiver(signals.preferences_changed)
@receiver(signals.contact_suppressed)
@receiver(signals.contact_confirmed)
def recompute_health(sender: Any, contact: Contact, **kwargs: Any) -> None:
    contact_id = str(contact.pk)
    transaction.on_commit(lambda: health_recompute_contact.delay(contact_id))
