from __future__ import annotations

import base64

import pytest
import time_machine
from django.utils import timezone

from preferences.tokens import InvalidToken, Purpose, make_token, read_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_a_token_reads_back_to_its_contact():
    contact = ContactFactory()
    assert read_token(make_token(contact, Purpose.PREFERENCES), Purpose.PREFERENCES) == contact


def test_a_token_holds_neither_the_email_nor_a_sequential_id():
    contact = ContactFactory(email="secret.person@example.com")
    token = make_token(contact, Purpose.UNSUBSCRIBE)
    first = token.split(".")[0]
    raw = base64.urlsafe_b64decode(first + "==")
    assert b"secret" not in raw and "secret" not in token
    assert raw == contact.id.bytes


def test_a_token_is_valid_for_its_purpose_only():
    contact = ContactFactory()
    with pytest.raises(InvalidToken):
        read_token(make_token(contact, Purpose.PREFERENCES), Purpose.UNSUBSCRIBE)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t,
        lambda t: "",
        lambda t: "...",
        lambda t: t.split(".")[0],
    ],
)
def test_tampered_tokens_are_refused(mangle):
    contact = ContactFactory()
    with pytest.raises(InvalidToken):
        read_token(mangle(make_token(contact, Purpose.PREFERENCES)), Purpose.PREFERENCES)


def test_rotating_the_secret_revokes_every_old_link():
    contact = ContactFactory()
    old = make_token(contact, Purpose.PREFERENCES)
    contact.rotate_token_secret()
    with pytest.raises(InvalidToken):
        read_token(old, Purpose.PREFERENCES)
    assert read_token(make_token(contact, Purpose.PREFERENCES), Purpose.PREFERENCES) == contact


def test_confirmation_links_expire(settings):
    settings.CONFIRM_TOKEN_MAX_AGE = 3600
    contact = ContactFactory()
    with time_machine.travel(timezone.now() - timezone.timedelta(hours=2)):
        token = make_token(contact, Purpose.CONFIRM)
    with pytest.raises(InvalidToken):
        read_token(token, Purpose.CONFIRM)
    assert read_token(make_token(contact, Purpose.CONFIRM), Purpose.CONFIRM) == contact


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_is_exactly_what_djangos_timestamp_signer_makes_for_its_purpose_and_secret(purpose):
    from preferences.tokens import _encode_id, _secret, _signer

    contact = ContactFactory()
    with time_machine.travel("2026-05-01 10:00:00+00:00", tick=False):
        token = make_token(contact, purpose)
        assert token == _signer(_secret(contact, purpose), purpose).sign(_encode_id(contact.id))
        assert read_token(token, purpose) == contact
