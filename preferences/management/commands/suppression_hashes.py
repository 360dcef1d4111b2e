"""`manage.py suppression_hashes [--rehash]`: count the suppression list's entries per hash key.

With --rehash, every entry listed under an old key (SUPPRESSION_HASH_OLD_KEYS, SECRET_KEY_FALLBACKS)
or the legacy unkeyed SHA-256 whose address a contact still holds is rehashed with the current key.
Entries of erased people cannot be rehashed (their address is gone): they are rehashed the first
time the address comes back; keep their old key in SUPPRESSION_HASH_OLD_KEYS until the report
shows none left under it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count

from preferences import addresshash
from preferences.data_rights import ERASED_DOMAIN
from preferences.models import Contact, SuppressionEntry
from preferences.suppression import suppression_rehash


class Command(BaseCommand):
    help = "Report the suppression list's entries per hash key; --rehash moves known addresses to the current key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rehash", action="store_true")

    def handle(self, *args: Any, rehash: bool, **options: Any) -> None:
        if rehash:
            emails = Contact.objects.exclude(email__endswith="@" + ERASED_DOMAIN).values_list("email", flat=True)
            count = suppression_rehash(emails=emails.iterator(chunk_size=2000))
            self.stdout.write(f"Rehashed {count} entries with the current key.")
        current = addresshash.key_id(addresshash.current_key())
        for row in SuppressionEntry.objects.values("hash_key_id").annotate(n=Count("id")).order_by("hash_key_id"):
            label = {current: "current key", addresshash.LEGACY_KEY_ID: "unkeyed SHA-256 (legacy)"}.get(
                row["hash_key_id"], "an old key"
            )
            self.stdout.write(f"{row['hash_key_id'] or '?'}  {row['n']}  {label}")
