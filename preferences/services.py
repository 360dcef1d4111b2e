"""The writes of the preferences app: signup, confirmation, choices, pause, unsubscribe."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from preferences import signals
from preferences.frequencies import frequencies, get_frequency
from preferences.models import (
    ConsentEvent,
    Contact,
    Conversion,
    PendingSignup,
    SuppressionEntry,
    Topic,
    address_hash,
)
from preferences.suppression import is_listed, suppressed_hashes, suppression_add, suppression_entry_for

PAUSE_MONTHS = (1, 3, 6)


@dataclass(frozen=True)
class Evidence:
    """Who did it and how: stored with every ledger entry."""

    ip_address: str | None = None
    user_agent: str = ""
    source: str = ""
    wording_version: str = field(default_factory=lambda: settings.CONSENT_WORDING_VERSION)
    extra: dict[str, Any] = field(default_factory=dict)


def normalize_email(email: str) -> str:
    """Return the address as stored: trimmed, domain and local part lower-cased."""
    return email.strip().lower()


def address_is_suppressed(email: str) -> bool:
    """Return whether the address is on the suppression list."""
    return suppression_entry_for(email) is not None


def _record(contact: Contact, kind: str, evidence: Evidence, before: dict, after: dict) -> ConsentEvent:
    return ConsentEvent.objects.create(
        contact=contact,
        kind=kind,
        ip_address=evidence.ip_address,
        user_agent=evidence.user_agent[:500],
        source=evidence.source[:100],
        wording_version=evidence.wording_version,
        before=before,
        after=after,
        evidence=evidence.extra,
    )


@transaction.atomic
def contact_subscribe(
    *,
    email: str,
    first_name: str = "",
    locale: str = "nl",
    topics: Iterable[Topic] = (),
    frequency: str = "",
    source: str = "",
    evidence: Evidence,
) -> Contact:
    """Record a signup and ask for confirmation.

    A new address becomes a pending contact with the choices given and gets a confirmation mail. A
    known address is not changed by anyone who merely types it: for a pending or unsubscribed one
    (CRM-invited customers included) the choices wait in a PendingSignup, named by the confirmation
    link mailed to the address, and are applied when the owner confirms; a confirmed one gets a note
    with its preference-centre link and its choices are left alone. An address on the suppression
    list gets no mail at all. The caller answers the same in every case.
    """
    email = normalize_email(email)
    frequency = get_frequency(frequency or settings.CADENCE_DEFAULT_FREQUENCY).key
    contact, created = Contact.objects.select_for_update().get_or_create(
        email=email,
        defaults={"first_name": first_name, "locale": locale, "frequency": frequency, "source": source},
    )
    before = {} if created else contact.choices_snapshot()
    suppression = suppression_entry_for(email)
    if suppression is not None:
        # The address bounced or complained before: record the signup, mail nothing; the caller
        # answers exactly as for any other address.
        if contact.suppressed_at is None:
            contact.suppressed_at = suppression.created_at
            contact.suppression_reason = suppression.reason
            contact.save(update_fields=["suppressed_at", "suppression_reason", "updated_at"])
        _record(contact, ConsentEvent.Kind.SIGNUP, evidence, before, contact.choices_snapshot())
        return contact
    already_confirmed = contact.status == Contact.Status.CONFIRMED
    pending: PendingSignup | None = None
    if created:
        contact.topics.set(list(topics))
    elif not already_confirmed:
        pending = PendingSignup.objects.create(
            contact=contact,
            first_name=first_name,
            locale=locale,
            frequency=frequency,
            topics=sorted(topic.slug for topic in topics),
            source=source[:100],
        )
        evidence = replace(evidence, extra={**evidence.extra, "pending_signup": str(pending.pk)})
    event = _record(contact, ConsentEvent.Kind.SIGNUP, evidence, before, contact.choices_snapshot())
    signals.confirmation_requested.send(
        sender=Contact,
        contact=contact,
        event_id=event.pk,
        already_confirmed=already_confirmed,
        pending_signup_id=str(pending.pk) if pending else "",
    )
    return contact


@transaction.atomic
def contacts_invite(
    *,
    contact_ids: Iterable[Any],
    evidence: Evidence,
    consent_sources: dict[str, str] | None = None,
    import_id: str = "",
) -> int:
    """Invite pending contacts to subscribe (double opt-in); return how many were invited.

    Each gets one ledger entry of kind INVITED (never consent: the contact stays pending until it
    confirms) and one invitation mail, once in its life: a contact invited before, suppressed, or
    whose address is on the suppression list is skipped. `consent_sources` (by address) says where the
    permission to ask came from; it is stored with the entry. `import_id` names the import the contacts
    came in with: its invitations are one send, which the bounce and complaint brake can hold.
    """
    invited_before = ConsentEvent.objects.filter(contact=OuterRef("pk"), kind=ConsentEvent.Kind.INVITED)
    contacts = list(
        Contact.objects.select_for_update(skip_locked=True)
        .filter(pk__in=list(contact_ids), status=Contact.Status.PENDING, suppressed_at__isnull=True)
        .exclude(Exists(invited_before))
        .order_by("pk")
    )
    suppressed = suppressed_hashes(c.email for c in contacts)
    contacts = [c for c in contacts if not is_listed(c.email, suppressed)]
    sources = consent_sources or {}
    events = ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                contact=contact,
                kind=ConsentEvent.Kind.INVITED,
                ip_address=evidence.ip_address,
                user_agent=evidence.user_agent[:500],
                source=evidence.source[:100],
                wording_version=evidence.wording_version,
                before=contact.choices_snapshot(),
                after=contact.choices_snapshot(),
                evidence={**evidence.extra, "consent_source": sources.get(contact.email, contact.source)},
            )
            for contact in contacts
        ]
    )
    if contacts:
        signals.invitations_requested.send(
            sender=Contact,
            invitations=[(contact, event.pk) for contact, event in zip(contacts, events, strict=True)],
            import_id=import_id,
        )
    return len(contacts)


def pending_signup_for(contact: Contact, pending_signup_id: str) -> PendingSignup | None:
    """Return the contact's signup waiting for confirmation that a confirmation link names, if it still waits."""
    if not pending_signup_id:
        return None
    try:
        return PendingSignup.objects.filter(pk=uuid.UUID(pending_signup_id), contact=contact).first()
    except ValueError:
        return None


