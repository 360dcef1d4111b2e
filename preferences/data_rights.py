"""Data rights: a contact's export (everything held about them) and erasure (anonymisation)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from preferences import signals
from preferences.frequencies import get_frequency
from preferences.import_jobs import import_files_of_ended_jobs_delete
from preferences.models import (
    ConsentEvent,
    Contact,
    Conversion,
    ImportJob,
    Locale,
    PendingSignup,
    Product,
    SuppressionEntry,
    invited_last,
    new_token_secret,
)
from preferences.suppression import suppression_add
from preferences.templatetags.dates import long_date

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
    "general_updates",
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


POTENTIAL_MEANING_TEXT = _(
    "Our own estimate of how well our products may suit you (high, medium, low or none). It only limits how "
    "often we may email you at most; it is not shared with anyone."
)
SHARE_MEANING_TEXT = _(
    "From our customer records: how much of your business in our kind of products you do with us, in percent. "
    "0 means you hold no product with us."
)

# What each internal field of the export means, for the person reading the JSON. The privacy officer's
# decision (docs/security.md): everything held about the person is in the export, internal estimates
# included (the right of access covers them); only the link keys (token_secret, token_version,
# dossier_version) are left out: they are locks, not data about the person.
FIELD_EXPLANATIONS = {
    "profile.id": _("Our internal number for your record. It means nothing outside this service."),
    "profile.source": _(
        "Where your address came from: a signup form, an import from our customer records, or the CRM."
    ),
    "profile.external_id": _("Your customer number in our customer records (CRM), if you are a customer."),
    "profile.share_of_customer": SHARE_MEANING_TEXT,
    "profile.potential": POTENTIAL_MEANING_TEXT,
    "profile.former_customer_at": _("When you stopped holding any product with us, if you did."),
    "profile.suppressed_at": _(
        "Since when we no longer email this address at all (a bounce, a complaint or your request)."
    ),
    "profile.suppression_reason": _(
        "Why we no longer email this address: hard_bounce, soft_bounces, complaint, manual or erased."
    ),
    "consent_ledger": _("Every change to your consent and choices, kept as proof of what you agreed to."),
    "consent_ledger.ip_address": _("The internet address the change came from: proof that it was you."),
    "consent_ledger.user_agent": _("The browser the change came from, as it named itself."),
    "consent_ledger.wording_version": _("Which version of our signup text you agreed to."),
    "consent_ledger.before": _("Your choices just before the change."),
    "consent_ledger.after": _("Your choices just after the change."),
    "consent_ledger.evidence": _(
        "Further proof of the change, such as a one-click unsubscribe from your mail program."
    ),
    "deliveries": _("Every email we made for you, sent or not."),
    "deliveries.template": _("Which of our email texts it was."),
    "deliveries.context": _("What the email was about, such as the product and date of a reminder."),
    "deliveries.esp_name": _("The email service that delivered it for us."),
    "deliveries.error": _("Why it could not be sent, if it could not."),
    "delivery_events": _(
        "What the email service reported about our emails to you: delivered, opened, clicked, bounced."
    ),
    "delivery_events.detail": _(
        "The report as the email service sent it, with the internet address and browser of an open or click."
    ),
    "schedule": _("When our next regular email to you is due."),
    "signups_waiting_for_confirmation": _(
        "Signups with your address that change nothing until the confirmation link we emailed you is used."
    ),
    "relationship_health": _(
        "Our own estimate of how well our emails fit you, from whether they reach you and are opened."
    ),
    "conversion": _(
        "When you first became a customer while receiving our emails, and how long you had been receiving them."
    ),
    "announcements": _(
        "Announcements meant for you and whether you have had them yet: each comes once, in a mail at your pace."
    ),
    "content_received": _("Which articles our emails brought you, so that none comes twice."),
    "leaving_feedback": _("What you told us when you left or asked for fewer emails."),
}


def _erase_from_admin_log(contact: Contact) -> None:
    """Scrub the admin's change log: the contact's own entries, and any entry that names its address or CRM id.

    The entries stay (who changed what, when) with a neutral description and no change message.
    """
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    erased = "erased contact"
    own = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Contact), object_id=str(contact.pk))
    own.update(object_repr=erased, change_message="")
    for needle in [value for value in (contact.email, contact.external_id, contact.first_name) if value]:
        if len(needle) < 3 and needle != contact.email:
            continue  # a two-letter name would scrub half the log
        LogEntry.objects.filter(object_repr__icontains=needle).update(object_repr=erased)
        LogEntry.objects.filter(change_message__icontains=needle).update(change_message="")


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
        "signups_waiting_for_confirmation": list(
            contact.pending_signups.order_by("created_at").values(
                "first_name", "locale", "frequency", "topics", "source", "created_at"
            )
        ),
        "leaving_feedback": list(
            contact.leave_feedback.order_by("occurred_at", "id").values("occurred_at", "outcome", "reason")
        ),
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
    data["explanations"] = FIELD_EXPLANATIONS
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
    entry, created = suppression_add(email=contact.email, reason=SuppressionEntry.Reason.ERASED)
    if not created:
        # The entry's evidence (a bounce report) names the recipient; keep only what names nobody.
        entry.evidence = {key: value for key, value in entry.evidence.items() if key in SUPPRESSION_EVIDENCE_KEPT}
        entry.save(update_fields=["evidence"])
    _erase_from_import_reports(contact)
    # An uploaded file that outlived its job would still hold the address (files of running jobs go when they end).
    import_files_of_ended_jobs_delete()
    _erase_from_admin_log(contact)
    signals.contact_erasing.send(sender=Contact, contact=contact)
    # The ledger is append-only for people; erasure is the one legal reason to rewrite it.
    contact.consent_events.update(ip_address=None, user_agent="", source="", before={}, after={}, evidence={})
    Product.objects.filter(contact=contact).delete()
    PendingSignup.objects.filter(contact=contact).delete()
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


EMPTY = "\u2013"  # an en dash: nothing to show

# What the internal codes of an export mean, for the readable page (the JSON keeps the codes).
STATUS_MEANING = {
    Contact.Status.PENDING: _("You signed up but have not confirmed yet: we send you no marketing emails."),
    Contact.Status.CONFIRMED: _("You confirmed: you receive the emails you chose."),
    Contact.Status.UNSUBSCRIBED: _("You unsubscribed: you receive no marketing emails."),
}
POTENTIAL_MEANING = POTENTIAL_MEANING_TEXT
SHARE_MEANING = SHARE_MEANING_TEXT
HEALTH_STATES = {
    "healthy": _("healthy: our emails reach you and seem welcome"),
    "cooling": _("cooling: a first sign that our emails fit you less well"),
    "at_risk": _("at risk: several signs that our emails do not fit you"),
    "lost": _("lost: our emails no longer reach or interest you"),
}
HEALTH_REASONS = {
    "overdue": _("we wrote to you later than promised"),
    "no_engagement": _("our recent emails were not opened"),
    "bounces": _("emails to your address came back"),
    "complaint": _("an email was marked as unwanted"),
    "suppressed": _("we no longer email this address"),
    "topics_dropped": _("you chose fewer topics"),
    "frequency_lowered": _("you chose to hear from us less often"),
}
MAIL_KINDS = {
    "confirmation": _("confirmation request"),
    "already_subscribed": _("note: already subscribed"),
    "link_request": _("link to your preferences"),
    "welcome": _("welcome series"),
    "nurture": _("news on your topics"),
    "reengagement": _("do our emails still fit you?"),
    "reminder": _("service reminder"),
    "announcement": _("announcement"),
}
MAIL_STATUSES = {
    "queued": _("waiting to be sent"),
    "sending": _("being sent"),
    "sent": _("sent"),
    "failed": _("could not be sent"),
    "cancelled": _("not sent"),
}
CHOICE_LABELS = {
    "status": _("Subscription"),
    "topics": _("Topics"),
    "general_updates": _("General updates"),
    "frequency": _("How often"),
    "locale": _("Language of our emails"),
    "paused_until": _("Paused until"),
    "service_reminders": _("Service reminders"),
}


def _when(value: Any) -> str:
    if not value:
        return EMPTY
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return f"{long_date(value)}, {timezone.localtime(value):%H:%M}"
    return long_date(value)


def _yes_no(value: bool) -> str:
    return str(_("yes") if value else _("no"))


def _choice_value(key: str, value: Any) -> str:
    if key == "status":
        return str(Contact.Status(value).label) if value in Contact.Status.values else str(value)
    if key == "frequency":
        return get_frequency(value).label
    if key == "locale":
        return str(Locale(value).label) if value in Locale.values else str(value)
    if key == "paused_until":
        return long_date(value) if value else EMPTY
    if key in ("general_updates", "service_reminders"):
        return _yes_no(bool(value))
    if key == "topics":
        return ", ".join(value) or EMPTY
    return str(value)


def _ledger_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    parts = []
    for key, label in CHOICE_LABELS.items():
        if key in after and before.get(key) != after.get(key):
            was = _choice_value(key, before[key]) if key in before else EMPTY
            parts.append(f"{label}: {was} → {_choice_value(key, after[key])}")
    return "; ".join(parts)


def readable_export(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the export as sections a person can read: labelled values, codes explained, dates written out."""
    profile, choices = data["profile"], data["choices"]
    locale = translation.get_language()
    topic_names = [topic["name_nl"] if locale == Locale.NL else topic["name_en"] for topic in choices["topics"]]
    status_meaning = STATUS_MEANING.get(profile["status"], "")
    if profile["status"] == Contact.Status.PENDING and invited_last(e["kind"] for e in data["consent_ledger"]):
        status_meaning = _(
            "We invited you to receive our emails and you have not said yes yet: we send you no marketing emails."
        )
    details = [
        (_("Email address"), profile["email"], ""),
        (_("First name"), profile["first_name"] or EMPTY, ""),
        (_("Subscription"), _choice_value("status", profile["status"]), status_meaning),
        (_("In our records since"), _when(profile["created_at"]), ""),
        (_("Confirmed"), _when(profile["confirmed_at"]), ""),
        (_("Unsubscribed"), _when(profile["unsubscribed_at"]), ""),
        (_("Where we got your address"), profile["source"] or EMPTY, ""),
        (_("Time zone"), profile["time_zone"], _("We send our emails during the day in this time zone.")),
        (_("Customer number in our records"), profile["external_id"] or EMPTY, ""),
        (_("Share of customer"), f"{profile['share_of_customer']}%", SHARE_MEANING),
        (_("Potential"), str(Contact.Potential(profile["potential"]).label), POTENTIAL_MEANING),
    ]
    if profile["suppressed_at"]:
        details.append(
            (
                _("We no longer email this address since"),
                _when(profile["suppressed_at"]),
                _("Reason: %(reason)s") % {"reason": profile["suppression_reason"]},
            )
        )
    chosen = [
        (_("Topics"), ", ".join(topic_names) or EMPTY, ""),
        (
            _("General updates"),
            _yes_no(choices.get("general_updates", False)),
            _("Yes means: no particular topic, news about everything."),
        ),
        (_("How often"), _choice_value("frequency", choices["frequency"]), ""),
        (_("Language of our emails"), _choice_value("locale", choices["locale"]), ""),
        (_("Paused until"), _choice_value("paused_until", choices["paused_until"]), ""),
        (
            _("Service reminders"),
            _yes_no(choices["service_reminders"]),
            _("Reminders before a product you hold renews or ends."),
        ),
    ]
    sections: list[dict[str, Any]] = [
        {"title": _("Your details"), "rows": details},
        {"title": _("Your choices"), "rows": chosen},
        {
            "title": _("History of your consent"),
            "head": [_("When"), _("What happened"), _("What changed"), _("How")],
            "table": [
                [
                    _when(event["occurred_at"]),
                    str(ConsentEvent.Kind(event["kind"]).label) if event["kind"] in ConsentEvent.Kind.values else "",
                    _ledger_change(event["before"] or {}, event["after"] or {}),
                    event["source"],
                ]
                for event in data["consent_ledger"]
            ],
        },
        {
            "title": _("Emails we sent you"),
            "head": [_("When"), _("Email"), _("Status")],
            "table": [
                [
                    _when(row.get("sent_at") or row.get("created_at")),
                    str(MAIL_KINDS.get(row["kind"], row["kind"])),
                    str(MAIL_STATUSES.get(row["status"], row["status"])),
                ]
                for row in data.get("deliveries") or []
            ],
        },
        {
            "title": _("Your products"),
            "head": [_("Product"), _("Since"), _("Renews on"), _("Ends on")],
            "table": [
                [
                    product["name"],
                    long_date(product["started_on"]),
                    long_date(product["renews_on"]),
                    long_date(product["ends_on"]),
                ]
                for product in data["products"]
            ],
        },
    ]
    health = data.get("relationship_health")
    if health:
        reasons = ", ".join(str(HEALTH_REASONS.get(code, code)) for code in health.get("reasons") or [])
        sections.append(
            {
                "title": _("How our emails fit you, as we see it"),
                "rows": [
                    (_("Assessment"), str(HEALTH_STATES.get(health["state"], health["state"])), reasons),
                    (_("Since"), _when(health.get("state_since")), ""),
                ],
            }
        )
    return sections


__all__ = ["contact_erase", "contact_export", "readable_export"]
