"""The marketing dashboard: counts that open the people behind them, and charts a marketer can read."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from cadence.models import Schedule
from preferences.models import Contact, Conversion
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
DASHBOARD = "/admin/dashboard/?refresh=1"


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


def _links(body: str) -> dict[str, str]:
    """Return {link text: href} of the page's links."""
    return {text.strip(): html.unescape(href) for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', body)}


def test_the_silent_count_opens_exactly_those_contacts(staff):
    now = timezone.now()
    for i in range(3):
        contact = ContactFactory(email=f"quiet{i}@example.com", frequency="monthly")
        Schedule.objects.create(contact=contact, next_due_at=now, last_sent_at=now - timedelta(days=120))
    ContactFactory(email="fine@example.com")
    body = staff.get(DASHBOARD).content.decode()
    url = next(href for href in re.findall(r'href="([^"]*silence=silent[^"]*)"', body))
    listed = staff.get(html.unescape(url)).content.decode()
    assert listed.count('class="action-select"') == 3
    assert "quiet0@example.com" in listed and "fine@example.com" not in listed
    assert 'silence=silent">3</a>' in body


def test_every_count_on_the_dashboard_is_a_link_that_lists_as_many_people(staff):
    with time_machine.travel(datetime(2026, 6, 15, 12, tzinfo=timezone.get_current_timezone()), tick=False):
        for i in range(40):
            ContactFactory(source="website" if i < 35 else "fair", potential="high" if i % 2 else "low")
        body = staff.get("/admin/dashboard/?refresh=1&from=2026-05&to=2026-07").content.decode()
        numbers = re.findall(r'<a href="([^"]+)">(\d+)</a>', body)
        assert len(numbers) >= 15
        for href, n in numbers:
            response = staff.get(html.unescape(href))
            assert response.status_code == 200, href
            listed = response.content.decode()
            assert "?e=1" not in response.get("Location", ""), href
            assert listed.count('class="action-select"') == min(int(n), 50), href


def test_the_charts_have_axes_with_values_a_minimum_sample_and_an_other_bucket(staff):
    now = timezone.now()
    for i in range(60):
        contact = ContactFactory(source="website")
        if i < 6:
            Conversion.objects.create(
                contact=contact, contact_source="website", potential="medium", signed_up_at=now, days_as_prospect=1
            )
    for source in ("fair", "radio", "flyer"):
        for _ in range(4):
            ContactFactory(source=source)
    body = staff.get(DASHBOARD).content.decode()
    charts = re.findall(r'<svg role="img".*?</svg>', body, re.S)
    assert len(charts) == 3
    for chart in charts:
        assert 'class="axis y' in chart or 'class="axis x' in chart
        assert "viewBox=" in chart and "<script" not in chart and 'width="' not in chart.split(">", 1)[0]
    rates = charts[2]
    assert "10.0%" in rates  # website: 6 of 60
    assert "fair" not in rates  # under the minimum sample, no rate of its own
    assert "other (groups under 30 contacts)" in body
    assert re.search(r"<td>other \(groups under 30 contacts\)</td><td class=\"n\">12</td>", body)


def test_the_date_range_chooses_the_months_of_the_charts(staff):
    body = staff.get("/admin/dashboard/?refresh=1&from=2026-01&to=2026-03").content.decode()
    months = re.findall(r"<td>(2026-\d\d)</td>", body)
    assert months == ["2026-01", "2026-02", "2026-03"]
    assert 'value="2026-01"' in body and 'value="2026-03"' in body
    assert Contact.objects.count() == 0
