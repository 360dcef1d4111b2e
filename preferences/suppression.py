"""The suppression list by address: find an entry in any hash form, add one, rehash old forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from preferences import addresshash
from preferences.models import SuppressionEntry


def suppression_entry_for(email: str, *, rehash: bool = True) -> SuppressionEntry | None:
    """Return the address's entry, whichever form it is listed under; rehash an old form with the current key."""
    forms = addresshash.lookup_hashes(email)
    entries = sorted(SuppressionEntry.objects.filter(address_hash__in=forms), key=lambda e: forms.index(e.address_hash))
    if not entries:
        return None
    entry = entries[0]
    if rehash and entry.address_hash != forms[0]:
        entry.address_hash, entry.hash_key_id = forms[0], addresshash.key_id(addresshash.current_key())
        try:
            with transaction.atomic():
                entry.save(update_fields=["address_hash", "hash_key_id"])
        except IntegrityError:  # rehashed meanwhile by another request
            return SuppressionEntry.objects.filter(address_hash=forms[0]).first()
    return entry


def suppression_add(
    *, email: str, reason: str, evidence: dict[str, Any] | None = None
) -> tuple[SuppressionEntry, bool]:
    """Return the address's entry and whether it was created now (keyed with the current key)."""
    entry = suppression_entry_for(email)
    if entry is not None:
        return entry, False
    return SuppressionEntry.objects.get_or_create(
        address_hash=addresshash.keyed_hash(email),
        defaults={
            "reason": reason,
            "evidence": evidence or {},
            "hash_key_id": addresshash.key_id(addresshash.current_key()),
        },
    )


def suppressed_hashes(emails: Iterable[str]) -> set[str]:
    """Return the listed hashes among every form of `emails` (one query)."""
    forms = {form for email in emails for form in addresshash.lookup_hashes(email)}
    return set(SuppressionEntry.objects.filter(address_hash__in=forms).values_list("address_hash", flat=True))


def is_listed(email: str, listed: set[str]) -> bool:
    """Return whether any form of `email` is among `listed` (from `suppressed_hashes`)."""
    return not listed.isdisjoint(addresshash.lookup_hashes(email))


def suppression_rehash(*, emails: Iterable[str]) -> int:
    """Rehash with the current key every entry listed under an old form of one of `emails`; return how many."""
    count = 0
    for email in emails:
        entry = SuppressionEntry.objects.filter(address_hash__in=addresshash.lookup_hashes(email)[1:]).first()
        if entry is not None and suppression_entry_for(email) is not None:
            count += 1
    return count
