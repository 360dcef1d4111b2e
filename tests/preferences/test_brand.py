"""The sender's identity, from configuration, on every public page and in every mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import mail

from cadence.batch import batch_send
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

BRAND = {
    "BRAND_NAME": "Wilhelmina Bank",
    "BRAND_LOGO_URL": "https://cdn.example.nl/wilhelmina.svg",
    "BRAND_POSTAL_ADDRESS": "Postbus 1234, 1000 AB Amsterdam",
    "BRAND_PRIVACY_URL": "https://wilhelmina.example.nl/privacy",
    "BRAND_SECURITY_NOTE": "",
}


@pytest.fixture
def brand(settings):
    for key, value in BRAND.items():
        setattr(settings, key, value)


def public_pages(contact) -> list[str]:
    return [
        "/subscribe/",
        "/link/",
        f"/confirm/{make_token(contact, Purpose.CONFIRM)}/",
        f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/",
        f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/",
        "/preferences/broken-link/",
    ]


def test_every_public_page_carries_the_brand(client, brand, topics):
    contact = ContactFactory(topics=topics[:1])
    for path in public_pages(contact):
        body = client.get(path + "?lang=nl").content.decode()
        assert 'src="https://cdn.example.nl/wilhelmina.svg" alt="Wilhelmina Bank"' in body, path
        assert "Postbus 1234, 1000 AB Amsterdam" in body, path
        assert 'href="https://wilhelmina.example.nl/privacy"' in body, path
        assert "Wij vragen u nooit per e-mail om uw pincode" in body, path


@pytest.mark.parametrize(
    ("kind", "template"),
    [("confirmation", "confirmation"), ("welcome", "welcome"), ("already_subscribed", "already_subscribed")],
)
def test_every_mail_carries_the_brand_in_html_and_text(brand, topics, kind, template):
    status = "pending" if kind == "confirmation" else "confirmed"
    contact = ContactFactory(topics=topics[:1], status=status, locale="en")
    delivery = DeliveryFactory.create(contact=contact, kind=kind, template=template)
    batch_send(delivery_ids=[delivery.id])
    message = mail.outbox[0]
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "Wilhelmina Bank" in part and "Postbus 1234, 1000 AB Amsterdam" in part
        assert "We never ask for your PIN, password or access codes by email." in part
        assert "https://wilhelmina.example.nl/privacy" in part


def test_the_sender_name_comes_from_the_brand_not_the_product(brand, topics, settings):
    assert "Cadence" not in settings.DEFAULT_FROM_EMAIL
    contact = ContactFactory(topics=topics[:1])
    delivery = DeliveryFactory.create(contact=contact, kind="welcome")
    batch_send(delivery_ids=[delivery.id])
    assert mail.outbox[0].from_email == settings.DEFAULT_FROM_EMAIL


def test_a_configured_security_note_replaces_the_default(client, brand, settings):
    settings.BRAND_SECURITY_NOTE = "Wilhelmina Bank vraagt nooit om uw pincode."
    assert "Wilhelmina Bank vraagt nooit om uw pincode." in client.get("/subscribe/").content.decode()


def test_the_confirmation_mail_has_a_plain_link_beside_the_button(brand, topics):
    contact = ContactFactory(topics=topics[:1], status="pending", locale="nl")
    delivery = DeliveryFactory.create(contact=contact, kind="confirmation")
    batch_send(delivery_ids=[delivery.id])
    html = mail.outbox[0].alternatives[0][0]
    token_url = next(word for word in mail.outbox[0].body.split() if "/confirm/" in word)
    assert html.count(f'href="{token_url}"') == 2
    assert f">{token_url}</a>" in html
    assert "Werkt de knop niet?" in html


def test_dates_read_the_same_on_the_page_and_in_the_mail(client, topics):
    contact = ContactFactory(topics=topics[:1], locale="nl", paused_until=datetime(2027, 3, 5, 12, tzinfo=UTC))
    body = client.get(f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/").content.decode()
    assert "5 maart 2027" in body
