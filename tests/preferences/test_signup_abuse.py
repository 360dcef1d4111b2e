"""The public signup door: one client IP for throttle and ledger, a generous per-IP limit, a
honeypot, capped topic lists."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Delivery
from preferences.models import ConsentEvent, Contact

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscribe/"


def signup(client, email: str, **extra):
    payload = {"email": email, "locale": "en", "topics": ["saving"], "frequency": "monthly"}
    return client.post(URL, payload, content_type="application/json", **extra)


def test_a_spoofed_x_forwarded_for_does_not_bypass_the_per_ip_throttle(client, topics, settings):
    settings.SIGNUP_THROTTLE_PER_IP = "5/hour"
    answers = [
        signup(
            client, f"p{n}@example.com", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}"
        ).status_code
        for n in range(6)
    ]
    assert answers == [202] * 5 + [429]


def test_the_ledger_records_remote_addr_not_the_clients_claim(client, topics):
    signup(client, "p@example.com", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert ConsentEvent.objects.get().ip_address == "203.0.113.7"


def test_behind_a_configured_proxy_throttle_and_ledger_use_the_address_the_proxy_saw(client, topics, settings):
    settings.NUM_PROXIES = 1
    settings.SIGNUP_THROTTLE_PER_IP = "2/hour"
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    first = signup(client, "a@example.com", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.9", **proxy)
    second = signup(client, "b@example.com", HTTP_X_FORWARDED_FOR="2.2.2.2, 198.51.100.9", **proxy)
    third = signup(client, "c@example.com", HTTP_X_FORWARDED_FOR="3.3.3.3, 198.51.100.9", **proxy)
    other = signup(client, "d@example.com", HTTP_X_FORWARDED_FOR="198.51.100.10", **proxy)

    assert [first.status_code, second.status_code, third.status_code, other.status_code] == [202, 202, 429, 202]
    assert ConsentEvent.objects.get(contact__email="a@example.com").ip_address == "198.51.100.9"


def test_people_behind_one_shared_ip_are_not_locked_out_by_each_others_signups(client, topics):
    answers = {signup(client, f"colleague{n}@example.com", REMOTE_ADDR="192.0.2.1").status_code for n in range(50)}
    assert answers == {202}


def test_a_bot_that_fills_the_honeypot_gets_the_same_answer_and_nothing_is_stored(client, topics):
    form = {"email": "human@example.com", "topics": ["saving"], "frequency": "monthly", "locale": "en", "consent": "on"}
    human = client.post("/subscribe/", form)
    stored = (Contact.objects.count(), ConsentEvent.objects.count(), Delivery.objects.count())

    bot = client.post("/subscribe/", {**form, "email": "bot@example.com", "website": "http://spam.example"})

    assert bot.status_code == human.status_code == 200
    assert bot.content == human.content
    assert stored == (1, 1, 1)
    assert (Contact.objects.count(), ConsentEvent.objects.count(), Delivery.objects.count()) == stored


def test_the_honeypot_is_hidden_from_people_and_screen_readers(client, topics):
    page = client.get("/subscribe/").content.decode()
    assert '<div class="hp" aria-hidden="true">' in page and 'name="website"' in page and 'tabindex="-1"' in page


def test_ten_thousand_topic_slugs_get_400_in_a_bounded_number_of_queries(client, topics):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            URL,
            {"email": "many@example.com", "topics": ["saving", "mortgage", "pension"] * 3334},
            content_type="application/json",
        )
    assert response.status_code == 400
    assert "topics" in response.json()
    assert len(queries) <= 5
    assert not Contact.objects.exists()


def test_a_long_list_within_the_cap_is_resolved_in_one_query(client, topics):
    slugs = ["saving", "mortgage", "pension"] * 10 + [f"unknown-{n}" for n in range(10)]
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, {"email": "x@example.com", "topics": slugs}, content_type="application/json")
    assert response.status_code == 400
    assert "unknown-0" in str(response.json()["topics"])
    assert sum('"preferences_topic"' in q["sql"] for q in queries.captured_queries) == 1


def test_repeated_known_slugs_subscribe_to_each_topic_once(client, topics):
    response = client.post(
        URL, {"email": "x@example.com", "topics": ["saving", "saving", "pension"]}, content_type="application/json"
    )
    assert response.status_code == 202
    assert sorted(Contact.objects.get().topics.values_list("slug", flat=True)) == ["pension", "saving"]


def test_the_signup_form_refuses_more_topics_than_the_cap(client, topics, settings):
    settings.MAX_TOPICS_PER_REQUEST = 2
    form = {"email": "f@example.com", "frequency": "monthly", "locale": "en", "consent": "on"}
    response = client.post("/subscribe/", {**form, "topics": ["saving", "mortgage", "pension"]})
    assert response.status_code == 400
    assert not Contact.objects.exists()