@transaction.atomic
def contact_confirm(*, contact: Contact, evidence: Evidence, pending_signup_id: str = "") -> bool:
    """Confirm a pending contact, or a known one whose signup waited for this confirmation (its choices
    are applied now). Return False when there was nothing to confirm."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    pending = pending_signup_for(contact, pending_signup_id)
    if contact.status != Contact.Status.PENDING and pending is None:
        return False
    before = contact.choices_snapshot()
    if pending is not None:
        contact.first_name = pending.first_name or contact.first_name
        contact.locale = pending.locale
        contact.frequency = get_frequency(pending.frequency).key
        contact.source = contact.source or pending.source
        contact.save(update_fields=["first_name", "locale", "frequency", "source", "updated_at"])
        contact.topics.set(Topic.objects.filter(slug__in=pending.topics, is_active=True))
        evidence = replace(evidence, extra={**evidence.extra, "pending_signup": str(pending.pk)})
    # What waited is spent or superseded: the owner has chosen.
    PendingSignup.objects.filter(contact=contact).delete()
    contact.status = Contact.Status.CONFIRMED
    contact.confirmed_at = timezone.now()
    contact.unsubscribed_at = None
    contact.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "updated_at"])
    _record(contact, ConsentEvent.Kind.CONFIRMED, evidence, before, contact.choices_snapshot())
    signals.contact_confirmed.send(sender=Contact, contact=contact)
    return True


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


@transaction.atomic
def contact_update_preferences(
    *,
    contact: Contact,
    evidence: Evidence,
    topics: Iterable[Topic] | None = None,
    general_updates: bool | None = None,
    frequency: str | None = None,
    locale: str | None = None,
    pause_months: int | None = None,
    resume: bool = False,
    service_reminders: bool | None = None,
) -> list[str]:
    """Apply the choices given and return the names of the fields that changed.

    `general_updates` is the explicit choice of no particular topic (the digest then takes every topic);
    `pause_months` pauses marketing mail for 1, 3 or 6 months from now; `resume` ends a pause;
    `service_reminders` turns renewal and end-date reminders on or off.
    """
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = contact.choices_snapshot()
    if frequency is not None:
        contact.frequency = get_frequency(frequency).key
    if locale is not None:
        contact.locale = locale
    if general_updates is not None:
        contact.general_updates = general_updates
    if pause_months is not None:
        if pause_months not in PAUSE_MONTHS:
            raise ValueError(f"pause_months must be one of {PAUSE_MONTHS}")
        contact.paused_until = _add_months(timezone.now(), pause_months)
    elif resume:
        contact.paused_until = None
    if service_reminders is not None:
        contact.service_reminders = service_reminders
    contact.save()
    if topics is not None:
        contact.topics.set(list(topics))
    after = contact.choices_snapshot()
    changes = [key for key in after if after[key] != before.get(key)]
    if changes:
        kind = (
            ConsentEvent.Kind.PAUSED
            if changes == ["paused_until"] and contact.paused_until
            else ConsentEvent.Kind.PREFERENCES
        )
        _record(contact, kind, evidence, before, after)
        signals.preferences_changed.send(sender=Contact, contact=contact, changes=changes)
    return changes


@transaction.atomic
def contact_request_link(*, email: str) -> bool:
    """Mail a fresh preference-centre link to a known address. Return whether one goes out.

    The caller answers the same either way. Erased and suppressed addresses get nothing.
    """
    contact = Contact.objects.filter(email=normalize_email(email), suppressed_at__isnull=True).first()
    if contact is None or address_is_suppressed(contact.email):
        return False
    # The new link replaces the old ones: only the mailbox gets it, so whoever asked cannot lock anyone out.
    contact.revoke_links()
    signals.link_requested.send(sender=Contact, contact=contact, request_id=secrets.token_hex(8))
    return True


@transaction.atomic
def contact_sign_out_everywhere(*, contact: Contact) -> None:
    """Revoke every preference, confirmation and dossier link the contact holds (unsubscribe links keep working)."""
    contact.revoke_links()


@transaction.atomic
def contact_request_dossier(*, contact: Contact) -> bool:
    """Mail the contact a one-time link to their dossier (fresh proof of the mailbox). Return whether one goes out."""
    if contact.suppressed_at is not None or address_is_suppressed(contact.email):
        return False
    signals.dossier_requested.send(sender=Contact, contact=contact, request_id=secrets.token_hex(8))
    return True


def contact_use_dossier_link(*, contact: Contact) -> bool:
    """Spend the contact's dossier link (every one sent so far). Return False when it was spent already.

    A conditional update: of two requests with the same link, exactly one wins.
    """
    spent = Contact.objects.filter(pk=contact.pk, dossier_version=contact.dossier_version).update(
        dossier_version=F("dossier_version") + 1
    )
    return spent == 1


@transaction.atomic
def contact_unsubscribe(*, contact: Contact, evidence: Evidence) -> bool:
    """Unsubscribe from all marketing mail at once. Return False when already unsubscribed."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.status == Contact.Status.UNSUBSCRIBED:
        return False
    before = contact.choices_snapshot()
    contact.status = Contact.Status.UNSUBSCRIBED
    contact.unsubscribed_at = timezone.now()
    contact.save(update_fields=["status", "unsubscribed_at", "updated_at"])
    _record(contact, ConsentEvent.Kind.UNSUBSCRIBED, evidence, before, contact.choices_snapshot())
    signals.contact_unsubscribed.send(sender=Contact, contact=contact)
    return True


