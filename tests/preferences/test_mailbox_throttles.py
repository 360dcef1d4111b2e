"""Throttles count mailboxes, not spellings; with the broker down, signup and /link/ answer as usual and
known and unknown addresses look alike (issue 16, findings 5 and 8)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from cadence.guard import deliveries_recover_lost
from cadence.kinds import Kind
from messaging.models import Delivery
from preferences.mailbox import domain_key, mailbox_address, mailbox_key
from preferences.models import Contact
from tests.factories import ContactFactory, TopicFactory

pytestmark = pytest.mark.django_db

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize(
    ("spelling", "mailbox"),
    [
        ("A+x@Gmail.com", "a@gmail.com"),
        ("a.n.n+news@googlemail.com", "ann@gmail.com"),
        (" Ann@Example.COM. ", "ann@example.com"),
        ("ann+tag@example.com", "ann@example.com"),
        ("ü@Bücher.example", "ü@xn--bcher-kva.example"),
        ("ü@xn--bcher-kva.example", "ü@xn--bcher-kva.example"),
        ("a.nn@example.com", "a.nn@example.com"),  # dots matter outside Gmail
        ('"a+b"@example.com', '"a+b"@example.com'),
    ],
)
def test_a_mailbox_has_one_address_however_it_is_spelled(spelling, mailbox):
    assert mailbox_address(spelling) == mailbox


def test_throttle_keys_are_equal_for_spellings_of_one_mailbox():
    assert mailbox_key("A+x@Gmail.com") == mailbox_key("a@gmail.com") == mailbox_key("a.@googlemail.com")
    assert mailbox_key("a@gmail.com") != mailbox_key("b@gmail.com")
    assert domain_key("x@Bücher.example") == domain_key("y@xn--bcher-kva.example")
    assert "gmail" not in mailbox_key("a@gmail.com")  # no address in the cache


def signup(client, email: str):
    data = {"email": email, "topics": ["saving"], "frequency": "monthly", "locale": "en", "consent": "on"}
    return client.post("/subscribe/", data)


def test_the_signup_throttle_counts_the_mailbox_not_the_spelling(client, settings):
    settings.SIGNUP_THROTTLE_PER_ADDRESS = "2/hour"
    TopicFactory(slug="saving")
    assert signup(client, "a@gmail.com").status_code == 200
    assert signup(client, "A+1@Gmail.com").status_code == 200
    assert signup(client, "a.+2@googlemail.com").status_code == 429
    assert signup(client, "b@gmail.com").status_code == 200


def test_the_link_throttle_counts_the_mailbox_not_the_spelling(client, settings):
    settings.LINK_REQUEST_THROTTLE_PER_ADDRESS = "1/hour"
    assert client.post("/link/", {"email": "ann+1@example.com"}).status_code == 200
    assert client.post("/link/", {"email": "ANN+2@example.com"}).status_code == 429


def test_a_domain_has_a_ceiling(client, settings):
    settings.SIGNUP_THROTTLE_PER_DOMAIN = "2/hour"
    TopicFactory(slug="saving")
    assert signup(client, "one@target.example").status_code == 200
    assert signup(client, "two@Target.example").status_code == 200
    assert signup(client, "three@target.example").status_code == 429
    assert signup(client, "one@other.example").status_code == 200
    assert Contact.objects.filter(email__endswith="target.example").count() == 2


@pytest.fixture
def broker_down(monkeypatch) -> Iterator[None]:
    """The Celery broker at a closed port (Celery reads CELERY_BROKER_URL from the environment first)."""
    from config.celery import app

    def reset_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    original = app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", CLOSED_PORT_BROKER)
    app.conf.broker_url = CLOSED_PORT_BROKER
    reset_pools()
    yield
    monkeypatch.undo()
    app.conf.broker_url = original
    reset_pools()


def timed_post(client, url: str, data: dict) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    response = client.post(url, data)
    return response.status_code, response.content, time.perf_counter() - started


def test_with_the_broker_down_known_and_unknown_addresses_get_the_same_link_answer(client, broker_down):
    ContactFactory(email="known@example.com")
    client.post("/link/", {"email": "warm-up@example.com"})  # templates compiled, first connection refused
    known = timed_post(client, "/link/", {"email": "known@example.com"})
    unknown = timed_post(client, "/link/", {"email": "stranger@example.com"})

    assert known[0] == unknown[0] == 200
    assert known[1] == unknown[1]
    # One speed class: neither waits for broker retries nor looks the address up.
    assert known[2] < 0.5 and unknown[2] < 0.5, (known[2], unknown[2])
    assert not Delivery.objects.exists()  # nothing resolved in the request


def test_with_the_broker_down_a_signup_answers_as_usual_and_its_confirmation_waits_for_the_guard(
    client, broker_down, django_capture_on_commit_callbacks
):
    TopicFactory(slug="saving")
    with django_capture_on_commit_callbacks(execute=True):
        response = signup(client, "new@example.com")

    assert response.status_code == 200
    delivery = Delivery.objects.get(kind=Kind.CONFIRMATION)
    assert delivery.status == Delivery.Status.QUEUED  # kept, not lost
    # The guard's next run (the broker back) queues it again at once, not an hour later.
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        _lost, requeued = deliveries_recover_lost(now=timezone.now())
    finally:
        app.conf.task_always_eager = False
    assert requeued == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_the_link_page_queues_one_task_per_request_known_or_not_and_looks_nothing_up(client, settings):
    import redis

    from tests.workers import purge_queues

    ContactFactory(email="known@example.com")
    purge_queues("welcome", "bulk", "default")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.post("/link/", {"email": "known@example.com"})
        client.post("/link/", {"email": "stranger@example.com"})
        assert broker.llen("welcome") == 2 and broker.llen("default") == 0
        assert not Delivery.objects.exists()  # the worker resolves the address, not the page
    finally:
        purge_queues("welcome", "bulk", "default")
