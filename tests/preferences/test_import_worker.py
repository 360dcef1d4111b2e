"""A real Celery worker runs a background import from the default queue and reports progress."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from preferences.models import Contact, ImportJob
from tests.conftest import use_import_storage
from tests.workers import purge_queues, running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

HEADER = "external_id,email,first_name,locale,share_of_customer,potential,source\n"


def test_a_real_worker_imports_a_file_in_the_background(tmp_path, settings):
    use_import_storage(settings, tmp_path)  # the "shared volume" of web and worker
    rows = "".join(f"crm-{i},w{i}@example.com,W,en,0,low,file\n" for i in range(2500))
    client = Client()
    client.force_login(User.objects.create_superuser("m", password="pw"))
    purge_queues("default")
    with running_worker(queues="default", name="imports", IMPORT_DIR=str(tmp_path)):
        upload = SimpleUploadedFile("big.csv", (HEADER + rows).encode(), content_type="text/csv")
        status_url = client.post("/admin/preferences/contact/import-large/", {"import_file": upload})["Location"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ImportJob.objects.get().is_running:
            time.sleep(0.2)
    job = ImportJob.objects.get()
    assert job.status == "done", job.error
    assert job.counts["created"] == 2500 and Contact.objects.count() == 2500
    assert "2500 created" in client.get(status_url).content.decode()
    deadline = time.monotonic() + 10  # the worker deletes the file right after recording the report
    while list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(tmp_path.iterdir()), "the worker deletes the file it imported from the storage"