@transaction.atomic
def contact_suppress(*, contact: Contact, reason: str, evidence: Evidence) -> bool:
    """Stop all mail to the contact's address for good (hard bounce, complaint, repeated soft bounces).

    Sets suppressed_at and suppression_reason, adds the address hash to the suppression list, writes
    a SUPPRESSED ledger entry with the evidence and sends `contact_suppressed`. Return False when
    the contact was suppressed already.
    """
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    suppression_add(email=contact.email, reason=reason, evidence=evidence.extra)
    if contact.suppressed_at is not None:
        return False
    before = contact.choices_snapshot()
    contact.suppressed_at = timezone.now()
    contact.suppression_reason = reason[:32]
    contact.save(update_fields=["suppressed_at", "suppression_reason", "updated_at"])
    after = {**contact.choices_snapshot(), "suppressed": reason}
    _record(contact, ConsentEvent.Kind.SUPPRESSED, evidence, before, after)
    signals.contact_suppressed.send(sender=Contact, contact=contact, reason=reason)
    return True


@transaction.atomic
def contacts_suppress(*, suppressions: Iterable[tuple[Any, str, Evidence]]) -> list[Contact]:
    """Suppress many contacts at once, as `contact_suppress` does one: (contact id, reason, evidence) each.

    The contacts are locked in one query, their addresses added to the suppression list in one
    statement, the contacts updated in one and their SUPPRESSED ledger entries written in one;
    `contacts_suppressed` is sent once with the newly suppressed contacts (their receivers stop, cancel
    and recompute for all of them at once). A contact named twice is suppressed for the first reason.
    Return the contacts suppressed by this call.
    """
    wanted: dict[Any, tuple[str, Evidence]] = {}
    for contact_id, reason, evidence in suppressions:
        wanted.setdefault(contact_id, (reason, evidence))
    if not wanted:
        return []
    contacts = list(Contact.objects.select_for_update().filter(pk__in=list(wanted)).order_by("pk"))
    SuppressionEntry.objects.bulk_create(
        [
            SuppressionEntry(address_hash=address_hash(c.email), reason=wanted[c.pk][0], evidence=wanted[c.pk][1].extra)
            for c in contacts
        ],
        ignore_conflicts=True,
    )
    fresh = [contact for contact in contacts if contact.suppressed_at is None]
    if not fresh:
        return []
    topics: dict[Any, list[str]] = {}
    for contact_id, slug in Contact.topics.through.objects.filter(contact_id__in=[c.pk for c in fresh]).values_list(
        "contact_id", "topic__slug"
    ):
        topics.setdefault(contact_id, []).append(slug)
    now = timezone.now()
    ledger = []
    for contact in fresh:
        reason, evidence = wanted[contact.pk]
        before = contact.choices_snapshot(topics=topics.get(contact.pk, []))
        contact.suppressed_at, contact.suppression_reason, contact.updated_at = now, reason[:32], now
        ledger.append(
            ConsentEvent(
                contact=contact,
                kind=ConsentEvent.Kind.SUPPRESSED,
                ip_address=evidence.ip_address,
                user_agent=evidence.user_agent[:500],
                source=evidence.source[:100],
                wording_version=evidence.wording_version,
                before=before,
                after={**before, "suppressed": reason},
                evidence=evidence.extra,
            )
        )
    Contact.objects.bulk_update(fresh, ["suppressed_at", "suppression_reason", "updated_at"])
    ConsentEvent.objects.bulk_create(ledger)
    signals.contacts_suppressed.send(sender=Contact, contacts=fresh)
    return fresh


