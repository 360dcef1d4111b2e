"""`make run` gives a newcomer a metrics token that opens /metrics."""

from __future__ import annotations

import stat

import pytest

from config.launch import metrics_token


def test_make_run_keeps_one_metrics_token_under_var_readable_only_by_its_owner(tmp_path, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    token = metrics_token(tmp_path)
    assert len(token) >= 40
    assert metrics_token(tmp_path) == token
    assert stat.S_IMODE((tmp_path / "metrics-token").stat().st_mode) == 0o600


def test_a_metrics_token_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "from-the-environment")
    assert metrics_token(tmp_path) == "from-the-environment"
    assert not (tmp_path / "metrics-token").exists()


@pytest.mark.django_db
def test_the_printed_token_opens_metrics(client, settings, tmp_path, monkeypatch):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    settings.METRICS_TOKEN = metrics_token(tmp_path)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
