"""messaging.esp.send_messages through Django's SMTP backend and a local aiosmtpd relay; EMAIL_URL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.core.mail import EmailMessage

from bench.smtp_sink import SmtpSink
from messaging.esp import send_messages


@pytest.fixture
def relay(settings) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = sink.host
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
        yield sink


def mail(to: str) -> EmailMessage:
    return EmailMessage(subject="Your digest", body="Three new items", from_email="bank@example.com", to=[to])


def test_a_chunk_goes_over_one_smtp_connection_per_lane(relay: SmtpSink) -> None:
    outcomes = send_messages([mail(f"person{i}@example.com") for i in range(30)], concurrency=3)

    assert [o.status for o in outcomes] == ["sent"] * 30
    assert relay.stats.mail_from == 30
    assert relay.stats.messages == 30
    assert 1 <= relay.stats.connections <= 3


def test_one_lane_sends_a_whole_chunk_over_a_single_connection(relay: SmtpSink) -> None:
    outcomes = send_messages([mail(f"person{i}@example.com") for i in range(12)], concurrency=1)

    assert [o.status for o in outcomes] == ["sent"] * 12
    assert relay.stats.connections == 1
    assert relay.stats.mail_from == 12


def test_lanes_overlap_at_the_relay(relay: SmtpSink) -> None:
    relay.latency = 0.05
    send_messages([mail(f"person{i}@example.com") for i in range(8)], concurrency=4)

    assert relay.stats.max_in_flight > 1


def test_an_smtp_relay_gets_smtp_send_concurrency_connections_not_the_esps(relay: SmtpSink, settings) -> None:
    settings.ESP_SEND_CONCURRENCY = 2
    settings.SMTP_SEND_CONCURRENCY = 5
    relay.latency = 0.03
    send_messages([mail(f"person{i}@example.com") for i in range(20)])

    assert relay.stats.connections == 5
    assert relay.stats.max_in_flight == 5


def test_each_message_gets_its_own_message_id_as_its_esp_message_id(relay: SmtpSink) -> None:
    messages = [mail(f"person{i}@example.com") for i in range(4)]
    outcomes = send_messages(messages, concurrency=2)

    assert [o.esp_message_id for o in outcomes] == [m.extra_headers["Message-ID"] for m in messages]
    assert len({o.esp_message_id for o in outcomes}) == 4
    assert all(o.esp_message_id.startswith("<") for o in outcomes)


def test_a_451_for_one_recipient_is_transient_for_that_one_only(relay: SmtpSink) -> None:
    addresses = ["a@example.com", "b+deferred@example.com", "c@example.com"]
    outcomes = send_messages([mail(a) for a in addresses], concurrency=1)

    assert [o.status for o in outcomes] == ["sent", "transient", "sent"]
    assert outcomes[1].error.startswith("recipient deferred: 451")
    assert relay.stats.recipients == ["a@example.com", "c@example.com"]
    assert relay.stats.connections == 1  # the connection outlives the refusal


def test_a_550_for_one_recipient_fails_that_one_alone(relay: SmtpSink) -> None:
    addresses = ["a@example.com", "b+rejected@example.com", "c@example.com"]
    outcomes = send_messages([mail(a) for a in addresses], concurrency=2)

    assert [o.status for o in outcomes] == ["sent", "failed", "sent"]
    assert outcomes[1].error.startswith("recipient refused: 550")


def test_a_relay_that_closes_the_connection_is_transient_and_the_lane_reconnects(relay: SmtpSink) -> None:
    addresses = ["a@example.com", "b+closing@example.com", "c@example.com", "d@example.com"]
    outcomes = send_messages([mail(a) for a in addresses], concurrency=1)

    assert [o.status for o in outcomes] == ["sent", "transient", "sent", "sent"]
    assert outcomes[1].error.startswith("recipient deferred: 421")
    assert relay.stats.connections == 2


def test_a_relay_that_is_down_makes_every_message_transient_after_a_few_attempts(settings) -> None:
    sink = SmtpSink()  # never started: nothing listens on its port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = sink.host
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_TIMEOUT = 5

    outcomes = send_messages([mail(f"person{i}@example.com") for i in range(20)], concurrency=4)

    assert [o.status for o in outcomes] == ["transient"] * 20
    assert all("ConnectionRefusedError" in o.error for o in outcomes)


def settings_in_a_fresh_process(**environment: str) -> dict[str, object]:
    """Return the EMAIL settings that config.settings makes of these environment variables."""
    names = [
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_USE_TLS",
        "EMAIL_USE_SSL",
        "EMAIL_TIMEOUT",
    ]
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}} | {{'REQUESTS_TIMEOUT': s.ANYMAIL['REQUESTS_TIMEOUT']}}))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "REDIS_URL": django_settings.REDIS_URL,
        **environment,
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout)


def test_email_url_configures_the_banks_smtp_relay_with_starttls_and_credentials() -> None:
    email = settings_in_a_fresh_process(
        EMAIL_URL="smtp+tls://mailer%40bank.nl:p%40ss%3Aword@relay.bank.nl", EMAIL_TIMEOUT="7"
    )

    assert email == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "relay.bank.nl",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer@bank.nl",
        "EMAIL_HOST_PASSWORD": "p@ss:word",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 7.0,
        "REQUESTS_TIMEOUT": 7.0,
    }


@pytest.mark.parametrize(
    ("url", "port", "tls", "ssl"),
    [
        ("smtp://relay.bank.nl", 25, False, False),
        ("smtp://relay.bank.nl:2525", 2525, False, False),
        ("smtp+ssl://relay.bank.nl", 465, False, True),
        ("smtp+tls://relay.bank.nl:25", 25, True, False),
    ],
)
def test_email_url_picks_the_port_and_tls_mode_from_the_scheme(url: str, port: int, tls: bool, ssl: bool) -> None:
    email = settings_in_a_fresh_process(EMAIL_URL=url)

    assert (email["EMAIL_PORT"], email["EMAIL_USE_TLS"], email["EMAIL_USE_SSL"]) == (port, tls, ssl)
    assert email["EMAIL_HOST_USER"] == ""


def test_email_backend_still_chooses_an_anymail_esp() -> None:
    email = settings_in_a_fresh_process(EMAIL_BACKEND="anymail.backends.postmark.EmailBackend")

    assert email["EMAIL_BACKEND"] == "anymail.backends.postmark.EmailBackend"


def test_email_url_and_email_backend_together_refuse_to_start() -> None:
    with pytest.raises(AssertionError, match="not both"):
        settings_in_a_fresh_process(
            EMAIL_URL="smtp://relay.bank.nl", EMAIL_BACKEND="anymail.backends.postmark.EmailBackend"
        )
