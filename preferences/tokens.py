"""Opaque, signed, revocable links for one contact.

A token is `<uuid as base64>.<timestamp>.<signature>`. The signature is keyed with the server's
SECRET_KEY *and* the contact's own `token_secret`, so rotating that secret revokes every link the
contact ever received. No email address or sequential id is inside.
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


class InvalidToken(Exception):
    """The token is malformed, tampered with, revoked or expired."""


def _signer(contact_secret: str, purpose: Purpose) -> signing.TimestampSigner:
    return signing.TimestampSigner(
        key=settings.SECRET_KEY + contact_secret,
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


def make_token(contact: Contact, purpose: Purpose, *, timestamp: str | None = None) -> str:
    """Return a link token for `contact` that is valid only for `purpose`.

    The same token `_signer(...).sign()` makes (verified by it in `read_token`), built straight from
    hashlib: a batch signs two links per mail, and the signer objects cost more than the HMAC.
    `timestamp` is the signer's base62 time, for many tokens signed in one go (`token_timestamp`).
    """
    value = f"{_encode_id(contact.id)}.{timestamp or token_timestamp()}"
    secret = (settings.SECRET_KEY + contact.token_secret).encode()
    key = hashlib.sha256(_KEY_SALTS[purpose] + secret).digest()
    signature = base64.urlsafe_b64encode(hmac.digest(key, value.encode(), "sha256")).rstrip(b"=").decode()
    return f"{value}.{signature}"


def token_timestamp() -> str:
    """Return the time a token is signed at, as TimestampSigner writes it."""
    return signing.b62_encode(int(time.time()))


def read_token(token: str, purpose: Purpose, *, max_age: int | None = None) -> Contact:
    """Return the contact a token belongs to, or raise InvalidToken."""
    encoded_id = token.split(".", 1)[0]
    contact = Contact.objects.filter(id=_decode_id(encoded_id)).first()
    if contact is None:
        raise InvalidToken
    if max_age is None and purpose == Purpose.CONFIRM:
        max_age = settings.CONFIRM_TOKEN_MAX_AGE
    try:
        _signer(contact.token_secret, purpose).unsign(token, max_age=max_age)
    except signing.BadSignature as exc:
        raise InvalidToken from exc
    return contact


def contact_url(contact: Contact, purpose: Purpose, *, timestamp: str | None = None) -> str:
    """Return the absolute URL of the page for `purpose`."""
    return f"{settings.SITE_URL}/{purpose.value}/{make_token(contact, purpose, timestamp=timestamp)}/"
