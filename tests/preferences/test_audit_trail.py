"""Bulk exports, imports, invitations and data-rights operations leave an entry in the audit trail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile

from preferences.models import AuditEntry, Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/preferences/contact/"
EXPORT = "/admin/preferences/contact/export/"


def staff_with(client, *codenames: str, username: str = "staff") -> tuple:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="preferences", codename__in=codenames))
    client.force_login(user)
    return client, user


def csv_export(client):
    form = client.get(EXPORT).context["form"]
    choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == "csv")
    fields = {f"contactresource_{name}": "on" for name in ["email", "first_name"]}
    return client.post(EXPORT, {"format": choice, "resource": "0", **fields})


def test_an_export_writes_one_entry_naming_the_user_and_the_row_count(client):
    ContactFactory.create_batch(3)
    exporter, user = staff_with(client, "view_contact", "export_contact")

    response = csv_export(exporter)

    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.rows, entry.actor, entry.actor_id) == ("export", 3, user.username, user.pk)


def test_an_export_refused_for_lack_of_permission_writes_nothing_and_returns_no_rows(client):
    contact = ContactFactory()
    viewer, _user = staff_with(client, "view_contact")

    assert viewer.get(EXPORT).status_code == 403
    response = viewer.post(EXPORT, {"format": "0", "resource": "0", "contactresource_email": "on"})
    assert response.status_code == 403 and contact.email not in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_an_admin_import_invitation_and_erasure_are_each_recorded(client, django_capture_on_commit_callbacks):
    officer, _user = staff_with(
        client, "view_contact", "import_contact", "invite_contact", "erase_contact", username="officer"
    )
    text = "email,first_name\nanna@example.com,Anna\nbram@example.com,Bram\n"
    upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    confirm = officer.post("/admin/preferences/contact/import/", {"import_file": upload, "format": "0"})
    data = {name: confirm.context["confirm_form"][name].value() for name in confirm.context["confirm_form"].fields}
    officer.post("/admin/preferences/contact/process_import/", {k: v for k, v in data.items() if v})
    ids = [str(pk) for pk in Contact.objects.values_list("pk", flat=True)]
    with django_capture_on_commit_callbacks(execute=False):
        officer.post(CHANGELIST, {"action": "invite", "_selected_action": ids})
    officer.post(CHANGELIST, {"action": "erase_data", "_selected_action": ids[:1], "confirm": "yes"})

    entries = list(AuditEntry.objects.order_by("occurred_at", "id").values_list("action", "rows", "actor"))
    assert entries == [("import", 2, "officer"), ("invite", 2, "officer"), ("erase", 1, "officer")]
    assert "anna" not in str(list(AuditEntry.objects.values_list("detail", flat=True)))


def test_the_trail_is_append_only_and_read_only_in_the_admin(admin_client):
    entry = AuditEntry.objects.create(action="export", rows=1, actor="x")
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        AuditEntry.objects.update(rows=2)
    with pytest.raises(TypeError):
        AuditEntry.objects.all().delete()
    assert admin_client.get(f"/admin/preferences/auditentry/{entry.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/preferences/auditentry/add/").status_code == 403


def test_a_background_import_is_recorded_when_the_worker_finishes_it(tmp_path, settings):
    from preferences.importing import import_job_create
    from preferences.tasks import run_import_job

    settings.IMPORT_DIR = str(tmp_path)
    upload = SimpleUploadedFile("big.csv", b"email\nanna@example.com\nbram@example.com\n", content_type="text/csv")
    job = import_job_create(upload=upload, skip_bad_rows=False, requested_by="marketer")
    run_import_job(str(job.pk))

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.rows, entry.actor, entry.detail["job"]) == ("import", 2, "marketer", str(job.pk))
