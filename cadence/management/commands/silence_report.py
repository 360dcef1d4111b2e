"""Print how many subscribers are silent, by reason; --repair makes them due now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cadence.guard import silence_count, silence_repair


class Command(BaseCommand):
    help = "Count silent, welcome-overdue and unreachable subscribers; with --repair, make them due now."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--repair", action="store_true")

    def handle(self, *args: Any, repair: bool, **options: Any) -> None:
        counts = silence_repair() if repair else silence_count()
        for reason, count in counts.as_dict().items():
            if repair or reason not in {"lost_sends", "requeued"}:
                self.stdout.write(f"{reason:16} {count}")
