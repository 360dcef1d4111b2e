"""The suppression list keeps a keyed hash (HMAC-SHA256), finds older forms and rehashes them."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command

from preferences import addresshash
from preferences.models import SuppressionEntry
from preferences.services import address_is_suppressed
from preferences.suppression import suppression_add, suppression_entry_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
EMAIL = "Joost.de.Vries@Example.nl"
UNKEYED = hashlib.sha256(EMAIL.lower().encode()).hexdigest()


def test_the_list_holds_a_keyed_hash_not_the_plain_sha256(settings):
    settings.SUPPRESSION_HASH_KEY = "k" * 40
    entry, created = suppression_add(email=EMAIL, reason="manual")

    assert created and entry.address_hash != UNKEYED and len(entry.address_hash) == 64
    assert entry.hash_key_id == addresshash.key_id(b"k" * 40)
    settings.SUPPRESSION_HASH_KEY = "other-key" * 5
    assert addresshash.keyed_hash(EMAIL) != entry.address_hash, "another key, another hash"


def test_without_a_key_of_its_own_the_hash_is_keyed_from_secret_key(settings):
    settings.SUPPRESSION_HASH_KEY = ""
    first = addresshash.keyed_hash(EMAIL)
    settings.SECRET_KEY = "another-secret-key-" * 4
    assert addresshash.keyed_hash(EMAIL) != first != UNKEYED


def test_a_legacy_unkeyed_entry_still_suppresses_and_is_rehashed_on_its_next_match():
    SuppressionEntry.objects.create(address_hash=UNKEYED, reason="hard_bounce", hash_key_id=addresshash.LEGACY_KEY_ID)

    assert address_is_suppressed(EMAIL.upper())

    entry = SuppressionEntry.objects.get()
    assert entry.address_hash == addresshash.keyed_hash(EMAIL) and entry.hash_key_id != addresshash.LEGACY_KEY_ID
    assert not SuppressionEntry.objects.filter(address_hash=UNKEYED).exists()


def test_a_rotated_key_keeps_working_through_the_old_keys_and_the_rehash_command(settings, capsys):
    settings.SUPPRESSION_HASH_KEY = "old-key-" * 5
    suppression_add(email=EMAIL, reason="complaint")
    ContactFactory(email=EMAIL.lower())
    settings.SUPPRESSION_HASH_KEY = "new-key-" * 5
    assert suppression_entry_for(EMAIL, rehash=False) is None, "without the old key the entry is lost"

    settings.SUPPRESSION_HASH_OLD_KEYS = ["old-key-" * 5]
    assert suppression_entry_for(EMAIL, rehash=False) is not None
    call_command("suppression_hashes", "--rehash")

    assert "Rehashed 1" in capsys.readouterr().out
    assert SuppressionEntry.objects.get().address_hash == addresshash.keyed_hash(EMAIL)
    settings.SUPPRESSION_HASH_OLD_KEYS = []
    assert address_is_suppressed(EMAIL)
