"""Opaque, signed, expiring, revocable links for one contact, each good for one purpose only.

A token is `<uuid as base64>[.<payload>].<timestamp>.<signature>`. The signature is keyed with the
server's SECRET_KEY, the contact's own `token_secret`, the contact's address and, for every purpose but
unsubscribing, the contact's `token_version` (and for the dossier link its `dossier_version`). So:

- a change of address, by any door (CRM, import, admin), revokes every link sent to the old address;
- "sign out everywhere" and a new link asked for on `/link/` (both bump `token_version`) revoke the
  preference, confirmation and dossier links sent before, but not the unsubscribe links: whoever
  holds an old mail can always still leave (RFC 8058);
- a dossier link works once (reading the dossier bumps `dossier_version`);
- rotating `token_secret` (erasure) revokes everything.

Every purpose has a `max_age` (settings `*_TOKEN_MAX_AGE`). No email address or sequential id is inside.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from enum import StrEnum

from django.conf import settings
from django.core import signing

from preferences.models import Contact


class Purpose(StrEnum):
    CONFIRM = "confirm"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"
    DOSSIER = "dossier"


class InvalidToken(Exception):
    """The token is malformed, tampered with, revoked or expired."""


def max_age(purpose: Purpose) -> int:
    """Return how long a link for `purpose` stays valid, in seconds."""
    return {
        Purpose.CONFIRM: settings.CONFIRM_TOKEN_MAX_AGE,
        Purpose.PREFERENCES: settings.PREFERENCES_TOKEN_MAX_AGE,
        Purpose.UNSUBSCRIBE: settings.UNSUBSCRIBE_TOKEN_MAX_AGE,
        Purpose.DOSSIER: settings.DOSSIER_TOKEN_MAX_AGE,
    }[purpose]


def _secret(contact: Contact, purpose: Purpose) -> str:
    """Return the contact's part of the key for `purpose`: what revokes the link when it changes."""
    parts = [contact.token_secret, contact.email.strip().lower()]
    if purpose != Purpose.UNSUBSCRIBE:
        parts.append(str(contact.token_version))
    if purpose == Purpose.DOSSIER:
        parts.append(str(contact.dossier_version))
    return "\x1f".join(parts)


def _signer(secret: str, purpose: Purpose) -> signing.TimestampSigner:
    return signing.TimestampSigner(
        key=settings.SECRET_KEY + secret,
        salt=f"preferences.tokens.{purpose}",
        sep=".",
        algorithm="sha256",
    )


def _encode_id(contact_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(contact_id.bytes).decode().rstrip("=")


def _decode_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken from exc


# What Django's TimestampSigner feeds salted_hmac for each purpose ("<salt>signer").
_KEY_SALTS = {purpose: f"preferences.tokens.{purpose}signer".encode() for purpose in Purpose}


def make_token(contact: Contact, purpose: Purpose, *, timestamp: str | None = None, payload: str = "") -> str:
    """Return a link token for `contact` that is valid only for `purpose`.

    The same token `_signer(...).sign()` makes (verified by it in `read_token`), built straight from
    hashlib: a batch signs two links per mail, and the signer objects cost more than the HMAC.
    `timestamp` is the signer's base62 time, for many tokens signed in one go (`token_timestamp`).
    `payload` (letters, digits, '-' and '_') is signed with the link and read back by `read_token_payload`.
    """
    value = _encode_id(contact.id) + (f".{payload}" if payload else "")
    value = f"{value}.{timestamp or token_timestamp()}"
    secret = (settings.SECRET_KEY + _secret(contact, purpose)).encode()
    key = hashlib.sha256(_KEY_SALTS[purpose] + secret).digest()
    signature = base64.urlsafe_b64encode(hmac.digest(key, value.encode(), "sha256")).rstrip(b"=").decode()
    return f"{value}.{signature}"


def token_timestamp() -> str:
    """Return the time a token is signed at, as TimestampSigner writes it."""
    return signing.b62_encode(int(time.time()))


def read_token_payload(token: str, purpose: Purpose) -> tuple[Contact, str]:
    """Return the contact a token belongs to and the payload signed with it, or raise InvalidToken."""
    parts = token.split(".")
    if len(parts) not in (3, 4):
        raise InvalidToken
    contact = Contact.objects.filter(id=_decode_id(parts[0])).first()
    if contact is None:
        raise InvalidToken
    try:
        _signer(_secret(contact, purpose), purpose).unsign(token, max_age=max_age(purpose))
    except signing.BadSignature as exc:
        if purpose != Purpose.UNSUBSCRIBE or not _legacy_unsubscribe_token(contact, token):
            raise InvalidToken from exc
    return contact, parts[1] if len(parts) == 4 else ""


def _legacy_unsubscribe_token(contact: Contact, token: str) -> bool:
    """Return whether `token` is an unsubscribe link signed before links were bound to the address.

    Mails sent before that change carry such links; leaving must keep working for them until they
    expire (UNSUBSCRIBE_TOKEN_MAX_AGE). Every other purpose refuses the old form.
    """
    try:
        _signer(contact.token_secret, Purpose.UNSUBSCRIBE).unsign(token, max_age=max_age(Purpose.UNSUBSCRIBE))
    except signing.BadSignature:
        return False
    return token.count(".") == 2


def read_token(token: str, purpose: Purpose) -> Contact:
    """Return the contact a token belongs to, or raise InvalidToken (malformed, tampered, revoked, expired)."""
    return read_token_payload(token, purpose)[0]


def contact_url(contact: Contact, purpose: Purpose, *, timestamp: str | None = None, payload: str = "") -> str:
    """Return the absolute URL of the page for `purpose`."""
    token = make_token(contact, purpose, timestamp=timestamp, payload=payload)
    return f"{settings.SITE_URL}/{purpose.value}/{token}/"
