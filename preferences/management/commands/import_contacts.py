"""Import contacts from a very large CSV file: streamed, validated first, applied in batches."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from preferences.crm import clean_row, contacts_upsert, row_keys

BATCH = 1000


class Progress:
    """A one-line progress bar on stderr (bytes read of the file)."""

    def __init__(self, total: int, label: str, stream: Any = sys.stderr) -> None:
        self.total, self.label, self.stream = max(total, 1), label, stream
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int, rows: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        share = min(done / self.total, 1.0)
        bar = "#" * int(share * 30)
        rate = rows / max(now - self.started, 1e-6)
        self.stream.write(f"\r{self.label} [{bar:<30}] {share:6.1%} {rows} rows {rate:,.0f}/s")
        self.stream.flush()

    def close(self, rows: int) -> None:
        self.update(self.total, rows, force=True)
        self.stream.write("\n")


def _rows(path: Path, progress: Progress) -> Any:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in reader.fieldnames:
            raise CommandError("The file needs a header line with at least an 'email' column.")
        for row in reader:
            progress.update(handle.buffer.tell() if hasattr(handle, "buffer") else 0, reader.line_num)
            yield reader.line_num, row


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file (columns: external_id, email, first_name, locale, share_of_customer, "
        "potential, source). The whole file is validated first; nothing is applied when a row is bad, "
        "unless --skip-bad-rows."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--skip-bad-rows", action="store_true", help="Apply the good rows and list the bad ones.")
        parser.add_argument("--source", default="import", help="Recorded as the source of new contacts and changes.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, file: Path, skip_bad_rows: bool, source: str, no_progress: bool, **opts: Any) -> None:
        if not file.exists():
            raise CommandError(f"{file} does not exist.")
        size = file.stat().st_size
        stream = open("/dev/null", "w") if no_progress else self.stderr._out  # noqa: SIM115
        bad: dict[int, dict[str, list[str]]] = {}
        seen: dict[str, int] = {}
        progress = Progress(size, "validating", stream)
        count = 0
        batch: list[tuple[int, dict[str, Any]]] = []

        def check_batch() -> None:
            results = contacts_upsert(rows=[r for _n, r in batch], source=source, dry_run=True)
            for (line, _row), result in zip(batch, results, strict=True):
                if result.status == "error":
                    bad[line] = result.errors
            batch.clear()

        for line, row in _rows(file, progress):
            count += 1
            cleaned, errors = clean_row(row)
            if cleaned is None:
                bad[line] = errors
                continue
            duplicate = next((seen[k] for k in row_keys(cleaned) if k in seen), None)
            if duplicate is not None:
                bad[line] = {"email": [f"duplicate of line {duplicate}"]}
                continue
            seen.update(dict.fromkeys(row_keys(cleaned), line))
            batch.append((line, cleaned))
            if len(batch) >= BATCH:
                check_batch()
        if batch:
            check_batch()
        progress.close(count)
        for line in sorted(bad)[:1000]:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in bad[line].items())
            self.stdout.write(f"line {line}: {details}")
        if len(bad) > 1000:
            self.stdout.write(f"... and {len(bad) - 1000} more bad rows")
        if bad and not skip_bad_rows:
            raise CommandError(f"{len(bad)} bad rows of {count}; nothing was applied (use --skip-bad-rows).")
        del seen
        totals = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
        progress = Progress(size, "applying", stream)
        applied = 0
        pending: list[dict[str, Any]] = []

        def apply_batch() -> None:
            for result in contacts_upsert(rows=pending, source=source):
                totals[result.status] += 1
            pending.clear()

        for line, row in _rows(file, progress):
            if line in bad:
                continue
            cleaned, _errors = clean_row(row)
            pending.append(cleaned)  # type: ignore[arg-type]
            applied += 1
            if len(pending) >= BATCH:
                apply_batch()
        if pending:
            apply_batch()
        progress.close(applied)
        self.stdout.write(
            f"{totals['created']} created, {totals['updated']} updated, {totals['unchanged']} unchanged, "
            f"{len(bad)} bad rows skipped, {totals['error']} refused while applying."
        )
