"""The WSGI application gunicorn serves: webhook posts take the lean door (config/intake_wsgi.py)."""

from __future__ import annotations

import base64
import io
import json
import sys
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection

from config.intake_wsgi import intake_first
from messaging.intake import event_posts_process
from messaging.models import Delivery, EventPost
from preferences.models import Contact
from tests.factories import ContactFactory
from tests.messaging.esp_payloads import WEBHOOK_SECRET, postmark
from tests.messaging.test_intake import sent

AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.WEBHOOK_ESPS = []
    settings.ALLOWED_HOSTS = ["testserver"]


@pytest.fixture
def application():
    """The application, without closing the test's connection at each request (as Django's test client)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield intake_first(WSGIHandler())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def served():
    """The application as gunicorn serves it, persistent connections handled at each request."""
    return intake_first(WSGIHandler())


def call(
    app: Any, path: str, *, method: str = "POST", body: bytes = b"", auth: str = AUTH
) -> tuple[int, dict[str, str]]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": auth,
        "HTTP_ACCEPT_LANGUAGE": "nl",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    result = app(environ, start_response)
    b"".join(result)
    result.close()  # type: ignore[attr-defined]
    return answer["status"], answer["headers"]


def needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


def bounce_body(delivery: Delivery) -> bytes:
    return postmark("hard_bounce", delivery)["data"].encode()


@pytest.mark.django_db
def test_a_webhook_post_is_stored_without_the_sites_middleware(application):
    delivery = sent()
    status, headers = call(application, "/anymail/postmark/tracking/", body=bounce_body(delivery))
    assert status == 200
    assert bytes(EventPost.objects.get().body) == bounce_body(delivery)
    # LocaleMiddleware answers every page of the site in the visitor's language; a webhook post has none.
    assert "Content-Language" not in headers
    assert "Set-Cookie" not in headers


@pytest.mark.django_db
def test_the_lean_door_keeps_the_doors_checks(application, settings):
    delivery = sent()
    assert call(application, "/anymail/postmark/tracking/", body=bounce_body(delivery), auth="Basic eDp5")[0] == 400
    assert call(application, "/anymail/mailgun/tracking/", body=bounce_body(delivery))[0] == 404
    assert call(application, "/anymail/postmark/tracking/", body=b"[" * 5000 + b"]" * 5000)[0] == 400
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    assert call(application, "/anymail/postmark/tracking/", body=bounce_body(delivery))[0] == 413
    assert not EventPost.objects.exists()


@pytest.mark.django_db
def test_the_rest_of_the_site_keeps_its_middleware(application):
    status, headers = call(application, "/healthz", method="GET")
    assert status == 200
    assert headers.get("Content-Language") == "nl"
    assert "Content-Security-Policy" in headers


@pytest.mark.postgres  # persistent connections (CONN_MAX_AGE) are PostgreSQL's only
@pytest.mark.django_db(transaction=True)
def test_a_post_asks_the_database_nothing_but_its_insert(served, monkeypatch, settings):
    """Django's per-request health check (SELECT 1) is a round trip as long as the INSERT itself."""
    needs_postgres()
    settings.EVENT_INTAKE_TRIGGER_SECONDS = 3600
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()  # a connection of its own, with no errors left by an earlier test
    delivery = sent()
    call(served, "/anymail/postmark/tracking/", body=bounce_body(delivery))  # the connection is open
    checks = []
    is_usable = connection.is_usable

    def counted() -> bool:
        checks.append(1)
        return is_usable()

    monkeypatch.setattr(connection, "is_usable", counted)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    call(served, "/anymail/postmark/tracking/", body=bounce_body(delivery))
    assert checks == []
    assert EventPost.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_post_on_a_dead_connection_is_stored_on_a_new_one(served, settings):
    """The database restarted (or a proxy dropped the connection) between two posts: the post is still taken."""
    needs_postgres()
    settings.EVENT_INTAKE_TRIGGER_SECONDS = 3600
    delivery = sent(contact=ContactFactory.create())
    assert call(served, "/anymail/postmark/tracking/", body=bounce_body(delivery))[0] == 200
    backend = connection.connection.info.backend_pid
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    assert call(served, "/anymail/postmark/tracking/", body=bounce_body(delivery))[0] == 200
    assert EventPost.objects.count() == 2
    event_posts_process(max_seconds=10)
    assert Contact.objects.get(pk=delivery.contact_id).suppressed_at is not None
    assert json.loads(bytes(EventPost.objects.first().body))["RecordType"] == "Bounce"
