"""The dashboard shows saves and reasons on the way out, per month and per source, in Dutch and English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import User

from cadence.insights.dashboard import dashboard_stats
from preferences.models import LeaveFeedback
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


@pytest.fixture
def way_out(db) -> None:
    rows = [
        (datetime(2026, 11, 5, tzinfo=UTC), "website", "less_often", "too_often"),
        (datetime(2026, 11, 9, tzinfo=UTC), "website", "left", "never_signed_up"),
        (datetime(2026, 11, 20, tzinfo=UTC), "branch", "pause", ""),
        (datetime(2026, 12, 1, tzinfo=UTC), "website", "left", ""),
        (datetime(2026, 12, 2, tzinfo=UTC), "branch", "fewer_topics", "not_relevant"),
        (datetime(2025, 1, 2, tzinfo=UTC), "website", "left", "other"),  # older than the dashboard's year
    ]
    for occurred_at, source, outcome, reason in rows:
        contact = ContactFactory.create(source=source)
        LeaveFeedback.objects.create(
            contact=contact, occurred_at=occurred_at, outcome=outcome, reason=reason, contact_source=source
        )


def test_saves_and_reasons_are_counted_per_month_and_per_source(way_out):
    stats = dashboard_stats(now=NOW)["leaving"]
    november, december = stats["by_month"]["2026-11"], stats["by_month"]["2026-12"]
    assert november["outcomes"] == {"less_often": 1, "pause": 1, "fewer_topics": 0, "left": 1}
    assert november["reasons"] == {"too_often": 1, "not_relevant": 0, "never_signed_up": 1, "other": 0, "": 1}
    assert december["outcomes"] == {"less_often": 0, "pause": 0, "fewer_topics": 1, "left": 1}
    assert stats["by_source"]["website"]["outcomes"] == {"less_often": 1, "pause": 0, "fewer_topics": 0, "left": 2}
    assert stats["by_source"]["branch"]["reasons"]["not_relevant"] == 1


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Leaving, understood", "Less often", "Fewer topics", "too often", "no reason given", "save rate"]),
        ("nl", ["Vertrek, begrepen", "Minder vaak", "Minder onderwerpen", "te vaak", "geen reden opgegeven"]),
    ],
)
def test_the_dashboard_draws_the_saves_with_a_chart_and_a_table(staff, way_out, lang, words):
    with time_machine.travel(NOW, tick=False):
        body = staff.get("/admin/dashboard/?refresh=1", HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    section = body[body.index('id="leaving"') :]
    assert '<figure class="chart" role="img"' in section and "<svg" in section
    assert "<script" not in section
    for word in words:
        assert word in section, word
    # November on the website: one save (less often) of two, 50% kept.
    website = section[section.index('<th scope="row">website</th>') :].split("</tr>")[0]
    assert "<td>1</td><td>0</td><td>0</td><td>2</td><td>1</td><td>33</td>" in website
