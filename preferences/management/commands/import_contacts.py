"""Import contacts from a very large CSV file, with a progress bar (see preferences.importing)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from preferences.importing import ImportFileError, contacts_import_file
from preferences.services import Evidence, contacts_invite


class ProgressBar:
    """A one-line progress bar per phase on a stream (redrawn at most twice a second)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.phase, self.started, self.last = stream, "", time.monotonic(), 0.0

    def __call__(self, phase: str, done: int, total: int, rows: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            if self.phase:
                self.stream.write("\n")
            self.phase, self.started = phase, now
        elif done < total and now - self.last < 0.5:
            return
        self.last = now
        share = done / total if total else 1.0
        rate = rows / max(now - self.started, 1e-6)
        self.stream.write(f"\r{phase:10s} [{'#' * int(share * 30):<30}] {share:6.1%} {rows:>10,} rows {rate:>8,.0f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.phase:
            self.stream.write("\n")


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
        parser.add_argument(
            "--invite",
            action="store_true",
            help="Invite the imported contacts without consent to confirm (double opt-in), batch by batch; "
            "each person at most once. An invitation is not consent.",
        )

    def handle(
        self, *args: Any, file: Path, skip_bad_rows: bool, source: str, no_progress: bool, invite: bool, **opts: Any
    ) -> None:
        if not file.is_file():
            raise CommandError(f"{file} does not exist.")
        bar = None if no_progress else ProgressBar(self.stderr)
        import_id = uuid.uuid4().hex[:12]

        def inviter(contact_ids: list[Any], consent_sources: dict[str, str]) -> int:
            return contacts_invite(
                contact_ids=contact_ids,
                evidence=Evidence(source=source, extra={"import": import_id, "command": "import_contacts"}),
                consent_sources=consent_sources,
                import_id=import_id,
            )

        try:
            report = contacts_import_file(
                path=file,
                skip_bad_rows=skip_bad_rows,
                source=source,
                on_progress=bar,
                invite=inviter if invite else None,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
        for line, details in report.bad_lines():
            self.stdout.write(f"line {line}: {details}")
        if report.bad_count > len(report.bad):
            self.stdout.write(f"... and {report.bad_count - len(report.bad)} more bad rows")
        if not report.applied:
            raise CommandError(
                f"{report.bad_count} bad rows of {report.rows}; nothing was applied (use --skip-bad-rows)."
            )
        c = report.counts
        self.stdout.write(
            f"{c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged, "
            f"{report.bad_count} bad rows skipped, {c['error']} refused while applying."
        )
        if invite:
            self.stdout.write(f"{report.invited} invited to confirm (import {import_id}).")
