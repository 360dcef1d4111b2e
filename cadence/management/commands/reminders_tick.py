"""Run the reminder tick once (what beat does every 15 minutes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cadence.reminders import reminders_create_due


class Command(BaseCommand):
    help = "Create and enqueue the renewal and end-date reminders due now."

    def handle(self, *args: Any, **options: Any) -> None:
        created = reminders_create_due()
        self.stdout.write(f"{created} reminder(s) created")
