"""Celery adapters of the preferences app: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from preferences import importing, services


@shared_task(name="preferences.tasks.run_import_job", acks_late=False)
def run_import_job(job_id: str) -> None:
    """Run one background import (not redelivered: a half-applied file is re-run by hand, idempotently)."""
    importing.import_job_run(job_id=job_id)


@shared_task(name="preferences.tasks.link_request_resolve", ignore_result=True)
def link_request_resolve(email: str) -> None:
    """Find the contact of an address asked for on /link/ and mail it a fresh link (nothing for an unknown one).

    The page enqueues this for every request, known or not, so its answer cannot tell them apart.
    """
    services.contact_request_link(email=email)


@shared_task(name="preferences.tasks.reap_import_jobs")
def reap_import_jobs() -> None:
    """Fail imports whose worker was lost and delete the files of ended imports (beat)."""
    from preferences.import_jobs import import_jobs_reap

    import_jobs_reap()
