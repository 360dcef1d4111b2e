"""An import proposes topics and frequency and can invite people to confirm: an invitation, never consent."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from cadence.kinds import Kind
from messaging.models import Delivery
from preferences.models import ConsentEvent, Contact
from tests.conftest import use_import_storage
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

FILE = (
    "external_id,email,first_name,locale,share_of_customer,potential,source,topics,frequency,consent_source\n"
    "crm-1,anna@example.com,Anna,nl,0,high,branch,saving;pension,quarterly,branch form 2026-03\n"
    "crm-2,bram@example.com,Bram,en,0,low,website,mortgage,,newsletter box on the website\n"
    "crm-3,chloe@example.com,Chloe,en,0,low,website,saving,biweekly,fair\n"
)


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


def _import(staff, text: str, **options: str):
    upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    response = staff.post("/admin/preferences/contact/import/", {"import_file": upload, "format": "0", **options})
    confirm = response.context["confirm_form"]
    data = {name: confirm[name].value() for name in confirm.fields}
    data = {k: v for k, v in data.items() if v not in (None, False)}
    return staff.post("/admin/preferences/contact/process_import/", data, follow=True)


def test_an_import_with_invitations_records_invitations_not_consent_and_sends_them_through_the_pipe(
    staff, topics, celery_eager, django_capture_on_commit_callbacks
):
    chloe = ContactFactory(email="chloe@example.com", frequency="monthly", status=Contact.Status.CONFIRMED)
    with django_capture_on_commit_callbacks(execute=True):
        response = _import(staff, FILE, invite="on")
    assert "2 contacts invited to confirm (double opt-in)." in response.content.decode()

    anna = Contact.objects.get(email="anna@example.com")
    assert anna.status == Contact.Status.PENDING and anna.frequency == "quarterly"
    assert sorted(anna.topics.values_list("slug", flat=True)) == ["pension", "saving"]
    chloe.refresh_from_db()
    assert chloe.frequency == "monthly" and not chloe.topics.exists()  # a confirmed person's choices stand

    invitations = ConsentEvent.objects.filter(kind=ConsentEvent.Kind.INVITED).order_by("contact__email")
    assert [(e.contact.email, e.evidence["consent_source"]) for e in invitations] == [
        ("anna@example.com", "branch form 2026-03"),
        ("bram@example.com", "newsletter box on the website"),
    ]
    assert not ConsentEvent.objects.filter(kind__in=[ConsentEvent.Kind.CONFIRMED, ConsentEvent.Kind.SIGNUP]).exists()

    deliveries = Delivery.objects.filter(template="invitation")
    assert deliveries.count() == 2
    assert set(deliveries.values_list("kind", "status")) == {(Kind.CONFIRMATION, Delivery.Status.SENT)}
    assert sorted(m.to[0] for m in mail.outbox) == ["anna@example.com", "bram@example.com"]
    dutch = next(m for m in mail.outbox if m.to == ["anna@example.com"])
    assert "/confirm/" in dutch.body and "List-Unsubscribe" not in dutch.extra_headers


def test_nobody_is_invited_twice_and_confirmed_or_suppressed_contacts_are_not_invited(staff, topics):
    pending = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    confirmed = ContactFactory()
    suppressed = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None, suppressed_at="2026-01-01T00:00Z")
    ids = [str(c.pk) for c in (pending, confirmed, suppressed)]
    for _ in range(2):
        staff.post("/admin/preferences/contact/", {"action": "invite", "_selected_action": ids})
    assert list(ConsentEvent.objects.filter(kind=ConsentEvent.Kind.INVITED).values_list("contact", flat=True)) == [
        pending.pk
    ]
    assert Delivery.objects.filter(template="invitation").count() == 1


def test_an_unknown_topic_in_a_file_is_refused_with_the_topics_that_exist(staff, topics):
    text = FILE.splitlines()[0] + "\ncrm-9,dirk@example.com,Dirk,nl,0,high,branch,savings,,\n"
    upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    body = staff.post("/admin/preferences/contact/import/", {"import_file": upload, "format": "0"}).content.decode()
    assert "Unknown topic: savings. Topics that exist: mortgage, pension, saving." in body
    assert not Contact.objects.exists()


def test_a_large_file_import_sets_topics_and_frequency_of_new_contacts(topics, tmp_path):
    from preferences.importing import contacts_import_file

    path = tmp_path / "contacts.csv"
    path.write_text(FILE)
    report = contacts_import_file(path=path)
    assert report.applied and report.counts["created"] == 3
    anna = Contact.objects.get(email="anna@example.com")
    assert anna.frequency == "quarterly" and sorted(anna.topics.values_list("slug", flat=True)) == ["pension", "saving"]
    path.write_text(FILE.splitlines()[0] + "\n,erik@example.com,,,,,,savings,,\n")
    refused = contacts_import_file(path=path)
    assert not refused.applied and "Topics that exist: mortgage, pension, saving." in refused.bad_lines()[0][1]


def test_one_imports_invitations_are_one_send_for_the_brake(staff, topics, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        _import(staff, FILE, invite="on")
    keys = set(Delivery.objects.filter(template="invitation").values_list("send_key", flat=True))
    assert len(keys) == 1 and next(iter(keys)).startswith("import:")
    with django_capture_on_commit_callbacks(execute=False):
        _import(staff, FILE.replace("crm-", "crm-b").replace("@example.com", "@example.org"), invite="on")
    # Another import is another send.
    assert len(set(Delivery.objects.filter(template="invitation").values_list("send_key", flat=True))) == 2


def test_invitations_of_an_import_the_brake_holds_wait_with_the_rest_of_it(topics):
    from messaging.models import SendBrake
    from preferences import services

    SendBrake.objects.create(send_key="import:batch-1", sent=300, bounced=40)
    contacts = [ContactFactory(status=Contact.Status.PENDING, confirmed_at=None) for _ in range(3)]
    invited = services.contacts_invite(
        contact_ids=[c.pk for c in contacts], evidence=services.Evidence(source="import"), import_id="batch-1"
    )
    assert invited == 3
    held = Delivery.objects.filter(template="invitation")
    assert sorted(held.values_list("status", "send_key")) == [("held", "import:batch-1")] * 3


# The background import of large files (an ImportJob run by a worker).

LARGE = "/admin/preferences/contact/import-large/"


def _import_large(staff, text: str, capture, **options: str):
    """Upload through the admin and run the job as the worker would; return the job and its status page."""
    from preferences.models import ImportJob
    from preferences.tasks import run_import_job

    upload = SimpleUploadedFile("crm.csv", text.encode(), content_type="text/csv")
    with capture(execute=False) as queued:
        response = staff.post(LARGE, {"import_file": upload, **options})
    assert response.status_code == 302 and len(queued) == 1
    job = ImportJob.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[1])
    with capture(execute=True):
        run_import_job(str(job.pk))
    job.refresh_from_db()
    return job, staff.get(response["Location"]).content.decode()


def test_a_background_import_invites_only_those_without_consent_and_only_when_asked(
    staff, topics, celery_eager, django_capture_on_commit_callbacks, tmp_path, settings
):
    use_import_storage(settings, tmp_path)
    ContactFactory(email="chloe@example.com", status=Contact.Status.CONFIRMED)
    dirk = ContactFactory(email="dirk@example.com", status=Contact.Status.PENDING, confirmed_at=None)
    ContactFactory(email="erik@example.com", status=Contact.Status.PENDING, confirmed_at=None, source="fair")
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/admin/preferences/contact/", {"action": "invite", "_selected_action": [str(dirk.pk)]})
    mail.outbox.clear()
    text = FILE + "crm-4,dirk@example.com,Dirk,nl,0,low,website,,,\ncrm-5,erik@example.com,Erik,nl,0,low,fair,,,\n"

    form = staff.get(LARGE).content.decode()
    assert 'name="invite"' in form and 'name="invite" checked' not in form  # off unless chosen

    job, page = _import_large(staff, text, django_capture_on_commit_callbacks, invite="on")

    assert job.status == "done" and job.invite and job.invited == 3
    assert "3 contacts invited to confirm (double opt-in)." in page
    invitations = ConsentEvent.objects.filter(kind=ConsentEvent.Kind.INVITED, evidence__import=str(job.pk))
    assert sorted((e.contact.email, e.evidence["consent_source"]) for e in invitations) == [
        ("anna@example.com", "branch form 2026-03"),
        ("bram@example.com", "newsletter box on the website"),
        ("erik@example.com", "fair"),  # no consent source in the row: where the contact came from
    ]
    assert set(
        Contact.objects.filter(email__in=["anna@example.com", "erik@example.com"]).values_list("status", flat=True)
    ) == {Contact.Status.PENDING}
    assert not ConsentEvent.objects.filter(kind__in=[ConsentEvent.Kind.CONFIRMED, ConsentEvent.Kind.SIGNUP]).exists()
    sent = Delivery.objects.filter(template="invitation", status=Delivery.Status.SENT)
    assert sent.count() == 4  # dirk's from before, and this import's three
    # This import's invitations are one send for the bounce and complaint brake.
    assert sorted(sent.values_list("send_key", flat=True)) == ["", *[f"import:{job.pk}"] * 3]
    assert sorted(m.to[0] for m in mail.outbox) == ["anna@example.com", "bram@example.com", "erik@example.com"]

    mail.outbox.clear()
    again, page = _import_large(staff, text, django_capture_on_commit_callbacks, invite="on")
    assert again.status == "done" and again.invited == 0
    assert "0 contacts invited to confirm (double opt-in)." in page
    assert mail.outbox == [] and Delivery.objects.filter(template="invitation").count() == 4

    quiet, page = _import_large(
        staff,
        FILE.splitlines()[0] + "\n,fenna@example.com,Fenna,nl,0,low,web,,,\n,gert@example.com,Gert,en,0,low,web,,,\n",
        django_capture_on_commit_callbacks,
    )
    assert quiet.status == "done" and not quiet.invite and quiet.counts["created"] == 2
    assert "Nobody is invited by this import." in page
    assert mail.outbox == [] and not ConsentEvent.objects.filter(evidence__import=str(quiet.pk)).exists()


def test_a_refused_background_import_invites_nobody(
    staff, topics, celery_eager, django_capture_on_commit_callbacks, tmp_path, settings
):
    use_import_storage(settings, tmp_path)
    job, page = _import_large(
        staff, FILE + "crm-9,not-an-address,X,nl,0,low,website,,,\n", django_capture_on_commit_callbacks, invite="on"
    )
    assert job.status == "refused" and job.invited == 0
    assert "Nobody was invited: nothing was applied." in page
    assert not ConsentEvent.objects.exists() and mail.outbox == []


def test_invitations_go_out_batch_by_batch_as_the_file_is_applied_and_the_page_shows_how_far(
    staff, topics, tmp_path, monkeypatch
):
    from preferences import importing
    from preferences.models import ImportJob

    monkeypatch.setattr(importing, "BATCH", 2)
    path = tmp_path / "crm.csv"
    path.write_text(FILE)
    calls: list[list[str]] = []

    def invite(contact_ids, consent_sources):
        calls.append(sorted(consent_sources))
        assert set(Contact.objects.filter(pk__in=contact_ids).values_list("email", flat=True)) == set(consent_sources)
        return len(contact_ids)

    report = importing.contacts_import_file(path=path, invite=invite)
    assert calls == [["anna@example.com", "bram@example.com"], ["chloe@example.com"]]
    assert report.invited == 3

    running = ImportJob.objects.create(
        file_path="x.csv", original_name="crm.csv", invite=True, invited=1000, status=ImportJob.Status.APPLYING
    )
    page = staff.get(f"{LARGE}{running.pk}/").content.decode()
    assert "1000 contacts invited to confirm (double opt-in) so far." in page and 'http-equiv="refresh"' in page
