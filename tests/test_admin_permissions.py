from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from messaging.models import Delivery
from messaging.preview import SAMPLE_TOKEN
from preferences.models import ConsentEvent, Contact
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/preferences/contact/"
ACTIONS = ["set_potential_high", "set_potential_none", "pause", "resend_welcome"]


def staff_with(client, *codenames: str, username: str = "viewer"):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def offered_actions(client) -> list[str]:
    """Return the names of the actions the changelist offers (none at all: no action form)."""
    action_form = client.get(CHANGELIST).context["action_form"]
    return [] if action_form is None else [name for name, _label in action_form.fields["action"].choices]


def test_view_only_staff_neither_see_nor_can_post_the_bulk_actions(client):
    viewer = staff_with(client, "view_contact")
    contact = ContactFactory(potential="medium")

    offered = offered_actions(viewer)
    assert not set(ACTIONS) & set(offered)
    for action in ACTIONS:
        viewer.post(CHANGELIST, {"action": action, "_selected_action": [str(contact.pk)]})
    contact.refresh_from_db()
    assert contact.potential == "medium" and contact.paused_until is None
    assert not Delivery.objects.filter(contact=contact).exists()


def test_staff_who_may_change_contacts_get_the_actions(client):
    editor = staff_with(client, "view_contact", "change_contact", username="editor")
    offered = offered_actions(editor)
    assert set(ACTIONS) <= set(offered)


def test_the_consent_ledger_cannot_be_added_to_in_the_admin(admin_client):
    assert admin_client.get("/admin/preferences/consentevent/add/").status_code == 403


def test_an_admin_change_of_status_topics_or_frequency_writes_a_ledger_entry_naming_the_staff_user(
    admin_client, admin_user, topics
):
    contact = ContactFactory(frequency="monthly", topics=[topics[0]])
    data = {
        "email": contact.email,
        "first_name": "Sam",
        "locale": "en",
        "time_zone": "Europe/Amsterdam",
        "status": "unsubscribed",
        "frequency": "quarterly",
        "topics": [str(topics[1].pk)],
        "source": "",
        "external_id": "",
        "share_of_customer": "0",
        "potential": "medium",
        "service_reminders": "on",
        "products-TOTAL_FORMS": "0",
        "products-INITIAL_FORMS": "0",
    }
    response = admin_client.post(f"{CHANGELIST}{contact.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]

    entry = ConsentEvent.objects.get(contact=contact)
    assert entry.source == f"admin:{admin_user.username}"
    assert entry.evidence == {"staff_user": admin_user.username}
    assert entry.before["frequency"] == "monthly" and entry.after["frequency"] == "quarterly"
    assert entry.before["topics"] == ["saving"] and entry.after["topics"] == ["mortgage"]
    assert entry.before["status"] == "confirmed" and entry.after["status"] == "unsubscribed"

    # Saving again without a change writes nothing.
    data["status"], data["topics"] = "unsubscribed", [str(topics[1].pk)]
    admin_client.post(f"{CHANGELIST}{contact.pk}/change/", data)
    assert ConsentEvent.objects.filter(contact=contact).count() == 1


def test_the_topic_preview_needs_a_permission_and_shows_sample_links(client, topics):
    contact = ContactFactory(locale="en", first_name="Noor", external_id="crm-9")
    url = f"/admin/preferences/topic/{topics[0].pk}/preview/"
    query = {"contact": "crm-9", "template": "welcome"}
    topic_editor = staff_with(client, "view_topic", "change_topic", username="topics")
    assert topic_editor.get(url, query).status_code == 403

    reader = staff_with(client, "view_topic", "view_contact", username="reader")
    body = reader.get(url, query).content.decode()
    assert "Noor" in body and SAMPLE_TOKEN in body
    for purpose in (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE):
        assert make_token(Contact.objects.get(pk=contact.pk), purpose) not in body


def test_an_importer_without_the_invite_permission_imports_but_invites_nobody(client, tmp_path, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from preferences.models import ImportJob

    settings.IMPORT_DIR = str(tmp_path)
    importer = staff_with(client, "view_contact", "import_contact", username="importer")
    text = "email,first_name\nanna@example.com,Anna\n"

    upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    confirm = importer.post(f"{CHANGELIST}import/", {"import_file": upload, "format": "0", "invite": "on"})
    data = {name: confirm.context["confirm_form"][name].value() for name in confirm.context["confirm_form"].fields}
    body = importer.post(f"{CHANGELIST}process_import/", {**data, "invite": "True"}, follow=True).content.decode()
    assert "Nobody was invited" in body
    assert Contact.objects.filter(email="anna@example.com").exists()
    assert not ConsentEvent.objects.filter(kind="invited").exists() and not Delivery.objects.exists()

    large = SimpleUploadedFile("big.csv", text.encode(), content_type="text/csv")
    response = importer.post(f"{CHANGELIST}import-large/", {"import_file": large, "invite": "on"})
    assert response.status_code == 200 and not ImportJob.objects.exists()
