"""Import a contacts CSV file of any size: streamed, validated first, applied in batches.

Shared by `manage.py import_contacts` and the background import of the admin (an ImportJob run
by a Celery task). Rows follow `preferences.crm` (same checks as the admin import and the API).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preferences.crm import clean_row, contacts_upsert, row_keys

BATCH = 1000
MAX_REPORTED = 1000

# on_progress(phase, bytes done, bytes total, rows seen)
ProgressCallback = Callable[[str, int, int, int], None]


class ImportFileError(ValueError):
    """The file cannot be read as a contacts CSV (no header, no email column, not UTF-8)."""


@dataclass
class ImportReport:
    """The outcome of a file: bad rows by line (first MAX_REPORTED), counts, and whether it was applied."""

    rows: int = 0
    bad: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    bad_count: int = 0
    applied: bool = False
    counts: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0, "error": 0})

    def bad_lines(self) -> list[tuple[int, str]]:
        """Return (line, "field: message; ...") for the reported bad rows, in file order."""
        return [
            (line, "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
            for line, errors in sorted(self.bad.items())
        ]


def _rows(path: Path, phase: str, on_progress: ProgressCallback | None) -> Iterator[tuple[int, dict[str, str]]]:
    total = path.stat().st_size
    with path.open("rb") as raw, open(raw.fileno(), encoding="utf-8-sig", newline="", closefd=False) as handle:
        reader = csv.DictReader(handle)
        try:
            fieldnames = reader.fieldnames
        except UnicodeDecodeError as exc:
            raise ImportFileError("The file is not UTF-8 text.") from exc
        if not fieldnames or "email" not in fieldnames:
            raise ImportFileError("The file needs a header line with at least an 'email' column.")
        count = 0
        for row in reader:
            count += 1
            if on_progress is not None and count % BATCH == 0:
                on_progress(phase, raw.tell(), total, count)
            yield reader.line_num, row
        if on_progress is not None:
            on_progress(phase, total, total, count)


def contacts_import_file(
    *, path: Path, skip_bad_rows: bool = False, source: str = "import", on_progress: ProgressCallback | None = None
) -> ImportReport:
    """Validate the whole file, then apply it in batches; return the report.

    Nothing is applied when a row is bad, unless `skip_bad_rows`. A repeated email or CRM id is a
    bad row (the first occurrence counts). Raise ImportFileError when the file is unreadable.
    """
    report = ImportReport()
    seen: dict[str, int] = {}
    batch: list[tuple[int, dict[str, Any]]] = []

    def bad(line: int, errors: dict[str, list[str]]) -> None:
        report.bad_count += 1
        if len(report.bad) < MAX_REPORTED:
            report.bad[line] = errors

    bad_lines: set[int] = set()

    def check_batch() -> None:
        results = contacts_upsert(rows=[r for _n, r in batch], source=source, dry_run=True)
        for (line, _row), result in zip(batch, results, strict=True):
            if result.status == "error":
                bad(line, result.errors)
                bad_lines.add(line)
        batch.clear()

    try:
        for line, row in _rows(path, "validating", on_progress):
            report.rows += 1
            cleaned, errors = clean_row(row)
            if cleaned is None:
                bad(line, errors)
                bad_lines.add(line)
                continue
            duplicate = next((seen[k] for k in row_keys(cleaned) if k in seen), None)
            if duplicate is not None:
                bad(line, {"email": [f"duplicate of line {duplicate}"]})
                bad_lines.add(line)
                continue
            seen.update(dict.fromkeys(row_keys(cleaned), line))
            batch.append((line, cleaned))
            if len(batch) >= BATCH:
                check_batch()
        if batch:
            check_batch()
    except UnicodeDecodeError as exc:
        raise ImportFileError("The file is not UTF-8 text.") from exc
    seen.clear()
    if bad_lines and not skip_bad_rows:
        return report
    pending: list[dict[str, Any]] = []

    def apply_batch() -> None:
        for result in contacts_upsert(rows=pending, source=source):
            report.counts[result.status] += 1
        pending.clear()

    for line, row in _rows(path, "applying", on_progress):
        if line in bad_lines:
            continue
        cleaned, _errors = clean_row(row)
        assert cleaned is not None
        pending.append(cleaned)
        if len(pending) >= BATCH:
            apply_batch()
    if pending:
        apply_batch()
    report.applied = True
    return report