def contact_record_admin_change(*, contact: Contact, user: str, before: dict, after: dict) -> ConsentEvent:
    """Write the ledger entry for a change of consent fields made by staff in the admin, naming them."""
    evidence = Evidence(source=f"admin:{user}"[:100], extra={"staff_user": user})
    event = _record(contact, ConsentEvent.Kind.PREFERENCES, evidence, before, after)
    changes = [key for key in after if after[key] != before.get(key)]
    signals.preferences_changed.send(sender=Contact, contact=contact, changes=changes)
    if "status" in changes and contact.status == Contact.Status.UNSUBSCRIBED:
        signals.contact_unsubscribed.send(sender=Contact, contact=contact)
    return event


@transaction.atomic
def contact_resubscribe(*, contact: Contact, evidence: Evidence) -> bool:
    """Undo an unsubscribe made from the preference centre (the person is there, holding the link)."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.status != Contact.Status.UNSUBSCRIBED or contact.confirmed_at is None:
        return False
    before = contact.choices_snapshot()
    contact.status = Contact.Status.CONFIRMED
    contact.unsubscribed_at = None
    contact.save(update_fields=["status", "unsubscribed_at", "updated_at"])
    _record(contact, ConsentEvent.Kind.RESUBSCRIBED, evidence, before, contact.choices_snapshot())
    signals.preferences_changed.send(sender=Contact, contact=contact, changes=["status"])
    return True


@transaction.atomic
def contact_set_share(*, contact: Contact, share: int, source: str = "") -> Conversion | None:
    """Set the share of customer (0-100) and keep the lifecycle true.

    0 -> above 0 records the contact's Conversion (once in its life: a returning former customer
    is not counted again) and clears `former_customer_at`; above 0 -> 0 sets `former_customer_at`.
    Return the Conversion created by this call, or None.
    """
    if not 0 <= share <= 100:
        raise ValueError("share must be between 0 and 100")
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    previous = contact.share_of_customer
    if previous == share:
        return None
    now = timezone.now()
    contact.share_of_customer = share
    if share == 0:
        contact.former_customer_at = now
    else:
        contact.former_customer_at = None
    contact.save(update_fields=["share_of_customer", "former_customer_at", "updated_at"])
    conversion = None
    if previous == 0 and share > 0 and not Conversion.objects.filter(contact=contact).exists():
        conversion = Conversion.objects.create(
            contact=contact,
            converted_at=now,
            source=source[:100],
            contact_source=contact.source,
            potential=contact.potential,
            signed_up_at=contact.created_at,
            days_as_prospect=max((now - contact.created_at).days, 0),
        )
        signals.contact_converted.send(sender=Contact, contact=contact, conversion=conversion)
    signals.contact_profile_changed.send(sender=Contact, contact=contact, changes=["share_of_customer"])
    return conversion


def contacts_set_potential(*, contact_ids: Iterable[Any], potential: str) -> int:
    """Set the potential of many contacts at once. Return how many changed."""
    if potential not in Contact.Potential.values:
        raise ValueError(f"unknown potential {potential!r}")
    return (
        Contact.objects.filter(pk__in=list(contact_ids))
        .exclude(potential=potential)
        .update(potential=potential, updated_at=timezone.now())
    )


@transaction.atomic
def contact_sunset(*, contact: Contact, stop: bool, evidence: Evidence) -> bool:
    """Sunset a contact who stopped engaging and record it in the ledger. Return False when nothing changed.

    First step (`stop=False`): mail only at the least frequent cadence. Last step (`stop=True`):
    stop marketing mail altogether (the contact is unsubscribed, with the reason in the ledger).
    """
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.status != Contact.Status.CONFIRMED:
        return False
    before = contact.choices_snapshot()
    if stop:
        contact.status = Contact.Status.UNSUBSCRIBED
        contact.unsubscribed_at = timezone.now()
        contact.save(update_fields=["status", "unsubscribed_at", "updated_at"])
    else:
        least = frequencies()[-1].key
        if contact.frequency == least:
            return False
        contact.frequency = least
        contact.save(update_fields=["frequency", "updated_at"])
    _record(contact, ConsentEvent.Kind.SUNSET, evidence, before, contact.choices_snapshot())
    if stop:
        signals.contact_unsubscribed.send(sender=Contact, contact=contact)
    else:
        signals.preferences_changed.send(sender=Contact, contact=contact, changes=["frequency"])
    return True


def pause_end(months: int, now: datetime | None = None) -> datetime:
    """Return when a pause of `months` started at `now` ends."""
    return _add_months(now or timezone.now(), months)


__all__ = [
    "Evidence",
    "address_hash",
    "address_is_suppressed",
    "contact_confirm",
    "contact_request_dossier",
    "contact_request_link",
    "contact_resubscribe",
    "contact_set_share",
    "contact_sign_out_everywhere",
    "contact_subscribe",
    "contact_sunset",
    "contact_suppress",
    "contact_unsubscribe",
    "contact_update_preferences",
    "contact_use_dossier_link",
    "contacts_set_potential",
    "normalize_email",
    "pause_end",
]
