"""No text typed by the requester appears in a mail before the address is confirmed."""

from __future__ import annotations

import pytest
from django.core import mail

from preferences.models import Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PLANTED = "Your account is blocked, call 0900-1234"


def signup(client, email: str, locale: str) -> None:
    payload = {"email": email, "first_name": PLANTED, "locale": locale, "topics": ["saving"]}
    assert client.post("/api/v1/subscribe/", payload, content_type="application/json").status_code == 202


def rendered(message: mail.EmailMultiAlternatives) -> str:
    return "\n".join(
        [str(message.subject), str(message.body), *(str(content) for content, _type in message.alternatives)]
    )


@pytest.mark.parametrize("locale", ["en", "nl"])
def test_the_confirmation_mail_carries_no_first_name(
    client, topics, celery_eager, locale, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signup(client, "new@example.com", locale)

    (confirmation,) = mail.outbox
    assert "/confirm/" in confirmation.body
    assert PLANTED not in rendered(confirmation)
    assert "0900" not in rendered(confirmation)


@pytest.mark.parametrize("locale", ["en", "nl"])
def test_the_already_subscribed_note_carries_no_first_name(
    client, topics, celery_eager, locale, django_capture_on_commit_callbacks
):
    ContactFactory(email="known@example.com", first_name="Karel", locale=locale, status=Contact.Status.CONFIRMED)

    with django_capture_on_commit_callbacks(execute=True):
        signup(client, "known@example.com", locale)

    (note,) = mail.outbox
    assert "/preferences/" in note.body
    assert PLANTED not in rendered(note) and "Karel" not in rendered(note)
