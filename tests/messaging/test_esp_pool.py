"""messaging.esp.send_messages through anymail's real Postmark backend and a local Postmark stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.core.mail import EmailMessage
from django.db import connection

from bench.postmark_server import PostmarkServer
from messaging.esp import SendOutcome, retry_after_seconds, send_messages, send_stream


@pytest.fixture
def postmark(settings) -> Iterator[PostmarkServer]:
    with PostmarkServer(latency=0.2) as server:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": server.url}
        settings.ESP_POSTMARK_BATCH_SIZE = 0  # the pool of single sends; test_esp_postmark_batch has the batch calls
        yield server


def mail(to: str) -> EmailMessage:
    return EmailMessage(subject="Your digest", body="Three new items", from_email="bank@example.com", to=[to])


def test_sixteen_messages_with_eight_lanes_overlap_at_the_esp(postmark: PostmarkServer) -> None:
    outcomes = send_messages([mail(f"person{i}@example.com") for i in range(16)], concurrency=8)

    assert [o.status for o in outcomes] == ["sent"] * 16
    assert postmark.stats.calls == 16
    assert postmark.stats.max_in_flight > 1
    # one requests Session per lane: at most eight connections for sixteen calls
    assert postmark.stats.connections <= 8


def test_one_lane_sends_one_after_the_other_over_one_connection(postmark: PostmarkServer) -> None:
    postmark.latency = 0.01
    outcomes = send_messages([mail(f"person{i}@example.com") for i in range(5)], concurrency=1)

    assert [o.status for o in outcomes] == ["sent"] * 5
    assert postmark.stats.max_in_flight == 1
    assert postmark.stats.connections == 1


def test_outcomes_keep_the_order_of_the_messages_and_carry_postmarks_message_ids(postmark: PostmarkServer) -> None:
    postmark.latency = 0.0
    messages = [mail(f"person{i}@example.com") for i in range(10)]
    outcomes = send_messages(messages, concurrency=4)

    ids_by_recipient = {m.anymail_status.recipients[m.to[0]].message_id: m.to[0] for m in messages}  # type: ignore[attr-defined]
    assert [ids_by_recipient[o.esp_message_id] for o in outcomes] == [m.to[0] for m in messages]
    assert len({o.esp_message_id for o in outcomes}) == 10


def test_an_inactive_recipient_fails_alone(postmark: PostmarkServer) -> None:
    postmark.latency = 0.0
    addresses = ["a@example.com", "b+inactive@example.com", "c@example.com"]
    outcomes = send_messages([mail(a) for a in addresses], concurrency=3)

    assert [o.status for o in outcomes] == ["sent", "failed", "sent"]
    assert outcomes[1].error.startswith("recipient refused")
    assert outcomes[1].esp_message_id == ""


def test_a_422_that_is_not_about_the_recipient_fails_with_its_status(postmark: PostmarkServer) -> None:
    postmark.latency = 0.0
    postmark.answer_for(
        "b@example.com", 422, {"ErrorCode": 300, "Message": "Invalid 'From' address: 'bank@example.com'."}
    )
    outcomes = send_messages([mail("a@example.com"), mail("b@example.com")], concurrency=2)

    assert outcomes[0].status == "sent"
    assert outcomes[1] == SendOutcome("failed", error=outcomes[1].error)
    assert outcomes[1].error.startswith("422: ")


def test_a_429_with_retry_after_is_transient_and_says_how_long_to_wait(postmark: PostmarkServer) -> None:
    postmark.latency = 0.0
    outcomes = send_messages([mail("a+ratelimited@example.com")], concurrency=1)

    assert outcomes == [SendOutcome("transient", error=outcomes[0].error, retry_after=30.0)]
    assert outcomes[0].error.startswith("429: ")


def test_a_429_stops_the_chunk_and_what_was_not_handed_over_waits_as_long(postmark: PostmarkServer) -> None:
    postmark.latency = 0.0
    addresses = ["a@example.com", "b+ratelimited@example.com", "c@example.com", "d@example.com"]
    outcomes = send_messages([mail(a) for a in addresses], concurrency=1)

    assert [o.status for o in outcomes] == ["sent", "transient", "transient", "transient"]
    assert [o.retry_after for o in outcomes[1:]] == [30.0, 30.0, 30.0]
    assert postmark.stats.calls == 2


def test_a_500_is_transient_for_that_message_only(postmark: PostmarkServer) -> None:
    postmark.latency = 0.0
    outcomes = send_messages([mail("a@example.com"), mail("b+unavailable@example.com")], concurrency=2)

    assert [o.status for o in outcomes] == ["sent", "transient"]
    assert outcomes[1].error.startswith("500: ")
    assert outcomes[1].retry_after is None


def test_an_esp_that_does_not_answer_is_transient_for_every_message(settings) -> None:
    server = PostmarkServer().start()
    url = server.url
    server.stop()  # nothing listens there any more
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": url}

    outcomes = send_messages([mail(f"person{i}@example.com") for i in range(6)], concurrency=2)

    assert {o.status for o in outcomes} == {"transient"}
    assert all(o.error for o in outcomes)


@pytest.mark.django_db
def test_lanes_refuse_database_queries(settings, postmark: PostmarkServer) -> None:
    """A pre_send receiver that queries would hold a database connection per lane thread."""
    from anymail.signals import pre_send

    def query(sender: object, message: object, esp_name: str, **kwargs: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    postmark.latency = 0.0
    pre_send.connect(query)
    try:
        outcomes = send_messages([mail("a@example.com"), mail("b@example.com")], concurrency=2)
    finally:
        pre_send.disconnect(query)

    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "no database queries" in outcomes[0].error


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("Thu, 03 Dec 2026 10:01:00 GMT", 60.0),
        ("Thu, 03 Dec 2026 09:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == seconds


def test_a_stream_hands_over_no_more_than_one_unrecorded_message_per_lane(postmark: PostmarkServer) -> None:
    postmark.latency = 0.02
    stream = send_stream([mail(f"person{i}@example.com") for i in range(40)], concurrency=4)
    first = next(stream)
    time.sleep(0.3)  # the caller is still recording `first`: the lanes wait for it
    assert 1 <= len(first) <= 4
    assert postmark.stats.calls <= 4

    later = [pair for done in stream for pair in done]
    indexes = sorted(index for index, _ in [*first, *later])
    assert indexes == list(range(40))
    assert {outcome.status for _, outcome in [*first, *later]} == {"sent"}
    assert postmark.stats.calls == 40
    assert postmark.stats.connections <= 4  # each lane keeps its connection across the waits


def test_a_stream_the_caller_abandons_stops_its_lanes(postmark: PostmarkServer) -> None:
    postmark.latency = 0.02
    stream = send_stream([mail(f"person{i}@example.com") for i in range(40)], concurrency=4)
    next(stream)
    stream.close()  # the caller failed to record: nothing more goes out

    time.sleep(0.1)
    assert postmark.stats.calls <= 4
