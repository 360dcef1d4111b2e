"""Background imports that ended badly: stale jobs failed and their files deleted, lost jobs queued again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from preferences.importing import import_storage
from preferences.models import ImportJob

ENDED = [ImportJob.Status.DONE, ImportJob.Status.REFUSED, ImportJob.Status.FAILED]
RUNNING = [ImportJob.Status.VALIDATING, ImportJob.Status.APPLYING]


def import_jobs_reap(*, now: datetime | None = None) -> int:
    """Fail jobs validating or applying for longer than IMPORT_STALE_MINUTES (their worker died); delete
    the file of every ended job still on disk. Return how many jobs were failed.

    A failed job may be half applied; an import is idempotent, so the file is uploaded again.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(minutes=settings.IMPORT_STALE_MINUTES)
    stale = list(ImportJob.objects.filter(status__in=RUNNING, started_at__lt=stale_before).values_list("pk", flat=True))
    failed = ImportJob.objects.filter(pk__in=stale, status__in=RUNNING).update(
        status=ImportJob.Status.FAILED,
        error=f"Stopped: still running after {settings.IMPORT_STALE_MINUTES} minutes (its worker was lost). "
        "It may be half applied: upload the file again.",
        finished_at=now,
    )
    import_files_of_ended_jobs_delete()
    return failed


def import_files_of_ended_jobs_delete() -> int:
    """Delete the file of every ended job still on disk (a crash between the end and the delete); return how many."""
    count = 0
    for job in ImportJob.objects.filter(status__in=ENDED).exclude(file_path="").only("pk", "file_path").iterator():
        import_storage().delete(job.file_path)
        ImportJob.objects.filter(pk=job.pk).update(file_path="")
        count += 1
    return count


def import_jobs_requeue(*, jobs: Iterable[Any]) -> int:
    """Queue again the jobs still `queued` whose file is on disk (lost from the broker); return how many.

    Running one twice is harmless: a worker claims a job only while it is queued.
    """
    from preferences.tasks import run_import_job

    ids = [
        str(job.pk)
        for job in jobs
        if job.status == ImportJob.Status.QUEUED and job.file_path and import_storage().exists(job.file_path)
    ]
    for job_id in ids:
        transaction.on_commit(partial(run_import_job.delay, job_id))
    return len(ids)
