from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from messaging.models import Delivery
from tests.factories import ContactFactory, DeliveryEventFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def delivery_with_events(contact, key: str, kind: str = "nurture", esp: str = "mailgun") -> Delivery:
    delivery = DeliveryFactory.create(
        contact=contact, kind=kind, template="welcome", idempotency_key=key, status="sent", esp_name=esp
    )
    for minute, event_type in [(1, "delivered"), (5, "opened"), (3, "clicked")]:
        DeliveryEventFactory.create(
            delivery=delivery,
            esp_name=esp,
            event_id=f"{key}-{event_type}",
            type=event_type,
            occurred_at=datetime(2026, 11, 1, 12, minute, tzinfo=UTC),
            click_url="https://example.com/clicked" if event_type == "clicked" else "",
        )
    return delivery


def test_deliveries_can_be_filtered_by_status_kind_and_esp(staff_client):
    contact = ContactFactory()
    wanted = delivery_with_events(contact, "a", kind="nurture", esp="mailgun")
    delivery_with_events(contact, "b", kind="welcome", esp="mailgun")
    delivery_with_events(contact, "c", kind="nurture", esp="postmark")
    response = staff_client.get("/admin/messaging/delivery/?status=sent&kind=nurture&esp_name=mailgun")
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted]


def test_a_delivery_page_shows_its_events_in_order(staff_client):
    delivery = delivery_with_events(ContactFactory(), "a")
    page = staff_client.get(f"/admin/messaging/delivery/{delivery.pk}/change/").content.decode()
    cells = re.findall(r'<td class="field-type">\s*<p>(\w+)</p>', page)
    assert cells == ["delivered", "clicked", "opened"]


def test_a_contact_page_shows_the_mail_timeline_newest_first(staff_client):
    contact = ContactFactory()
    delivery_with_events(contact, "a")
    page = staff_client.get(f"/admin/preferences/contact/{contact.pk}/change/").content.decode()
    assert "mail timeline" in page.lower()
    timeline = page[page.index("2026-11-01 12:05") :]
    assert timeline.index("12:05") < timeline.index("12:03") < timeline.index("12:01")
    assert "https://example.com/clicked" in timeline
