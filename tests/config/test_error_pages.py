"""Friendly, translated error pages styled like the public pages, a CSRF page a person can act on,
and a Content-Security-Policy on the public pages."""

from __future__ import annotations

import pytest
from django.test import Client

from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = "tests.config.urls_for_errors"
    settings.DEBUG = False


def page(path: str, language: str, method: str = "get", **kwargs) -> tuple[int, str]:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE=language)
    response = getattr(client, method)(path, **kwargs)
    return response.status_code, response.content.decode()


@pytest.mark.parametrize(
    ("path", "status", "english", "dutch"),
    [
        ("/no-such-page/", 404, "Page not found", "Pagina niet gevonden"),
        ("/test-forbidden/", 403, "You cannot open this page", "U kunt deze pagina niet openen"),
        ("/test-crash/", 500, "Something went wrong on our side", "Er ging bij ons iets mis"),
        ("/test-suspicious/", 400, "This request could not be handled", "Dit verzoek kon niet worden verwerkt"),
    ],
)
def test_error_pages_are_friendly_translated_and_styled_like_the_public_pages(
    failing_urls, path, status, english, dutch
):
    code, en = page(path, "en")
    assert code == status and english in en
    code, nl = page(path, "nl")
    assert code == status and dutch in nl and '<html lang="nl">' in nl
    assert "preferences/site.css" in en and 'name="viewport"' in en  # the public pages' style, on a phone too
    assert "Traceback" not in en and "Django" not in en


def test_a_form_posted_without_a_valid_csrf_cookie_gets_a_page_to_open_the_link_again(topics):
    contact = ContactFactory(locale="nl")
    url = f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/"
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="nl")

    response = client.post(url, {"action": "unsubscribe"})

    assert response.status_code == 403
    body = response.content.decode()
    assert "Open uw link opnieuw" in body and f'href="{url}"' in body
    assert "preferences/site.css" in body
    contact.refresh_from_db()
    assert contact.status == contact.Status.CONFIRMED


def test_the_csrf_page_in_english(topics):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/subscribe/", {"email": "x@example.com"})
    assert response.status_code == 403
    assert "Please open your link again" in response.content.decode()


def test_public_pages_carry_a_content_security_policy(client, topics):
    contact = ContactFactory()
    policy = client.get(f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/").headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy


def test_by_default_no_site_may_frame_the_signup_form(client, topics):
    response = client.get("/subscribe/")
    assert "form-action 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_the_sites_in_signup_frame_ancestors_may_frame_the_signup_form_and_no_other_page(client, topics, settings):
    settings.SIGNUP_FRAME_ANCESTORS = ["https://www.example-bank.nl", "https://example-bank.nl"]

    response = client.get("/subscribe/")
    assert "frame-ancestors https://www.example-bank.nl https://example-bank.nl" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response
    other = client.get(f"/preferences/{make_token(ContactFactory(), Purpose.PREFERENCES)}/")
    assert "frame-ancestors 'none'" in other["Content-Security-Policy"] and other["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("value", ["*", "example-bank.nl", "https://example-bank.nl/embed", "javascript:alert(1)"])
def test_a_frame_ancestor_that_is_not_an_origin_stops_the_start(value):
    import subprocess
    import sys

    from tests.test_startup_checks import BASE_DIR, clean_env

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env={**clean_env(SIGNUP_FRAME_ANCESTORS=value), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "SIGNUP_FRAME_ANCESTORS" in result.stderr


def test_the_admin_keeps_its_own_inline_scripts(client):
    assert "Content-Security-Policy" not in client.get("/admin/login/").headers


def test_testserver_is_not_an_allowed_host_by_default():
    from config import settings as project_settings

    assert "testserver" not in project_settings.ALLOWED_HOSTS


def test_a_brand_logo_on_the_banks_own_host_is_allowed_by_the_policy(client, topics, settings):
    settings.BRAND_LOGO_URL = "https://static.bank.example/logo.svg"
    policy = client.get("/subscribe/").headers["Content-Security-Policy"]
    img = next(part for part in policy.split("; ") if part.startswith("img-src"))
    assert img == "img-src 'self' data: https://static.bank.example"
    settings.BRAND_LOGO_URL = ""
    assert "static.bank.example" not in client.get("/subscribe/").headers["Content-Security-Policy"]
