"""The staff roles the project ships, as groups, and the one place their permissions are spelled out.

A group per role is created by a migration (cadence 0041) and brought up to date by
`manage.py roles sync` after a release that adds permissions. Sync sets each group's permissions to
exactly the list below: a permission added to one of these groups by hand is removed again. Give a
person a role by adding them to the group; anything beyond it is given to the person, not the group.
The table in docs/security.md ("Roles and permissions") says the same in words; keep both true.
"""

from __future__ import annotations

from typing import Any

# The lists that are no model's list: what each of the four roles may read.
_READ_LISTS = [
    "preferences.view_contact",
    "preferences.view_topic",
    "preferences.view_consentevent",
    "preferences.view_product",
    "preferences.view_conversion",
    "preferences.view_cadencepolicy",
    "messaging.view_delivery",
    "messaging.view_deliveryevent",
    "messaging.view_sendbrake",
    "cadence.view_schedule",
    "cadence.view_welcomestep",
    "cadence.view_contentitem",
    "cadence.view_reminderrule",
    "cadence.view_contacthealth",
    "cadence.view_announcement",
]

READ_ONLY = "read-only"
MARKETER = "marketer"
OPS = "ops"
PRIVACY_OFFICER = "privacy officer"

ROLES: dict[str, list[str]] = {
    # Sees every list and the dashboard's aggregates; changes, exports and sends nothing.
    READ_ONLY: [*_READ_LISTS, "cadence.view_dashboard"],
    # Works the contact base and the mail: edits, imports, exports the list, invites, writes content
    # and announcements and sends them. Never exports a person's dossier, erases or deletes a contact.
    MARKETER: [
        *_READ_LISTS,
        "cadence.view_dashboard",
        "preferences.change_contact",
        "preferences.import_contact",
        "preferences.export_contact",
        "preferences.invite_contact",
        "preferences.add_topic",
        "preferences.change_topic",
        "preferences.add_product",
        "preferences.change_product",
        "preferences.change_cadencepolicy",
        "cadence.add_contentitem",
        "cadence.change_contentitem",
        "cadence.delete_contentitem",
        "cadence.add_welcomestep",
        "cadence.change_welcomestep",
        "cadence.add_reminderrule",
        "cadence.change_reminderrule",
        "cadence.add_announcement",
        "cadence.change_announcement",
        "cadence.send_announcement",
    ],
    # Keeps the pipe running: the ops page, retrying a failed delivery, resuming or cancelling a send
    # held by the brake, reading the ESP's posts (a quarantined one included), pausing or running a
    # periodic task. Reads the lists to investigate; no import, export or contact changes.
    OPS: [
        *_READ_LISTS,
        "cadence.view_ops",
        "messaging.change_delivery",
        "messaging.change_sendbrake",
        "messaging.view_eventpost",
        "messaging.view_event_post_body",
        "django_celery_beat.view_periodictask",
        "django_celery_beat.change_periodictask",
    ],
    # Answers people's data-rights requests: reads a contact and their history, corrects them,
    # exports their dossier, erases them, and reads the audit trail and the suppression list.
    PRIVACY_OFFICER: [
        "preferences.view_contact",
        "preferences.change_contact",
        "preferences.view_consentevent",
        "preferences.view_product",
        "preferences.view_suppressionentry",
        "preferences.view_auditentry",
        "preferences.export_dossier",
        "preferences.erase_contact",
        "messaging.view_delivery",
        "messaging.view_deliveryevent",
    ],
}


def roles_sync(*, group_model: Any = None, permission_model: Any = None) -> dict[str, list[str]]:
    """Create each role's group and set its permissions to exactly ROLES; return the missing ones per role.

    Idempotent. The models are parameters so a migration can pass its historical ones.
    """
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = group_model or Group, permission_model or Permission
    missing: dict[str, list[str]] = {}
    for name, perms in ROLES.items():
        wanted = {tuple(perm.split(".", 1)) for perm in perms}
        found = [
            permission
            for permission in permission_model.objects.filter(
                codename__in={codename for _app, codename in wanted}
            ).select_related("content_type")
            if (permission.content_type.app_label, permission.codename) in wanted
        ]
        group, _created = group_model.objects.get_or_create(name=name)
        group.permissions.set(found)
        have = {(p.content_type.app_label, p.codename) for p in found}
        missing[name] = sorted(f"{app}.{codename}" for app, codename in wanted - have)
    return missing
