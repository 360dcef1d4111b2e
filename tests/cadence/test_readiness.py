"""/healthz is liveness (the process, nothing else); /readyz is readiness per role, with details only for
the holder of the metrics token; /probes still answers; the worker ping is kept, not sent per call."""

from __future__ import annotations

import pytest
from django.db import connection

from cadence.ops import probes

pytestmark = pytest.mark.django_db

TOKEN = "probe-token-for-tests"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.PROBE_WORKER_TIMEOUT = 0.2


@pytest.fixture
def database_down(tmp_path):
    real_name = connection.settings_dict["NAME"]
    gone = str(tmp_path / "no-such-dir" / "db.sqlite3") if connection.vendor == "sqlite" else "cadence_no_such_db"
    connection.close()
    connection.settings_dict["NAME"] = gone
    yield
    connection.close()
    connection.settings_dict["NAME"] = real_name


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": CLOSED_REDIS, "OPTIONS": {"socket_connect_timeout": 0.5}}
    }


def test_liveness_is_200_even_with_the_database_down_and_says_nothing_more(client, database_down):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_web_readiness_checks_database_and_cache_and_gives_anyone_status_words_only(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "role": "web", "checks": {"database": "ok", "cache": "ok"}}


def test_a_failing_cache_is_503_with_no_exception_text_or_host_for_anonymous_callers(client, cache_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "role": "web", "checks": {"database": "ok", "cache": "failing"}}
    assert b"127.0.0.1" not in response.content and b"Error" not in response.content


def test_with_the_metrics_token_the_details_are_given(client, cache_down):
    response = client.get("/readyz", **BEARER)
    assert response.status_code == 503
    cache_check = response.json()["checks"]["cache"]
    assert cache_check["ok"] is False and "Error" in cache_check["detail"]
    assert response.json()["checks"]["database"]["detail"] == connection.vendor

    wrong = client.get("/readyz", HTTP_AUTHORIZATION="Bearer wrong")
    assert wrong.json()["checks"]["cache"] == "failing"


def test_a_database_outage_shows_no_exception_text_without_the_token(client, database_down):
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json()["checks"]["database"] == "failing"
    assert b"no-such" not in anonymous.content and b"Error" not in anonymous.content
    detailed = client.get("/readyz", **BEARER).json()["checks"]["database"]
    assert detailed["ok"] is False and "Error" in detailed["detail"]


def test_each_role_runs_its_own_checks_and_an_unknown_role_is_400(client, settings):
    assert set(client.get("/readyz?role=worker").json()["checks"]) == {"database", "broker", "worker"}
    assert set(client.get("/readyz?role=beat").json()["checks"]) == {"database", "broker", "tick"}
    settings.PROBE_CHECKS = ["database", "broker", "tick", "worker"]
    assert set(client.get("/readyz?role=all").json()["checks"]) == set(settings.PROBE_CHECKS)
    assert client.get("/readyz?role=<script>").status_code == 400


def test_probes_still_answers_with_every_check_and_no_details_without_the_token(client, settings):
    settings.PROBE_CHECKS = ["database", "broker"]
    response = client.get("/probes")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert client.get("/probes", **BEARER).json()["checks"]["broker"]["detail"] == "redis answers"


def test_the_worker_ping_is_sent_once_per_period_not_per_call(client, monkeypatch, settings):
    settings.PROBE_WORKER_CACHE_SECONDS = 60
    pings = []
    real_ping = probes.check_worker

    def counted_ping() -> probes.Check:
        pings.append(1)
        return real_ping()

    monkeypatch.setattr(probes, "check_worker", counted_ping)
    answers = [client.get("/readyz?role=worker").status_code for _ in range(3)]
    assert len(pings) == 1, "one broadcast for three probes"
    assert len(set(answers)) == 1
