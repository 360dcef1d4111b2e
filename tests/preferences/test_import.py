from __future__ import annotations

import io
from pathlib import Path

import pytest
import tablib
from django.core.management import CommandError, call_command

from preferences.models import Contact, Conversion
from preferences.resources import ContactResource
from tests.conftest import use_import_storage
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

HEADER = "external_id,email,first_name,locale,share_of_customer,potential,source\n"
GOOD = HEADER + (
    "crm-1,Anna@Example.com,Anna,nl,0,high,branch\n"
    "crm-2,bram@example.com,Bram,en,25,low,website\n"
    ",chloe@example.com,Chloë,,,,\n"
)
BAD = HEADER + (
    "crm-1,anna@example.com,Anna,nl,0,high,branch\n"
    "crm-2,not-an-address,Bram,en,25,low,website\n"
    "crm-3,daan@example.com,Daan,en,250,maybe,website\n"
    "crm-4,anna@example.com,Anna again,nl,0,high,branch\n"
    "crm-5,emma@example.com,Emma,en,0,,\n"
)


def run(text: str, **kwargs):
    dataset = tablib.Dataset().load(text, format="csv")
    resource = ContactResource()
    dry = resource.import_data(dataset, dry_run=True, **kwargs)
    if dry.has_validation_errors() or dry.has_errors():
        return dry, None
    resource = ContactResource()
    return dry, resource.import_data(dataset, dry_run=False, **kwargs)


def test_a_good_file_upserts_by_crm_id_or_email():
    existing = ContactFactory(email="chloe@example.com", first_name="C", potential="medium")
    _dry, result = run(GOOD)
    assert result is not None and not result.has_errors()
    assert Contact.objects.get(external_id="crm-1").email == "anna@example.com"
    bram = Contact.objects.get(external_id="crm-2")
    assert bram.share_of_customer == 25 and bram.potential == "low" and bram.status == Contact.Status.PENDING
    existing.refresh_from_db()
    assert existing.first_name == "Chloë" and existing.potential == "medium"  # empty cells leave fields alone


def test_a_file_with_bad_rows_is_reported_by_line_and_nothing_is_applied():
    dry, result = run(BAD)
    assert result is None
    errors = {row.number + 1: row.error.message_dict for row in dry.invalid_rows}
    assert set(errors) == {3, 4, 5}
    assert "email" in errors[3]
    assert set(errors[4]) == {"share_of_customer", "potential"}
    assert "duplicate of line 2" in errors[5]["email"][0]
    assert not Contact.objects.exists()


def test_skip_bad_rows_applies_the_good_ones_and_lists_the_bad_ones():
    dry, result = run(BAD, skip_bad_rows=True)
    assert [line for line, _e in dry.skipped_bad_rows] == [3, 4, 5]
    assert result is not None
    assert sorted(Contact.objects.values_list("external_id", flat=True)) == ["crm-1", "crm-5"]


def test_reimporting_the_same_file_changes_nothing():
    run(GOOD)
    before = list(Contact.objects.order_by("email").values())
    _dry, result = run(GOOD)
    assert result.totals["new"] == 0 and result.totals["update"] == 0 and result.totals["skip"] == 3
    assert list(Contact.objects.order_by("email").values()) == before


def test_an_import_that_raises_the_share_records_a_conversion():
    run(GOOD)
    run(HEADER + "crm-1,anna@example.com,,,40,,\n")
    anna = Contact.objects.get(external_id="crm-1")
    assert anna.share_of_customer == 40
    assert Conversion.objects.get(contact=anna).source == "import"


def test_an_address_of_another_crm_contact_is_a_bad_row():
    ContactFactory(email="anna@example.com", external_id="other")
    dry, result = run(HEADER + "crm-1,anna@example.com,,,,,\n")
    assert result is None
    assert "external_id" in dry.invalid_rows[0].error.message_dict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(text)
    return path


def test_the_command_refuses_a_file_with_bad_rows_and_names_the_lines(tmp_path):
    out = io.StringIO()
    with pytest.raises(CommandError, match="3 bad rows of 5; nothing was applied"):
        call_command("import_contacts", write(tmp_path, BAD), "--no-progress", stdout=out)
    assert "line 3: email" in out.getvalue() and "line 5: email: duplicate of line 2" in out.getvalue()
    assert not Contact.objects.exists()


