"""The import and export format of contacts (django-import-export), used by the admin import and export."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources
from import_export.results import RowResult

from preferences.crm import FIELDS, clean_row, match_contact, row_keys
from preferences.models import Contact, Topic
from preferences.services import contact_set_share

# What a spreadsheet reads as the start of a formula (OWASP "CSV injection"), the full-width forms
# some spreadsheets fold to them included. Leading blanks and line breaks do not hide one: Excel and
# LibreOffice skip them (" =1+1", "\n=HYPERLINK(...)").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


# Control characters other than tab, LF and CR: no spreadsheet shows them, and XLSX refuses them
# (an export with one would fail as a whole).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def escape_formula(value: Any) -> Any:
    """Return a text cell that a spreadsheet shows as text: a value that starts a formula, after any
    leading whitespace, gets a quote in front (the text itself is kept); control characters go."""
    if not isinstance(value, str):
        return value
    value = CONTROL_CHARACTERS.sub("", value)
    if value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS):
        return "'" + value
    return value


class ContactResource(resources.ModelResource):
    """Upsert contacts by CRM id, else email; every row is checked with `preferences.crm.clean_row`.

    Empty cells leave a field as it is. A repeated row (same email or CRM id) is a bad row. With
    `skip_bad_rows=True` passed to `import_data`, bad rows are left out and listed in
    `skipped_bad_rows` as (line in the file, errors); otherwise any bad row stops the import.
    """

    lifecycle = fields.Field(column_name="lifecycle", readonly=True)
    topics = fields.Field(column_name="topics")
    consent_source = fields.Field(column_name="consent_source")

    class Meta:
        model = Contact
        fields = [*FIELDS, "lifecycle", "status", "created_at"]
        export_order = [*FIELDS, "lifecycle", "status", "created_at"]
        import_id_fields = ["email"]
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skipped_bad_rows: list[tuple[int, dict[str, list[str]]]] = []
        self._seen: dict[str, int] = {}
        self._cleaned: dict[str, Any] = {}
        self._pending_share: int | None = None
        self._pending_topics: list[str] | None = None
        # New or pending contacts of this file, with the file's consent source: whom an invitation may go to.
        self.invitable: dict[str, str] = {}

    def get_import_fields(self) -> list[fields.Field]:
        return [f for f in super().get_import_fields() if f.column_name in FIELDS]

    def export_field(self, field: fields.Field, instance: Contact, **kwargs: Any) -> Any:
        return escape_formula(super().export_field(field, instance, **kwargs))

    def dehydrate_lifecycle(self, contact: Contact) -> str:
        return contact.lifecycle

    def dehydrate_topics(self, contact: Contact) -> str:
        return ";".join(topic.slug for topic in contact.topics.all())

    def dehydrate_consent_source(self, contact: Contact) -> str:
        return ""

    def _check(self, row: dict[str, Any], line: int) -> dict[str, list[str]]:
        cleaned, errors = clean_row(row)
        if cleaned is None:
            return errors
        for key in row_keys(cleaned):
            if key in self._seen:
                return {"email": [f"duplicate of line {self._seen[key]}"]}
        for key in row_keys(cleaned):
            self._seen[key] = line
        unknown = set(cleaned.get("topics", [])) - set(
            Topic.objects.filter(slug__in=cleaned.get("topics", [])).values_list("slug", flat=True)
        )
        if unknown:
            known = ", ".join(Topic.objects.order_by("slug").values_list("slug", flat=True))
            message = _("Unknown topic: %(unknown)s. Topics that exist: %(known)s.")
            return {"topics": [message % {"unknown": ", ".join(sorted(unknown)), "known": known}]}
        self._cleaned = cleaned
        return {}

    def import_row(self, row: dict[str, Any], instance_loader: Any, **kwargs: Any) -> RowResult:
        line = kwargs["row_number"] + 1  # line 1 holds the headers
        errors = self._check(row, line)
        if errors and kwargs.get("skip_bad_rows"):
            self.skipped_bad_rows.append((line, errors))
            result = self.get_row_result_class()()
            result.import_type = RowResult.IMPORT_TYPE_SKIP
            return result
        self._row_errors = errors
        return super().import_row(row, instance_loader, **kwargs)

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        if self._row_errors:
            raise ValidationError(self._row_errors)

    def get_instance(self, instance_loader: Any, row: dict[str, Any]) -> Contact | None:
        cleaned = self._cleaned
        by_id = (
            {
                c.external_id: c
                for c in Contact.objects.filter(external_id=cleaned["external_id"])
                if c.external_id is not None
            }
            if cleaned.get("external_id")
            else {}
        )
        by_email = {c.email: c for c in Contact.objects.filter(email=cleaned["email"])}
        contact, errors = match_contact(cleaned, by_id, by_email)
        if errors:
            raise ValidationError(errors)
        return contact

    def import_instance(self, instance: Contact, row: dict[str, Any], **kwargs: Any) -> None:
        self._pending_share = None
        self._pending_topics = None
        # The file proposes topics and frequency to new and pending contacts; a confirmed one chose its own.
        proposes = instance._state.adding or instance.status == Contact.Status.PENDING
        for name, value in self._cleaned.items():
            if name == "share_of_customer" and instance.pk is not None and not instance._state.adding:
                if value != instance.share_of_customer:
                    self._pending_share = value
                continue
            if name == "topics":
                self._pending_topics = value if proposes else None
                continue
            if name == "consent_source" or (name == "frequency" and not proposes):
                continue
            setattr(instance, name, value)

    def skip_row(self, instance: Contact, original: Any, row: Any, import_validation_errors: Any = None) -> bool:
        if self._pending_share is not None or self._pending_topics is not None:
            return False
        return super().skip_row(instance, original, row, import_validation_errors)

    def after_save_instance(self, instance: Contact, row: dict[str, Any], **kwargs: Any) -> None:
        if self._pending_topics is not None:
            instance.topics.set(Topic.objects.filter(slug__in=self._pending_topics))
            self._pending_topics = None
        if instance.status == Contact.Status.PENDING and not kwargs.get("dry_run"):
            self.invitable[instance.email] = self._cleaned.get("consent_source", instance.source)
        if self._pending_share is not None:
            contact_set_share(contact=instance, share=self._pending_share, source="import")
            instance.share_of_customer = self._pending_share
            self._pending_share = None

    def import_data(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
        self.skipped_bad_rows, self._seen, self.invitable = [], {}, {}
        result = super().import_data(dataset, *args, **kwargs)
        result.skipped_bad_rows = self.skipped_bad_rows
        result.invitable = self.invitable
        return result
