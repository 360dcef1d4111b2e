"""How the cadence engine answers what preferences reports."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from cadence.services import schedule_start
from preferences import signals
from preferences.models import Contact


@receiver(signals.contact_confirmed)
def start_schedule(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_start(contact=contact)