def test_the_command_skips_bad_rows_when_asked_and_is_idempotent(tmp_path):
    path = write(tmp_path, BAD)
    out = io.StringIO()
    call_command("import_contacts", path, "--skip-bad-rows", "--no-progress", stdout=out)
    assert "2 created, 0 updated, 0 unchanged, 3 bad rows skipped" in out.getvalue()
    out = io.StringIO()
    call_command("import_contacts", path, "--skip-bad-rows", "--no-progress", stdout=out)
    assert "0 created, 0 updated, 2 unchanged" in out.getvalue()
    assert Contact.objects.count() == 2


def test_the_command_invites_those_without_consent_once_when_asked(
    tmp_path, celery_eager, django_capture_on_commit_callbacks
):
    from django.core import mail

    from messaging.models import Delivery
    from preferences.models import ConsentEvent

    ContactFactory(email="anna@example.com", external_id="crm-1")  # confirmed: keeps its consent, not invited
    path = write(tmp_path, GOOD)
    call_command("import_contacts", path, "--no-progress", stdout=io.StringIO())
    assert not ConsentEvent.objects.filter(kind=ConsentEvent.Kind.INVITED).exists()  # not unless asked

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_contacts", path, "--no-progress", "--invite", stdout=out)
    assert "2 invited to confirm (import " in out.getvalue()
    invited = ConsentEvent.objects.filter(kind=ConsentEvent.Kind.INVITED)
    assert sorted(invited.values_list("contact__email", flat=True)) == ["bram@example.com", "chloe@example.com"]
    assert not ConsentEvent.objects.filter(kind=ConsentEvent.Kind.CONFIRMED, contact__email="bram@example.com").exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["bram@example.com", "chloe@example.com"]
    keys = set(Delivery.objects.filter(template="invitation").values_list("send_key", flat=True))
    assert len(keys) == 1 and next(iter(keys)).startswith("import:")

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_contacts", path, "--no-progress", "--invite", stdout=out)
    assert "0 invited to confirm" in out.getvalue() and len(mail.outbox) == 2


def test_the_command_works_in_batches_and_shows_progress(tmp_path, monkeypatch):
    monkeypatch.setattr("preferences.importing.BATCH", 7)
    rows = "".join(f"crm-{i},p{i}@example.com,P,en,{i % 2 * 10},low,file\n" for i in range(50))
    err = io.StringIO()
    call_command("import_contacts", write(tmp_path, HEADER + rows), stdout=io.StringIO(), stderr=err)
    assert Contact.objects.count() == 50
    assert Contact.objects.filter(share_of_customer=10).count() == 25
    assert "applying   [" in err.getvalue() and "100.0%" in err.getvalue()


def test_a_background_import_records_progress_and_its_report(tmp_path, settings, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from preferences.models import ImportJob
    from preferences.tasks import run_import_job

    use_import_storage(settings, tmp_path)
    client = Client()
    client.force_login(User.objects.create_superuser("m", password="pw"))
    upload = SimpleUploadedFile("big.csv", BAD.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/admin/preferences/contact/import-large/", {"import_file": upload})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/import-large/{job.pk}/")
    assert len(callbacks) == 1 and job.status == "queued"
    assert 'http-equiv="refresh"' in client.get(response["Location"]).content.decode()

    run_import_job(str(job.pk))  # what the worker runs
    job.refresh_from_db()
    assert job.status == "refused" and job.bad_count == 3 and [line for line, _d in job.bad_rows] == [3, 4, 5]
    assert not Contact.objects.exists() and not list(tmp_path.iterdir())
    body = client.get(response["Location"]).content.decode()
    assert "nothing was applied" in body and "Line 5" in body and 'http-equiv="refresh"' not in body

    upload = SimpleUploadedFile("big.csv", BAD.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=False):
        client.post("/admin/preferences/contact/import-large/", {"import_file": upload, "skip_bad_rows": "on"})
    job = ImportJob.objects.filter(skip_bad_rows=True).get()
    run_import_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "done" and job.counts["created"] == 2 and job.percent == 100
    assert run_import_job(str(job.pk)) is None  # a redelivered task finds nothing to do
