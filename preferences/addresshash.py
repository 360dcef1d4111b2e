"""The keyed hash that keeps an address on the suppression list without keeping the address.

HMAC-SHA256 with a server secret: unlike a plain SHA-256, a guessed address cannot be hashed and
looked up by someone holding a copy of the table. The key is SUPPRESSION_HASH_KEY, else one derived
from SECRET_KEY. Lookups also try the keys of a rotation (SUPPRESSION_HASH_OLD_KEYS, and the keys
derived from SECRET_KEY_FALLBACKS) and the unkeyed SHA-256 of entries made before keyed hashing;
an entry found in an old form is rehashed with the current key (`suppression_entry_for`).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

# The key id of entries hashed with plain SHA-256 before keys existed.
LEGACY_KEY_ID = "sha256"
_DERIVATION = b"cadence.suppression-address-hash"


def normalise(email: str) -> str:
    return email.strip().lower()


def _derived(secret: str) -> bytes:
    return hmac.digest(secret.encode(), _DERIVATION, "sha256")


def current_key() -> bytes:
    """Return the key new entries are hashed with."""
    configured = getattr(settings, "SUPPRESSION_HASH_KEY", "")
    return configured.encode() if configured else _derived(str(settings.SECRET_KEY))


def old_keys() -> list[bytes]:
    """Return the keys of earlier rotations, still tried on lookup."""
    keys = [key.encode() for key in getattr(settings, "SUPPRESSION_HASH_OLD_KEYS", [])]
    if not getattr(settings, "SUPPRESSION_HASH_KEY", ""):
        keys += [_derived(str(secret)) for secret in getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    current = current_key()
    return [key for key in keys if key != current]


def key_id(key: bytes) -> str:
    """Return a short id of `key` (which key hashed an entry), revealing nothing about the key."""
    return hmac.digest(key, b"key-id", "sha256").hex()[:12]


def keyed_hash(email: str, key: bytes | None = None) -> str:
    """Return the HMAC-SHA256 (hex) of the normalised address under `key` (the current key by default)."""
    return hmac.digest(key or current_key(), normalise(email).encode(), "sha256").hex()


def legacy_hash(email: str) -> str:
    """Return the unkeyed SHA-256 that entries made before keyed hashing hold."""
    return hashlib.sha256(normalise(email).encode()).hexdigest()


def lookup_hashes(email: str) -> list[str]:
    """Return every form the address may be listed under: current key first, then old keys, then SHA-256."""
    return [keyed_hash(email), *(keyed_hash(email, key) for key in old_keys()), legacy_hash(email)]
