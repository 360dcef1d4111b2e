"""Ops can see the promise "never more often than you chose": two marketing mails inside one interval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from cadence.kinds import Kind
from cadence.ops.figures import marketing_interval_breaches
from messaging.models import Delivery
from tests.cadence.test_metrics import TOKEN, scrape
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


def sent(contact, kind: str, days_ago: float, *, marketing: bool = True) -> None:
    DeliveryFactory.create(
        contact=contact,
        kind=kind,
        marketing=marketing,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def mails() -> None:
    twice = ContactFactory(frequency="monthly")  # a nurture mail, and an announcement 10 days later: a breach
    sent(twice, Kind.NURTURE, 12)
    sent(twice, Kind.ANNOUNCEMENT, 2)
    rested = ContactFactory(frequency="monthly")  # 35 days apart: kept
    sent(rested, Kind.NURTURE, 36)
    sent(rested, Kind.REENGAGEMENT, 1)
    welcome = ContactFactory(frequency="quarterly")  # the welcome series is apart
    sent(welcome, Kind.WELCOME, 3)
    sent(welcome, Kind.WELCOME, 1)
    service = ContactFactory(frequency="monthly")  # service mail is not marketing
    sent(service, Kind.NURTURE, 5)
    sent(service, Kind.REMINDER, 1, marketing=False)
    weekly = ContactFactory(frequency="weekly")  # a week apart is one interval for a weekly reader
    sent(weekly, Kind.NURTURE, 8)
    sent(weekly, Kind.NURTURE, 1)


def test_people_with_two_marketing_mails_inside_one_interval_are_counted_once(mails):
    assert marketing_interval_breaches() == 1


def test_the_count_is_in_metrics_and_in_the_ops_verdict(mails, client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert scrape(client)["cadence_marketing_interval_breaches"][()] == 1
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    page = client.get("/admin/ops/").content.decode()
    assert "The promise does not hold right now." in page
    row = page[page.index("Nobody got two marketing mails inside one interval") :][:400]
    assert ">1<" in row
