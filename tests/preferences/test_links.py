"""Links grant what they say: they expire, die with a change of address or on request, and the dossier
needs a one-time link mailed to the mailbox (issue 16, finding 2)."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from cadence.batch import batch_send
from cadence.kinds import Kind
from messaging.models import Delivery
from preferences import services
from preferences.api_keys import crm_key_create
from preferences.models import Contact
from preferences.tokens import InvalidToken, Purpose, make_token, read_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def page(purpose: Purpose, contact: Contact) -> str:
    return f"/{purpose.value}/{make_token(contact, purpose)}/"


def test_a_preference_link_is_refused_after_it_expired(client, settings):
    settings.PREFERENCES_TOKEN_MAX_AGE = 90 * 24 * 3600
    contact = ContactFactory()
    with time_machine.travel(timezone.now() - timezone.timedelta(days=91)):
        old = page(Purpose.PREFERENCES, contact)
    with time_machine.travel(timezone.now() - timezone.timedelta(days=89)):
        recent = page(Purpose.PREFERENCES, contact)
    assert client.get(old).status_code == 404
    assert client.get(recent).status_code == 200


def test_an_unsubscribe_link_expires_too(settings):
    settings.UNSUBSCRIBE_TOKEN_MAX_AGE = 3600
    contact = ContactFactory()
    with time_machine.travel(timezone.now() - timezone.timedelta(hours=2)):
        old = make_token(contact, Purpose.UNSUBSCRIBE)
    with pytest.raises(InvalidToken):
        read_token(old, Purpose.UNSUBSCRIBE)


def test_a_change_of_address_through_the_crm_revokes_every_link(client):
    contact = ContactFactory(external_id="c-1", email="old@example.com")
    links = {purpose: page(purpose, contact) for purpose in Purpose}
    crm = APIClient()
    crm.credentials(HTTP_AUTHORIZATION=f"Api-Key {crm_key_create(name='crm', expires_in_days=30)[1]}")

    response = crm.patch("/api/v1/contacts/c-1/", {"email": "new@example.com"}, format="json")

    assert response.status_code == 200, response.content
    for purpose, link in links.items():
        assert client.get(link).status_code == 404, purpose
    contact.refresh_from_db()
    assert client.get(page(Purpose.PREFERENCES, contact)).status_code == 200


def test_a_change_of_address_by_any_door_revokes_the_links_sent_to_the_old_one():
    contact = ContactFactory(email="old@example.com")
    old = make_token(contact, Purpose.PREFERENCES)
    unsubscribe = make_token(contact, Purpose.UNSUBSCRIBE)
    Contact.objects.filter(pk=contact.pk).update(email="new@example.com")  # an import or the admin
    for token, purpose in ((old, Purpose.PREFERENCES), (unsubscribe, Purpose.UNSUBSCRIBE)):
        with pytest.raises(InvalidToken):
            read_token(token, purpose)


def test_sign_out_everywhere_revokes_preference_links_but_not_unsubscribe_links(client):
    contact = ContactFactory()
    url = page(Purpose.PREFERENCES, contact)
    other = page(Purpose.PREFERENCES, contact)
    unsubscribe = page(Purpose.UNSUBSCRIBE, contact)

    response = client.post(url, {"action": "sign_out"})

    assert response.status_code == 200 and 'href="/link/"' in response.content.decode()
    assert client.get(url).status_code == 404
    assert client.get(other).status_code == 404
    assert client.get(unsubscribe).status_code == 200  # leaving always works
    assert client.post(unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code == 200
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED


def test_a_new_link_from_the_link_page_revokes_the_ones_it_replaces(client):
    contact = ContactFactory(email="known@example.com")
    old = page(Purpose.PREFERENCES, contact)
    services.contact_request_link(email="known@example.com")
    assert client.get(old).status_code == 404
    contact.refresh_from_db()
    assert client.get(page(Purpose.PREFERENCES, contact)).status_code == 200


def test_an_unsubscribe_link_is_refused_on_the_preference_page_and_the_dossier(client):
    contact = ContactFactory()
    token = make_token(contact, Purpose.UNSUBSCRIBE)
    assert client.get(f"/preferences/{token}/").status_code == 404
    assert client.post(f"/preferences/{token}/", {"action": "export"}).status_code == 404
    assert client.post(f"/dossier/{token}/", {"action": "export"}).status_code == 404
    preferences = make_token(contact, Purpose.PREFERENCES)
    assert client.post(f"/dossier/{preferences}/", {"action": "export"}).status_code == 404


def test_the_unsubscribe_and_confirmation_pages_hand_out_no_preference_link(client):
    contact = ContactFactory(status=Contact.Status.PENDING)
    confirmed = client.post(page(Purpose.CONFIRM, contact)).content.decode()
    left = client.post(page(Purpose.UNSUBSCRIBE, contact), {"List-Unsubscribe": "One-Click"})
    for body in (confirmed, client.get(page(Purpose.UNSUBSCRIBE, contact)).content.decode(), left.content.decode()):
        assert "/preferences/" not in body.replace("/static/preferences/", "")
        assert 'href="/link/"' in body


def _mailed_dossier_link(client, contact, django_capture_on_commit_callbacks, settings) -> str:
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(page(Purpose.PREFERENCES, contact), {"action": "dossier"})
    assert response.status_code == 200
    delivery = Delivery.objects.get(template="dossier_link")
    assert delivery.kind == Kind.LINK_REQUEST and not delivery.marketing
    batch_send(delivery_ids=[delivery.id])
    message = mail.outbox[-1]
    assert message.to == [contact.email]
    link = next(line for line in message.body.splitlines() if "/dossier/" in line).strip()
    return link.removeprefix(settings.SITE_URL)


def test_the_dossier_is_shown_only_through_the_one_time_link_mailed_to_the_address(
    client, django_capture_on_commit_callbacks, settings
):
    contact = ContactFactory(email="eva@example.com", first_name="Eva", locale="en", share_of_customer=35)
    # The preference page itself hands out nothing: neither the old actions nor the new one.
    for action in ("export", "data", "dossier"):
        response = client.post(page(Purpose.PREFERENCES, contact), {"action": action})
        assert not response["Content-Type"].startswith("application/json")
        assert "35%" not in response.content.decode() and "consent_ledger" not in response.content.decode()
    Delivery.objects.all().delete()

    link = _mailed_dossier_link(client, contact, django_capture_on_commit_callbacks, settings)

    landing = client.get(link)  # a link scanner's visit spends nothing
    assert landing.status_code == 200 and "eva@example.com" not in landing.content.decode()
    assert client.get(link).status_code == 200
    response = client.post(link, {"action": "export"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["profile"]["email"] == "eva@example.com"

    again = client.post(link, {"action": "show"})
    assert again.status_code == 404 and "eva@example.com" not in again.content.decode()


def test_a_dossier_link_expires_after_half_an_hour(client, settings):
    settings.DOSSIER_TOKEN_MAX_AGE = 30 * 60
    contact = ContactFactory()
    with time_machine.travel(timezone.now() - timezone.timedelta(minutes=31)):
        old = page(Purpose.DOSSIER, contact)
    assert client.post(old, {"action": "show"}).status_code == 404
    assert client.post(page(Purpose.DOSSIER, contact), {"action": "show"}).status_code == 200


def test_a_legacy_unsubscribe_link_from_a_mail_sent_before_still_unsubscribes(client):
    from preferences.tokens import _encode_id, _signer

    contact = ContactFactory()
    legacy = _signer(contact.token_secret, Purpose.UNSUBSCRIBE).sign(_encode_id(contact.id))
    assert client.post(f"/unsubscribe/{legacy}/", {"List-Unsubscribe": "One-Click"}).status_code == 200
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    legacy_preferences = _signer(contact.token_secret, Purpose.PREFERENCES).sign(_encode_id(contact.id))
    assert client.get(f"/preferences/{legacy_preferences}/").status_code == 404
