"""/metrics carries HTTP request metrics (django-prometheus) behind the same token as the ops figures."""

from __future__ import annotations

import uuid

import pytest


@pytest.mark.django_db
def test_metrics_carry_http_request_metrics_behind_the_same_token(client, settings):
    settings.METRICS_TOKEN = "scrape-token-" + uuid.uuid4().hex
    client.get("/subscribe/")

    assert client.get("/metrics").status_code == 403
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").content.decode()

    assert "django_http_requests_total_by_view_transport_method_total" in text
    assert 'view="signup"' in text
    assert "cadence_queue_depth" in text or "cadence_scrape_errors" in text
