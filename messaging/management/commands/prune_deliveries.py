"""Prune deliveries past DELIVERY_RETENTION_DAYS (what beat does nightly)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from messaging.retention import deliveries_prune


class Command(BaseCommand):
    help = "Delete deliveries and ESP events older than DELIVERY_RETENTION_DAYS, keeping monthly counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--max-seconds", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        result = deliveries_prune(batch_size=options["batch_size"], max_seconds=options["max_seconds"])
        self.stdout.write(
            f"{result.deliveries} deliveries and {result.events} events pruned in {result.batches} batches, "
            f"{result.seconds:.1f} s" + ("" if result.done else " (more left: run again)")
        )
