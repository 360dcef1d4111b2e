"""Run the tick once: claim what is due now and enqueue the send tasks."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cadence.tick import schedules_claim_due


class Command(BaseCommand):
    help = "Claim due schedules (bounded per run), create their deliveries and enqueue one task per batch."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--max-batches", type=int, default=None)
        parser.add_argument("--max-seconds", type=float, default=None)

    def handle(
        self, *args: Any, batch_size: int | None, max_batches: int | None, max_seconds: float | None, **options: Any
    ) -> None:
        result = schedules_claim_due(batch_size=batch_size, max_batches=max_batches, max_seconds=max_seconds)
        self.stdout.write(f"claimed {result.claimed} in {result.batches} batches, {result.seconds:.2f} s")
