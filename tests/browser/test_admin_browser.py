"""A marketer on a phone reads the dashboard and the ops page in Debian's chromium; axe-core finds nothing serious."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from cadence.models import Schedule
from messaging.models import Delivery
from tests.browser.conftest import PHONE, serious_violations
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketer_phone(browser, live_server):
    User.objects.create_superuser("marketer", password="a-long-password-1")
    context = browser.new_context(**PHONE, locale="nl", extra_http_headers={"Accept-Language": "nl"})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    yield page
    context.close()


def test_the_dashboard_reads_on_a_phone_and_its_silent_count_opens_those_people(live_server, marketer_phone):
    now = timezone.now()
    for i in range(40):
        contact = ContactFactory(email=f"p{i}@example.com", source="website")
        if i < 2:
            Schedule.objects.create(contact=contact, next_due_at=now, last_sent_at=now - timedelta(days=120))
    page = marketer_phone
    page.goto(f"{live_server.url}/admin/dashboard/?refresh=1")
    assert page.get_by_role("heading", name="Marketingdashboard").is_visible()
    charts = page.locator("svg[role=img]")
    assert charts.count() == 3
    assert charts.first.bounding_box()["width"] <= 390
    assert serious_violations(page) == []
    # The sticky admin header covers the link once it is scrolled to the top on a phone: follow it by keyboard.
    page.locator("a[href*='silence=silent']").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("input.action-select").count() == 2


def test_the_ops_page_opens_with_its_verdict_on_a_phone(live_server, marketer_phone):
    contact = ContactFactory()
    now = timezone.now()
    DeliveryFactory.create_batch(3, contact=contact, status=Delivery.Status.SENT, sent_at=now)
    page = marketer_phone
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    response = page.goto(f"{live_server.url}/admin/ops/")
    assert "nonce-" in response.headers["content-security-policy"]
    verdict = page.locator("#ops-verdict-title")
    assert verdict.inner_text() in ("De belofte klopt nu niet.", "De belofte klopt: niemand blijft stil.")
    assert verdict.bounding_box()["y"] < 400
    chart = page.get_by_role("img", name="Verzonden mails per uur, laatste 48 uur (UTC)")
    assert chart.bounding_box()["width"] <= 390
    # The chart's own stylesheet applied under the page's policy: bars in the chart's colour, not SVG's black.
    tallest = chart.locator("g.bar rect").last
    assert tallest.evaluate("rect => getComputedStyle(rect).fill") == "rgb(65, 118, 144)"
    assert refused == []
    assert serious_violations(page) == []
