"""Import a contacts CSV file of any size: streamed, validated first, applied in batches.

Shared by `manage.py import_contacts` and the background import of the admin (an ImportJob run
by a Celery task). Rows follow `preferences.crm` (same checks as the admin import and the API).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from preferences.crm import clean_row, contacts_upsert, row_keys

BATCH = 1000
MAX_REPORTED = 1000

# on_progress(phase, bytes done, bytes total, rows seen)
ProgressCallback = Callable[[str, int, int, int], None]
# invite(contact ids, {address: where the permission to ask came from}) -> how many were invited
Inviter = Callable[[list[Any], dict[str, str]], int]


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
    invited: int = 0

    def bad_lines(self) -> list[tuple[int, str]]:
        """Return (line, "field: message; ...") for the reported bad rows, in file order."""
        return [
            (line, "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items()))
            for line, errors in sorted(self.bad.items())
        ]


# Opens the file for reading in binary mode: a local path's open, or a storage's.
Opener = Callable[[], AbstractContextManager[IO[bytes]]]


def _rows(
    opener: Opener, total: int, phase: str, on_progress: ProgressCallback | None
) -> Iterator[tuple[int, dict[str, str]]]:
    with opener() as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
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
    *,
    path: Path | None = None,
    storage_name: str | None = None,
    skip_bad_rows: bool = False,
    source: str = "import",
    on_progress: ProgressCallback | None = None,
    invite: Inviter | None = None,
) -> ImportReport:
    """Validate the whole file, then apply it in batches; return the report.

    Nothing is applied when a row is bad, unless `skip_bad_rows`. A repeated email or CRM id is a
    bad row (the first occurrence counts). Raise ImportFileError when the file is unreadable.
    With `invite`, each applied batch's contacts without consent (pending) are passed to it, with the
    row's `consent_source` (else the contact's source), as soon as the batch is written.
    The file is a local `path`, or `storage_name` in the "imports" storage (settings.STORAGES).
    """
    if path is not None:
        local = path
        opener: Opener = lambda: local.open("rb")  # noqa: E731
        total = local.stat().st_size
    elif storage_name is not None:
        storage = import_storage()
        opener = lambda: storage.open(storage_name, "rb")  # noqa: E731
        total = storage.size(storage_name)
    else:
        raise TypeError("contacts_import_file needs a path or a storage_name")
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
        for line, row in _rows(opener, total, "validating", on_progress):
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
        invitable: dict[str, str] = {}
        ids: list[Any] = []
        for row, result in zip(pending, contacts_upsert(rows=pending, source=source), strict=True):
            report.counts[result.status] += 1
            contact = result.contact
            if contact is not None and contact.status == contact.Status.PENDING:
                ids.append(contact.pk)
                invitable[contact.email] = row.get("consent_source") or contact.source
        pending.clear()
        if invite is not None and ids:
            report.invited += invite(ids, invitable)

    for line, row in _rows(opener, total, "applying", on_progress):
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


def import_storage() -> Any:
    """Return the storage of background import files (STORAGES["imports"]: a shared volume or a bucket)."""
    from django.core.files.storage import storages

    return storages["imports"]


def import_job_create(*, upload: Any, skip_bad_rows: bool, requested_by: str, invite: bool = False) -> Any:
    """Store an uploaded file in the imports storage, create its ImportJob and queue it. Return the job.

    The job keeps the file's name in that storage, which the worker reads on whatever machine it runs.
    """
    import uuid

    from django.db import transaction

    from preferences.models import ImportJob

    storage = import_storage()
    name = storage.save(f"{uuid.uuid4()}.csv", upload)
    job = ImportJob.objects.create(
        file_path=name,
        original_name=getattr(upload, "name", "upload.csv")[:255],
        skip_bad_rows=skip_bad_rows,
        invite=invite,
        requested_by=requested_by[:150],
        bytes_total=storage.size(name),
    )
    from preferences.tasks import run_import_job

    transaction.on_commit(lambda: run_import_job.delay(str(job.pk)))
    return job


def import_job_run(*, job_id: Any) -> Any:
    """Run a queued ImportJob, recording progress as it goes. Return the job (None if not queued)."""
    from django.utils import timezone

    from preferences.audit import audit_record
    from preferences.models import AuditEntry, ImportJob

    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.VALIDATING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)

    def progress(phase: str, done: int, total: int, rows: int) -> None:
        status = ImportJob.Status.APPLYING if phase == "applying" else ImportJob.Status.VALIDATING
        ImportJob.objects.filter(pk=job_id).update(status=status, bytes_done=done, bytes_total=total, rows_seen=rows)

    def invite(contact_ids: list[Any], consent_sources: dict[str, str]) -> int:
        from django.db.models import F

        from preferences.services import Evidence, contacts_invite

        invited = contacts_invite(
            contact_ids=contact_ids,
            evidence=Evidence(source="import", extra={"user": job.requested_by, "import": str(job.pk)}),
            consent_sources=consent_sources,
            import_id=str(job.pk),
        )
        ImportJob.objects.filter(pk=job_id).update(invited=F("invited") + invited)
        return invited

    try:
        report = contacts_import_file(
            storage_name=job.file_path,
            skip_bad_rows=job.skip_bad_rows,
            source="import",
            on_progress=progress,
            invite=invite if job.invite else None,
        )
    except BaseException as exc:  # a time limit or a worker shutdown too: the file never outlives its job
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.FAILED,
            error=type(exc).__name__ + ": " + str(exc)[:2000],
            finished_at=timezone.now(),
        )
        import_storage().delete(job.file_path)
        ImportJob.objects.filter(pk=job_id).update(file_path="")
        audit_record(action=AuditEntry.Action.IMPORT, rows=0, actor=job.requested_by, job=str(job.pk), status="failed")
        raise
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJob.Status.DONE if report.applied else ImportJob.Status.REFUSED,
        rows_seen=report.rows,
        counts=report.counts,
        bad_rows=[[line, details] for line, details in report.bad_lines()],
        bad_count=report.bad_count,
        finished_at=timezone.now(),
    )
    import_storage().delete(job.file_path)
    ImportJob.objects.filter(pk=job_id).update(file_path="")
    applied = sum(n for status, n in report.counts.items() if status != "error") if report.applied else 0
    audit_record(
        action=AuditEntry.Action.IMPORT,
        rows=applied,
        actor=job.requested_by,
        job=str(job.pk),
        status="done" if report.applied else "refused",
        rows_seen=report.rows,
    )
    if report.invited:
        audit_record(action=AuditEntry.Action.INVITE, rows=report.invited, actor=job.requested_by, job=str(job.pk))
    return ImportJob.objects.get(pk=job_id)
