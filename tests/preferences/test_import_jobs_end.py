"""An import's file never outlives its job; a stale job is failed; a job lost from the queue runs again."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from preferences.import_jobs import import_jobs_reap
from preferences.importing import import_job_run
from preferences.models import Contact, ImportJob
from tests.conftest import use_import_storage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _imports_in_tmp_path(settings, tmp_path):
    """The imports storage is a folder of this test: what is left in it is what an import left behind."""
    use_import_storage(settings, tmp_path)


def job_with_file(tmp_path: Path, content: str, **fields) -> ImportJob:
    name = f"{len(list(tmp_path.iterdir()))}.csv"
    (tmp_path / name).write_text(content)
    return ImportJob.objects.create(file_path=name, original_name="crm.csv", **fields)


def test_a_failing_import_deletes_its_file(tmp_path):
    job = job_with_file(tmp_path, "\x00\x00 not a csv header at all\n")
    path = tmp_path / job.file_path
    with contextlib.suppress(Exception):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()

    assert not path.exists()
    assert job.status in {ImportJob.Status.FAILED, ImportJob.Status.REFUSED}


def test_a_finished_import_deletes_its_file(tmp_path):
    job = job_with_file(tmp_path, "email,first_name\nnew.person@example.com,Nina\n")
    path = tmp_path / job.file_path

    import_job_run(job_id=job.pk)

    assert not path.exists() and ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE


def test_the_reaper_fails_stale_jobs_and_deletes_every_ended_jobs_file(tmp_path, settings):
    settings.IMPORT_STALE_MINUTES = 60
    now = timezone.now()
    stale = job_with_file(tmp_path, "x", status=ImportJob.Status.APPLYING, started_at=now - timedelta(minutes=61))
    running = job_with_file(tmp_path, "x", status=ImportJob.Status.VALIDATING, started_at=now - timedelta(minutes=5))
    ended = job_with_file(tmp_path, "x", status=ImportJob.Status.DONE, started_at=now - timedelta(days=3))

    assert import_jobs_reap(now=now) == 1

    stale_file, ended_file = tmp_path / stale.file_path, tmp_path / ended.file_path
    stale.refresh_from_db()
    assert stale.status == ImportJob.Status.FAILED and "upload the file again" in stale.error
    assert not ImportJob.objects.get(pk=ended.pk).file_path and not ended_file.exists()
    assert (tmp_path / running.file_path).exists() and not stale_file.exists() and not stale.file_path
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.file_path]


def test_the_reaper_runs_on_beat(settings):
    assert settings.CELERY_BEAT_SCHEDULE["import-jobs-reap"]["task"] == "preferences.tasks.reap_import_jobs"


def test_an_import_lost_from_the_queue_runs_again_from_the_admin(
    client, tmp_path, celery_eager, django_capture_on_commit_callbacks
):
    lost = job_with_file(tmp_path, "email,first_name\nlost.in.queue@example.com,Lotte\n")
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_importjob"))
    client.force_login(user)
    form = {"action": "queue_again", "_selected_action": [str(lost.pk)]}

    refused = client.post("/admin/preferences/importjob/", form)
    assert refused.status_code == 200 and not Contact.objects.filter(email="lost.in.queue@example.com").exists()

    user.user_permissions.add(Permission.objects.get(codename="change_importjob"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/preferences/importjob/", form, follow=True)

    assert response.status_code == 200
    assert ImportJob.objects.get(pk=lost.pk).status == ImportJob.Status.DONE
    assert Contact.objects.filter(email="lost.in.queue@example.com").exists()
