"""Celery adapters of the preferences app: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from preferences import importing


@shared_task(name="preferences.tasks.run_import_job", acks_late=False)
def run_import_job(job_id: str) -> None:
    """Run one background import (not redelivered: a half-applied file is re-run by hand, idempotently)."""
    importing.import_job_run(job_id=job_id)
