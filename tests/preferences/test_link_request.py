"""A person whose link is lost asks for a fresh one by address."""

from __future__ import annotations

import pytest
from django.core import mail

from cadence.batch import batch_send
from cadence.kinds import Kind
from messaging.models import Delivery
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/link/"


@pytest.fixture(autouse=True)
def _link_tasks_run_here():
    """The page hands every address to a worker task; here that task runs in the test's process."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def ask(client, email: str):
    return client.post(URL, {"email": email})


def test_known_and_unknown_addresses_get_the_same_answer(client):
    ContactFactory(email="known@example.com")
    known = ask(client, "known@example.com")
    unknown = ask(client, "stranger@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert "If we know this address" in known.content.decode()


def test_a_known_address_gets_a_working_link_as_a_service_mail(client, django_capture_on_commit_callbacks, settings):
    contact = ContactFactory(email="known@example.com", first_name="Eva", locale="en")
    with django_capture_on_commit_callbacks():
        ask(client, " Known@Example.com ")
    delivery = Delivery.objects.get()
    assert delivery.kind == Kind.LINK_REQUEST and not delivery.marketing
    batch_send(delivery_ids=[delivery.id])
    message = mail.outbox[0]
    assert message.to == ["known@example.com"]
    assert "List-Unsubscribe" not in message.extra_headers
    link = next(line for line in message.body.splitlines() if "/preferences/" in line).strip()
    page = client.get(link.removeprefix(settings.SITE_URL))
    assert page.status_code == 200 and contact.email in page.content.decode()


def test_unknown_and_suppressed_addresses_get_no_mail(client):
    ContactFactory(email="gone@example.com", suppressed_at="2026-01-01T00:00Z")
    ask(client, "gone@example.com")
    ask(client, "nobody@example.com")
    assert not Delivery.objects.exists()


def test_asking_too_often_is_throttled(client, settings):
    ContactFactory(email="known@example.com")
    for _attempt in range(3):
        assert ask(client, "known@example.com").status_code == 200
    response = ask(client, "known@example.com")
    assert response.status_code == 429
    assert Delivery.objects.count() == 3


def test_a_broken_link_page_offers_a_new_link(client):
    body = client.get("/preferences/not-a-token/").content.decode()
    assert 'href="/link/"' in body
