"""Erasure that erases: keyed suppression hashes, a scrubbed admin log, no file, an export of every table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import models

from cadence.models import ContentReceipt
from preferences.data_rights import contact_erase, contact_export
from preferences.models import Contact, ImportJob, LeaveFeedback
from tests.conftest import use_import_storage
from tests.factories import ContentItemFactory
from tests.preferences.test_data_rights import EMAIL, NAME, every_text_value, history, person  # noqa: F401

pytestmark = pytest.mark.django_db
UNKEYED = hashlib.sha256(EMAIL.encode()).hexdigest()


@pytest.fixture
def dossier(history, settings, tmp_path) -> Contact:  # noqa: F811
    """The person with an admin log, leaving feedback, content received and an import file left on disk."""
    use_import_storage(settings, tmp_path)
    admin = User.objects.create_superuser("privacy", password="pw")
    content_type = ContentType.objects.get_for_model(Contact)
    # What the admin logged before Contact.__str__ stopped showing the address, and a change message.
    for repr_, message in [(EMAIL, ""), (str(history), f'[{{"changed": {{"fields": ["Email"]}}, "old": "{EMAIL}"}}]')]:
        LogEntry.objects.create(
            user=admin,
            content_type=content_type,
            object_id=str(history.pk),
            object_repr=repr_,
            action_flag=CHANGE,
            change_message=message,
        )
    LeaveFeedback.objects.create(contact=history, outcome=LeaveFeedback.Outcome.LESS_OFTEN, reason="too_often")
    item: Any = ContentItemFactory()
    ContentReceipt.objects.create(contact=history, item_id=item.pk)
    left = tmp_path / "old-import.csv"
    left.write_text(f"email,first_name\n{EMAIL},{NAME}\n")
    ImportJob.objects.create(file_path=left.name, original_name="crm.csv", status=ImportJob.Status.DONE)
    return Contact.objects.get(pk=history.pk)


def test_the_admin_log_names_a_contact_without_its_address(dossier, rf):
    from django.contrib import admin

    request = rf.post("/admin/preferences/contact/")
    request.user = User.objects.get(username="privacy")
    contact_admin = admin.site._registry[Contact]
    entry = contact_admin.log_change(request, dossier, [{"changed": {"fields": ["First name"]}}])

    entry.refresh_from_db()
    assert entry.object_repr == f"contact {str(dossier.pk)[:8]}"
    assert EMAIL not in entry.object_repr and NAME not in entry.change_message


def test_erasure_leaves_no_address_name_or_unkeyed_hash_in_any_column_log_entry_or_file(dossier, tmp_path):
    before = every_text_value()
    assert any(EMAIL in value for model, value in before if model == "LogEntry")

    contact_erase(contact=dossier, source="test")

    personal = [EMAIL, NAME, UNKEYED, "CRM-WV-1"]
    leaks = [(model, value) for model, value in every_text_value() for s in personal if s.lower() in value.lower()]
    assert leaks == []
    files = [path.read_text() for path in Path(tmp_path).rglob("*") if path.is_file()]
    assert not any(EMAIL in text or NAME in text for text in files)
    entries = LogEntry.objects.filter(object_id=str(dossier.pk))
    assert entries.count() == 2 and {e.object_repr for e in entries} == {"erased contact"}


# Each model that points at a contact, and the export section that holds its rows (or why none does).
EXPORT_SECTIONS = {
    "ConsentEvent": "consent_ledger",
    "Product": "products",
    "Conversion": "conversion",
    "LeaveFeedback": "leaving_feedback",
    "PendingSignup": "signups_waiting_for_confirmation",
    "Delivery": "deliveries",
    "DeliveryEvent": "delivery_events",
    "Schedule": "schedule",
    "ContactHealth": "relationship_health",
    "ContentReceipt": "content_received",
    "AnnouncementRecipient": "announcements",
}


def test_the_export_covers_every_table_that_holds_the_person(dossier):
    holding = {
        model.__name__
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model is Contact
    }
    assert holding <= set(EXPORT_SECTIONS), f"tables not in the export: {holding - set(EXPORT_SECTIONS)}"

    data = json.loads(json.dumps(contact_export(contact=dossier, source="test"), default=str))

    assert set(EXPORT_SECTIONS.values()) <= set(data)
    assert (
        data["leaving_feedback"][0]["outcome"] == "less_often" and data["leaving_feedback"][0]["reason"] == "too_often"
    )
    assert len(data["content_received"]) == 1 and data["content_received"][0]["title"]
