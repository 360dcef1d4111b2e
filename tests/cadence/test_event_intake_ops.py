"""Ops can see the ear: intake lag, posts taken and processed, quarantined posts in /metrics and on the ops page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from messaging.models import EventPost

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-intake-tests"


def posts() -> None:
    now = timezone.now()
    EventPost.objects.create(esp="postmark", body=b"{}", received_at=now - timedelta(seconds=300))
    EventPost.objects.create(esp="postmark", body=b"{}", received_at=now - timedelta(seconds=5))
    EventPost.objects.create(esp="postmark", body=b"[]", state=EventPost.State.QUARANTINED, error="KeyError")
    EventPost.objects.create(esp="postmark", body=b"{}", state=EventPost.State.PROCESSED, events=1)


def test_metrics_show_the_intake_lag_waiting_quarantined_and_the_counters(client, settings):
    settings.METRICS_TOKEN = TOKEN
    posts()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    assert 300 <= samples["cadence_event_intake_lag_seconds"] < 330
    assert samples["cadence_event_posts_waiting"] == 2
    assert samples["cadence_event_posts_quarantined"] == 1
    last = EventPost.objects.order_by("-id").values_list("id", flat=True).first()
    assert samples["cadence_event_posts_accepted_total"] == last
    assert samples["cadence_event_posts_processed_total"] == last - 2


def test_the_ops_page_fails_its_verdict_on_a_late_intake_and_a_quarantined_post(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    posts()
    page = client.get("/admin/ops/").content.decode()
    assert "The promise does not hold right now." in page
    lag = re.search(r"✗.*?ESP events processed within 60 seconds</th>\s*<td[^>]*>(\d+) s", page, re.S)
    assert lag is not None and 300 <= int(lag.group(1)) < 330
    assert re.search(
        r"✗.*?No ESP post quarantined in the last 24 hours</th>\s*<td[^>]*><a href=\"[^\"]*state=quarantined\">1<",
        page,
        re.S,
    )
    assert "ESP webhook intake" in page


def test_the_intake_conditions_hold_when_nothing_waits(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    EventPost.objects.create(esp="postmark", body=b"{}", state=EventPost.State.PROCESSED)
    page = client.get("/admin/ops/").content.decode()
    assert re.search(r"✓<span[^>]*>holds</span></td>\s*<th scope=\"row\">ESP events processed within 60 seconds", page)
    assert re.search(r"✓<span[^>]*>holds</span></td>\s*<th scope=\"row\">No ESP post quarantined", page)
