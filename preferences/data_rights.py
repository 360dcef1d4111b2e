"""Data rights: a contact's export (everything held about them) and erasure (anonymisation)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from preferences import signals
from preferences.models import (
    ConsentEvent,
    Contact,
    Conversion,
    ImportJob,
    Product,
    SuppressionEntry,
    address_hash,
    new_token_secret,
)

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "cadence-contact-export/1"
ERASED_DOMAIN = "erased.invalid"  # RFC 2606: .invalid never resolves, so nothing can be delivered

PROFILE_FIELDS = [
    "id",
    "email",
    "first_name",
    "locale",
    "time_zone",
    "status",
    "frequency",
    "paused_until",
    "source",
    "external_id",
    "share_of_customer",
    "former_customer_at",
    "potential",
    "service_reminders",
    "suppressed_at",
    "suppression_reason",
    "created_at",
    "updated_at",
    "confirmed_at",
    "unsubscribed_at",
]
LEDGER_FIELDS = [
    "kind",
    "occurred_at",
    "ip_address",
    "user_agent",
    "source",
    "wording_version",
    "before",
    "after",
    "evidence",
]
PRODUCT_FIELDS = [
    "external_id",
    "name",
    "product_type",
    "started_on",
    "renews_on",
    "ends_on",
    "created_at",
    "updated_at",
]


# Keys of a suppression entry's evidence that say what happened without naming the person.
SUPPRESSION_EVIDENCE_KEPT = frozenset({"esp", "event", "delivery_id", "occurred_at", "soft_bounces"})


def _row(obj: Any, fields: list[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _log(contact: Contact, kind: str, source: str) -> None:
    # The entry says what happened and when, and nothing about the person.
    ConsentEvent.objects.create(contact=contact, kind=kind, source=source[:100])
    logger.info("data rights: %s", kind, extra={"contact_id": str(contact.pk), "source": source})


def _erase_from_import_reports(contact: Contact) -> None:
    """Drop the lines of import reports (bad rows) that mention the contact's address or CRM id."""
    needles = [value.lower() for value in (contact.email, contact.external_id) if value]
    for job in ImportJob.objects.filter(bad_count__gt=0).only("pk", "bad_rows").iterator():
        kept = [row for row in job.bad_rows if not any(n in str(row).lower() for n in needles)]
        if len(kept) != len(job.bad_rows):
            ImportJob.objects.filter(pk=job.pk).update(bad_rows=kept)


def contact_export(*, contact: Contact, source: str) -> dict[str, Any]:
    """Return everything held about the contact, ready for JSON (DjangoJSONEncoder), and log it.

    Sections owned by other apps (deliveries, schedule) come from `signals.data_export_collect`.
    """
    contact = Contact.objects.get(pk=contact.pk)
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now(),
        "profile": _row(contact, PROFILE_FIELDS),
        "choices": {
            **contact.choices_snapshot(),
            "topics": [
                {"slug": topic.slug, "name_en": topic.name_en, "name_nl": topic.name_nl}
                for topic in contact.topics.order_by("slug")
            ],
        },
        "consent_ledger": [
            _row(event, LEDGER_FIELDS) for event in contact.consent_events.order_by("occurred_at", "id")
        ],
        "products": [_row(product, PRODUCT_FIELDS) for product in contact.products.order_by("created_at", "id")],
        "conversion": (
            Conversion.objects.filter(contact=contact)
            .values("converted_at", "source", "contact_source", "potential", "days_as_prospect", "mails_before")
            .first()
        ),
    }
    for _receiver, section in signals.data_export_collect.send(sender=Contact, contact=contact):
        if section:
            name, value = cast(tuple[str, Any], section)
            data[name] = value
    _log(contact, ConsentEvent.Kind.DATA_EXPORTED, source)
    return data


@transaction.atomic
def contact_erase(*, contact: Contact, source: str) -> Contact:
    """Anonymise the contact for good and return it.

    The address survives only as a hash on the suppression list (so it is never mailed again); the
    contact row stays, without personal data, so delivery counts stay right. Ledger entries keep
    their kind and time; other apps strip their rows in `signals.contact_erasing`.
    """
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.email.endswith("@" + ERASED_DOMAIN):
        return contact
    entry, created = SuppressionEntry.objects.get_or_create(
        address_hash=address_hash(contact.email), defaults={"reason": SuppressionEntry.Reason.ERASED}
    )
    if not created:
        # The entry's evidence (a bounce report) names the recipient; keep only what names nobody.
        entry.evidence = {key: value for key, value in entry.evidence.items() if key in SUPPRESSION_EVIDENCE_KEPT}
        entry.save(update_fields=["evidence"])
    _erase_from_import_reports(contact)
    signals.contact_erasing.send(sender=Contact, contact=contact)
    # The ledger is append-only for people; erasure is the one legal reason to rewrite it.
    contact.consent_events.update(ip_address=None, user_agent="", source="", before={}, after={}, evidence={})
    Product.objects.filter(contact=contact).delete()
    contact.topics.clear()
    now = timezone.now()
    contact.email = f"erased-{uuid.uuid4().hex}@{ERASED_DOMAIN}"
    contact.first_name = ""
    contact.external_id = None
    contact.source = ""
    contact.locale = settings.LANGUAGE_CODE
    contact.time_zone = settings.DEFAULT_CONTACT_TIMEZONE
    contact.frequency = settings.CADENCE_DEFAULT_FREQUENCY
    contact.paused_until = None
    contact.share_of_customer = 0
    contact.potential = Contact.Potential.NONE
    contact.service_reminders = False
    contact.status = Contact.Status.UNSUBSCRIBED
    contact.unsubscribed_at = contact.unsubscribed_at or now
    contact.suppressed_at = contact.suppressed_at or now
    contact.suppression_reason = "erased"
    contact.token_secret = new_token_secret()  # every link ever sent stops working
    contact.save()
    _log(contact, ConsentEvent.Kind.ERASED, source)
    signals.contact_unsubscribed.send(sender=Contact, contact=contact)
    return contact


__all__ = ["contact_erase", "contact_export"]
