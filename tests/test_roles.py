"""The roles the project ships as groups: each may do its work and nothing beyond it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

from preferences.models import AuditEntry, Contact
from preferences.roles import MARKETER, OPS, PRIVACY_OFFICER, READ_ONLY, ROLES, roles_sync
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/preferences/contact/"
EXPORT = "/admin/preferences/contact/export/"


def member_of(client, role: str):
    user = User.objects.create_user(role.replace(" ", "-"), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def offered_actions(client) -> set[str]:
    action_form = client.get(CHANGELIST).context["action_form"]
    return set() if action_form is None else {name for name, _label in action_form.fields["action"].choices}


def csv_export(client):
    form = client.get(EXPORT).context["form"]
    choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == "csv")
    return client.post(EXPORT, {"format": choice, "resource": "0", "contactresource_email": "on"})


def test_the_migration_ships_each_role_with_exactly_its_permissions():
    for name, perms in ROLES.items():
        group = Group.objects.get(name=name)
        have = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert have == set(perms), name


def test_sync_is_idempotent_and_takes_back_a_permission_added_by_hand(capsys):
    marketer = Group.objects.get(name=MARKETER)
    marketer.permissions.add(Permission.objects.get(codename="erase_contact"))

    call_command("roles", "sync")
    call_command("roles", "sync")

    assert not marketer.permissions.filter(codename="erase_contact").exists()
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)
    assert all(missing == [] for missing in roles_sync().values())


def test_a_marketer_exports_the_list_and_invites_but_cannot_erase_or_export_a_dossier(client):
    contact = ContactFactory(email="kept@example.com", first_name="Kept")
    marketer = member_of(client, MARKETER)

    response = csv_export(marketer)
    assert response.status_code == 200 and "kept@example.com" in response.content.decode()
    assert AuditEntry.objects.filter(action="export", rows=1).exists()

    assert {"invite", "export_admin_action"} <= offered_actions(marketer)
    assert not {"erase_data", "export_data", "delete_selected"} & offered_actions(marketer)
    marketer.post(CHANGELIST, {"action": "erase_data", "_selected_action": [str(contact.pk)], "confirm": "yes"})
    contact.refresh_from_db()
    assert contact.email == "kept@example.com" and contact.first_name == "Kept"
    assert marketer.get("/admin/ops/").status_code == 403
    assert marketer.get("/admin/dashboard/").status_code == 200


def test_ops_sees_the_ops_page_but_not_the_export_or_the_dashboard(client):
    ops = member_of(client, OPS)

    assert ops.get("/admin/ops/").status_code == 200
    assert ops.get("/admin/messaging/sendbrake/").status_code == 200
    assert ops.get(EXPORT).status_code == 403
    assert ops.get("/admin/dashboard/").status_code == 403


def test_the_privacy_officer_erases_and_exports_a_person_but_not_the_list(client):
    contact = ContactFactory(email="gone@example.com", first_name="Gone")
    officer = member_of(client, PRIVACY_OFFICER)

    dossier = officer.post(CHANGELIST, {"action": "export_data", "_selected_action": [str(contact.pk)]})
    assert dossier.status_code == 200 and "gone@example.com" in dossier.content.decode()
    officer.post(CHANGELIST, {"action": "erase_data", "_selected_action": [str(contact.pk)], "confirm": "yes"})

    erased = Contact.objects.get(pk=contact.pk)
    assert erased.email != "gone@example.com" and erased.first_name != "Gone"
    assert list(AuditEntry.objects.order_by("id").values_list("action", "rows")) == [
        ("export_dossier", 1),
        ("erase", 1),
    ]
    assert officer.get("/admin/preferences/auditentry/").status_code == 200
    assert officer.get(EXPORT).status_code == 403


def test_read_only_sees_the_lists_but_cannot_export_or_change(client):
    contact = ContactFactory(potential="medium")
    reader = member_of(client, READ_ONLY)

    for url in [CHANGELIST, "/admin/messaging/delivery/", "/admin/cadence/announcement/", "/admin/cadence/schedule/"]:
        assert reader.get(url).status_code == 200, url
    assert reader.get(EXPORT).status_code == 403
    assert reader.post(EXPORT, {"format": "0", "resource": "0", "contactresource_email": "on"}).status_code == 403
    assert offered_actions(reader) == set()
    reader.post(CHANGELIST, {"action": "set_potential_high", "_selected_action": [str(contact.pk)]})
    contact.refresh_from_db()
    assert contact.potential == "medium"
    assert reader.get("/admin/preferences/auditentry/").status_code == 403
