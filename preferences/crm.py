"""Profiles from the CRM and from files: validate rows, then upsert them by CRM id or email.

Used by the admin import, `manage.py import_contacts` and the CRM sync API, so all three accept and
refuse the same rows. These paths manage the profile (name, language, share of customer, potential,
source, CRM id), never consent: a contact created here is `pending` and gets no mail until it
confirms itself (after a double opt-in invitation, `preferences.services.contacts_invite`).

Files may also carry `topics` (slugs separated by ";" or ","), `frequency` (a configured key) and
`consent_source` (where the permission to ask came from, recorded with the invitation). Topics and
frequency are what the invitation proposes: they are set on new and pending contacts only; a
confirmed contact's own choices are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from preferences.frequencies import frequency_choices
from preferences.models import Contact, Locale, Topic
from preferences.services import contact_set_share, normalize_email
from preferences.validators import refuse_control_characters

FIELDS = [
    "external_id",
    "email",
    "first_name",
    "locale",
    "share_of_customer",
    "potential",
    "source",
    "topics",
    "frequency",
    "consent_source",
]
PROFILE_FIELDS = ["first_name", "locale", "potential", "source", "external_id"]
TOPIC_SEPARATORS = re.compile(r"[;,|\s]+")


class ContactRowForm(forms.Form):
    external_id = forms.CharField(max_length=100, required=False)
    email = forms.EmailField(max_length=254)
    first_name = forms.CharField(max_length=100, required=False, validators=[refuse_control_characters])
    locale = forms.ChoiceField(choices=[("", ""), *Locale.choices], required=False)
    share_of_customer = forms.IntegerField(min_value=0, max_value=100, required=False)
    potential = forms.ChoiceField(choices=[("", ""), *Contact.Potential.choices], required=False)
    source = forms.CharField(max_length=100, required=False)
    topics = forms.CharField(required=False)
    frequency = forms.ChoiceField(choices=lambda: [("", ""), *frequency_choices()], required=False)
    consent_source = forms.CharField(max_length=200, required=False)

    def clean_topics(self) -> list[str]:
        """Return the topic slugs of the cell (their existence is checked per batch by `contacts_upsert`)."""
        return sorted({slug.lower() for slug in TOPIC_SEPARATORS.split(self.cleaned_data["topics"]) if slug})


def clean_row(row: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """Return (cleaned values, {}) for a valid row or (None, errors by field) for a bad one.

    Empty optional cells mean "leave as it is" on update.
    """
    data = {key: ("" if row.get(key) is None else str(row.get(key)).strip()) for key in FIELDS}
    form = ContactRowForm(data)
    if not form.is_valid():
        return None, {key: [str(m) for m in messages] for key, messages in form.errors.items()}
    cleaned = {key: value for key, value in form.cleaned_data.items() if value not in ("", None, [])}
    cleaned["email"] = normalize_email(cleaned["email"])
    return cleaned, {}


def row_keys(cleaned: Mapping[str, Any]) -> list[str]:
    """Return the keys that identify a row (to find duplicates within one file or request)."""
    keys = [f"email:{cleaned['email']}"]
    if cleaned.get("external_id"):
        keys.append(f"external_id:{cleaned['external_id']}")
    return keys


@dataclass
class RowResult:
    """What happened to one row: created, updated, unchanged or error (with errors by field)."""

    status: str
    contact: Contact | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


def match_contact(
    row: Mapping[str, Any], by_external_id: dict[str, Contact], by_email: dict[str, Contact]
) -> tuple[Contact | None, dict[str, list[str]]]:
    """Return (the contact a row updates, or None for a new one, {}) or (None, errors) on a conflict."""
    external_id = row.get("external_id")
    by_id = by_external_id.get(external_id) if external_id else None
    by_mail = by_email.get(row["email"])
    if by_id is not None:
        if by_mail is not None and by_mail.pk != by_id.pk:
            return None, {"email": [_("This address belongs to another contact.")]}
        return by_id, {}
    if by_mail is not None and external_id and by_mail.external_id and by_mail.external_id != external_id:
        return None, {"external_id": [_("This address belongs to a contact with another CRM id.")]}
    return by_mail, {}


def contacts_upsert(*, rows: Sequence[Mapping[str, Any]], source: str, dry_run: bool = False) -> list[RowResult]:
    """Create or update contacts from cleaned rows (see `clean_row`), matched by CRM id, else email.

    Return one RowResult per row, in order. With `dry_run` nothing is written. A share of customer
    that moves between 0 and above 0 goes through `contact_set_share`, so conversions are recorded.
    """
    by_external_id = {
        c.external_id: c
        for c in Contact.objects.filter(external_id__in=[r["external_id"] for r in rows if r.get("external_id")])
        if c.external_id is not None
    }
    by_email = {c.email: c for c in Contact.objects.filter(email__in=[r["email"] for r in rows])}
    wanted_slugs = {slug for row in rows for slug in row.get("topics", [])}
    topics_by_slug = {t.slug: t for t in Topic.objects.filter(slug__in=wanted_slugs)} if wanted_slugs else {}
    topic_choices: list[tuple[Contact, list[Topic]]] = []
    results: list[RowResult] = []
    to_create: list[Contact] = []
    to_update: list[Contact] = []
    share_changes: list[tuple[Contact, int]] = []
    now = timezone.now()
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        duplicate_of = next((seen[key] for key in row_keys(row) if key in seen), None)
        if duplicate_of is not None:
            results.append(
                RowResult("error", errors={"email": [_("Duplicate of row %(n)d.") % {"n": duplicate_of + 1}]})
            )
            continue
        seen.update(dict.fromkeys(row_keys(row), index))
        unknown = [slug for slug in row.get("topics", []) if slug not in topics_by_slug]
        if unknown:
            message = _("Unknown topic: %(unknown)s. Topics that exist: %(known)s.") % {
                "unknown": ", ".join(unknown),
                "known": ", ".join(Topic.objects.order_by("slug").values_list("slug", flat=True)),
            }
            results.append(RowResult("error", errors={"topics": [message]}))
            continue
        contact, errors = match_contact(row, by_external_id, by_email)
        if errors:
            results.append(RowResult("error", errors=errors))
            continue
        if contact is None:
            contact = Contact(
                email=row["email"],
                first_name=row.get("first_name", ""),
                locale=row.get("locale", Locale.NL),
                external_id=row.get("external_id") or None,
                share_of_customer=row.get("share_of_customer", 0),
                potential=row.get("potential", Contact.Potential.MEDIUM),
                source=row.get("source", source)[:100],
                frequency=row.get("frequency", Contact._meta.get_field("frequency").get_default()),
                created_at=now,
            )
            to_create.append(contact)
            if row.get("topics"):
                topic_choices.append((contact, [topics_by_slug[slug] for slug in row["topics"]]))
            by_email[contact.email] = contact
            if contact.external_id:
                by_external_id[contact.external_id] = contact
            results.append(RowResult("created", contact))
            continue
        changed = False
        if contact.email != row["email"]:
            contact.email = row["email"]
            changed = True
        for name in PROFILE_FIELDS:
            if name in row and getattr(contact, name) != row[name]:
                setattr(contact, name, row[name])
                changed = True
        if contact.status == Contact.Status.PENDING:
            if "frequency" in row and contact.frequency != row["frequency"]:
                contact.frequency = row["frequency"]
                changed = True
            if row.get("topics"):
                topic_choices.append((contact, [topics_by_slug[slug] for slug in row["topics"]]))
        share = row.get("share_of_customer")
        share_changed = False
        if share is not None and share != contact.share_of_customer:
            share_changes.append((contact, share))
            share_changed = True
        if changed:
            contact.updated_at = now
            to_update.append(contact)
        results.append(RowResult("updated" if changed or share_changed else "unchanged", contact))
    if dry_run:
        return results
    with transaction.atomic():
        Contact.objects.bulk_create(to_create, batch_size=1000)
        if to_update:
            Contact.objects.bulk_update(
                to_update, ["email", *PROFILE_FIELDS, "frequency", "updated_at"], batch_size=1000
            )
        if topic_choices:
            through = Contact.topics.through
            through.objects.filter(contact__in=[contact for contact, _topics in topic_choices]).delete()
            through.objects.bulk_create(
                [through(contact=contact, topic=topic) for contact, topics in topic_choices for topic in topics],
                batch_size=1000,
            )
        for contact, share in share_changes:
            contact_set_share(contact=contact, share=share, source=source)
            contact.share_of_customer = share
    return results


def contacts_upsert_checked(
    *, checked: Sequence[tuple[dict[str, Any] | None, dict[str, list[str]]]], source: str
) -> list[RowResult]:
    """Upsert the valid rows of `checked` (each `(cleaned row, {})` or `(None, errors by field)`) in one go.

    Return one result per row, in the order given: an error result for each invalid row.
    """
    valid = [row for row, _errors in checked if row is not None]
    upserted = iter(contacts_upsert(rows=valid, source=source))
    return [RowResult("error", errors=errors) if row is None else next(upserted) for row, errors in checked]
