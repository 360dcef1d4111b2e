"""The ops page's chart of mails sent per hour: pygal's SVG, true to the deliveries, kept to the page's policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
import time_machine
from django.contrib.auth.models import User

from cadence.insights.charts import integer_ticks
from messaging.models import Delivery
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
BAR = re.compile(
    r'<g class="bar"><title>(?P<title>[^<]*)</title><rect [^>]*?height="(?P<height>[0-9.]+)"[^>]*/>'
    r'<desc class="value">(?P<value>[^<]*)</desc>'
)


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def sent(contact, at: datetime, n: int, status: str = Delivery.Status.SENT) -> None:
    for _ in range(n):
        DeliveryFactory.create(contact=contact, status=status, sent_at=at)


def chart_of(page: str) -> str:
    found = re.search(r'<div class="module ops-chart">.*?</svg>', page, re.S)
    assert found, "no chart on the page"
    return found.group(0)


def test_each_hour_shows_as_many_mails_as_were_sent_in_it(staff_client):
    contact = ContactFactory()
    sent(contact, datetime(2026, 3, 10, 14, 5, tzinfo=UTC), 5)
    sent(contact, datetime(2026, 3, 10, 9, 59, tzinfo=UTC), 2)
    sent(contact, datetime(2026, 3, 8, 15, 0, tzinfo=UTC), 1)  # the oldest hour of the 48
    sent(contact, datetime(2026, 3, 8, 14, 59, tzinfo=UTC), 4)  # before them
    sent(contact, datetime(2026, 3, 10, 14, 10, tzinfo=UTC), 3, status=Delivery.Status.FAILED)

    with time_machine.travel(NOW, tick=False):
        page = staff_client.get("/admin/ops/").content.decode()

    bars = [match.groupdict() for match in BAR.finditer(chart_of(page))]
    assert len(bars) == 48
    shown = {bar["title"].rsplit(": ", 1)[0]: int(bar["value"]) for bar in bars if bar["value"] != "0"}
    assert shown == {"2026-03-08 15:00 UTC": 1, "2026-03-10 09:00 UTC": 2, "2026-03-10 14:00 UTC": 5}
    assert [bar["title"] for bar in bars][-1] == "2026-03-10 14:00 UTC: 5"
    heights = {bar["title"]: float(bar["height"]) for bar in bars}
    # One scale: two mails stand 2/5 as high as five.
    assert heights["2026-03-10 09:00 UTC: 2"] / heights["2026-03-10 14:00 UTC: 5"] == pytest.approx(0.4, abs=0.01)
    assert heights["2026-03-10 10:00 UTC: 0"] == 0
    assert "(8 in all)" in page
    assert "From 2026-03-08 15:00 to 2026-03-10 14:00 UTC, 8 mails in all." in page
    assert "The busiest hour, 2026-03-10 14:00 UTC, had 5." in page
    figures = re.findall(r'<tr><td>([0-9: -]+)</td><td class="n">(\d+)</td></tr>', page)
    assert figures == [("2026-03-08 15:00", "1"), ("2026-03-10 09:00", "2"), ("2026-03-10 14:00", "5")]


def test_the_chart_is_named_and_described_for_a_screen_reader_and_has_whole_number_ticks(staff_client):
    sent(ContactFactory(), NOW, 3)
    with time_machine.travel(NOW, tick=False):
        chart = chart_of(staff_client.get("/admin/ops/").content.decode())
    svg = re.search(r"<svg [^>]*>", chart).group(0)
    labelled = re.search(r'aria-labelledby="([^"]+)"', svg).group(1)
    described = re.search(r'aria-describedby="([^"]+)"', svg).group(1)
    assert 'role="img"' in svg
    assert re.search(rf'<title id="{labelled}">Mails sent per hour, last 48 hours \(UTC\)</title>', chart)
    assert re.search(rf'<desc id="{described}">From 2026-03-08 15:00 to 2026-03-10 14:00 UTC, 3 mails in all', chart)
    assert "Pygal" not in chart
    ticks = re.findall(r'<text x="-5" y="[0-9.]+" class="[a-z ]*">([^<]+)</text>', chart)
    assert ticks == ["0", "1", "2", "3"]


def test_the_chart_says_so_when_nothing_was_sent(staff_client):
    with time_machine.travel(NOW, tick=False):
        page = staff_client.get("/admin/ops/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    bars = [match.groupdict() for match in BAR.finditer(chart_of(page))]
    assert len(bars) == 48 and {bar["value"] for bar in bars} == {"0"}
    assert "Er is in deze uren geen mail verzonden." in page
    assert "Van 2026-03-08 15:00 tot 2026-03-10 14:00 UTC, 0 mails in totaal." in page


class _Inline(HTMLParser):
    """Collect what a Content-Security-Policy governs: scripts, style elements and attributes, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles: list[dict[str, str | None]] = []
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False
        self.inline_script_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True
        if tag == "style":
            self.styles.append(named)
        if "style" in named:
            self.style_attributes.append(tag)
        self.handlers += [name for name in named if name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script_text += data.strip()


def test_the_ops_page_keeps_to_a_policy_with_no_inline_script_and_nonced_styles(staff_client):
    sent(ContactFactory(), NOW, 2)
    with time_machine.travel(NOW, tick=False):
        response = staff_client.get("/admin/ops/")
        again = staff_client.get("/admin/ops/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    nonce = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9_-]{20,})'", policy["style-src"]).group(1)
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert nonce not in again["Content-Security-Policy"]

    found = _Inline()
    found.feed(response.content.decode())
    assert found.scripts and all((script.get("src") or "").startswith("/static/") for script in found.scripts)
    assert found.inline_script_text == ""
    assert len(found.styles) == 2  # the page's and the chart's
    assert all(style.get("nonce") == nonce for style in found.styles)
    assert found.style_attributes == [] and found.handlers == []


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (5, [0, 1, 2, 3, 4, 5]),
        (6, [0, 2, 4, 6]),
        (7, [0, 2, 4, 6, 8]),
        (23, [0, 5, 10, 15, 20, 25]),
        (1234, [0, 500, 1000, 1500]),
    ],
)
def test_count_axes_tick_in_whole_numbers(top, ticks):
    assert integer_ticks(top) == ticks
