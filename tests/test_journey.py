"""The subscriber's journey end to end: signup, confirm, welcome, preferences, one-click leave."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from messaging.models import Delivery
from preferences.models import Contact

pytestmark = pytest.mark.django_db


def links(text: str) -> list[str]:
    return re.findall(r"http://testserver/[\w/.\-]+/", text)


def test_signup_confirm_welcome_and_leave(settings, topics, celery_eager, django_capture_on_commit_callbacks):
    settings.SITE_URL = "http://testserver"
    browser = Client()

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/api/v1/subscribe/",
            {
                "email": "eva@example.com",
                "first_name": "Eva",
                "locale": "nl",
                "topics": ["saving", "pension"],
                "frequency": "biweekly",
            },
            content_type="application/json",
        )
    assert response.status_code == 202
    assert len(mail.outbox) == 1
    confirmation = mail.outbox[0]
    assert confirmation.to == ["eva@example.com"]
    assert confirmation.subject == "Bevestig uw aanmelding"
    assert "List-Unsubscribe" not in confirmation.extra_headers
    confirm_url = next(u for u in links(confirmation.body) if "/confirm/" in u)

    page = browser.get(confirm_url)
    assert "Ja, bevestig mijn aanmelding" in page.content.decode()
    assert len(mail.outbox) == 1

    with django_capture_on_commit_callbacks(execute=True):
        browser.post(confirm_url)
    assert len(mail.outbox) == 2
    welcome = mail.outbox[1]
    assert welcome.subject == "Welkom, Eva"
    assert "Sparen" in welcome.body and "Pensioen" in welcome.body
    assert "elke 2 weken" in welcome.body
    html = welcome.alternatives[0][0]
    assert '<html lang="nl">' in html and 'style="' in html, "CSS must be inlined"
    unsubscribe_url = next(u for u in links(welcome.body) if "/unsubscribe/" in u)
    preferences_url = next(u for u in links(welcome.body) if "/preferences/" in u)
    assert unsubscribe_url in html and preferences_url in html

    header = welcome.extra_headers["List-Unsubscribe"]
    assert header == f"<{unsubscribe_url}>"  # no mailto: nothing would read that mailbox
    assert welcome.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert welcome.metadata["delivery_id"] == str(Delivery.objects.get(kind="welcome").id)

    assert browser.get(preferences_url).status_code == 200

    mail_client = Client(enforce_csrf_checks=True)
    one_click = mail_client.post(
        unsubscribe_url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert one_click.status_code == 200
    assert Contact.objects.get(email="eva@example.com").status == Contact.Status.UNSUBSCRIBED

    sent = Delivery.objects.order_by("created_at")
    assert [(d.kind, d.status) for d in sent] == [("confirmation", "sent"), ("welcome", "sent")]
    assert all(d.esp_message_id for d in sent)


def test_english_speakers_get_english_mail(settings, topics, celery_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(
            "/api/v1/subscribe/",
            {"email": "sam@example.com", "locale": "en", "topics": ["saving"]},
            content_type="application/json",
        )
    assert mail.outbox[0].subject == "Please confirm your subscription"
