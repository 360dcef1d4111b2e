"""messaging.esp.send_messages through Postmark's /email/batch, built by anymail's Postmark payload code."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest
from anymail.message import AnymailMessage
from django.core.mail import EmailMessage
from django.db import connection

from bench.postmark_server import Answer, PostmarkServer
from messaging.esp import PostmarkBatchApi, SendOutcome, send_messages, send_stream
from messaging.esp import postmark as postmark_batch


@pytest.fixture
def postmark(settings) -> Iterator[PostmarkServer]:
    with PostmarkServer() as server:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": server.url}
        settings.ESP_POSTMARK_BATCH_SIZE = 500
        yield server


def personal(i: int, to: str | None = None) -> AnymailMessage:
    message = AnymailMessage(
        subject=f"Your digest {i}",
        body=f"Text for person {i}",
        from_email="bank@example.com",
        to=[to or f"person{i}@example.com"],
        headers={"List-Unsubscribe": f"<https://example.com/u/{i}>"},
        metadata={"delivery": str(i)},
        tags=["digest"],
        track_clicks=False,
        track_opens=True,
    )
    message.attach_alternative(f"<p>HTML for person {i}</p>", "text/html")
    return message


def test_a_thousand_messages_go_out_in_two_batch_calls(postmark: PostmarkServer) -> None:
    outcomes = send_messages([personal(i) for i in range(1000)], concurrency=8)

    assert [o.status for o in outcomes] == ["sent"] * 1000
    assert postmark.stats.by_path == {"/email/batch": 2}
    assert postmark.stats.messages == 1000
    assert len({o.esp_message_id for o in outcomes}) == 1000


def test_each_message_arrives_with_its_own_subject_body_headers_and_metadata(postmark: PostmarkServer) -> None:
    messages = [personal(i) for i in range(20)]
    messages[3].esp_extra = {"MessageStream": "broadcasts"}
    outcomes = send_messages(messages, concurrency=4)

    assert [o.status for o in outcomes] == ["sent"] * 20
    received = {m["To"]: m for m in postmark.received}
    for i in range(20):
        got = received[f"person{i}@example.com"]
        assert got["Subject"] == f"Your digest {i}"
        assert got["TextBody"] == f"Text for person {i}"
        assert got["HtmlBody"] == f"<p>HTML for person {i}</p>"
        assert got["Headers"] == [{"Name": "List-Unsubscribe", "Value": f"<https://example.com/u/{i}>"}]
        assert got["Metadata"] == {"delivery": str(i)}
        assert (got["Tag"], got["TrackLinks"], got["TrackOpens"]) == ("digest", "None", True)
    assert received["person3@example.com"]["MessageStream"] == "broadcasts"
    assert "MessageStream" not in received["person4@example.com"]


def test_outcomes_keep_the_order_of_the_messages_with_postmarks_message_ids(postmark: PostmarkServer) -> None:
    messages = [personal(i) for i in range(30)]
    outcomes = send_messages(messages, concurrency=3)

    for message, outcome in zip(messages, outcomes, strict=True):
        assert message.anymail_status.recipients[message.to[0]].message_id == outcome.esp_message_id


def test_an_inactive_recipient_fails_alone_inside_a_batch(postmark: PostmarkServer) -> None:
    addresses = ["a@example.com", "b+inactive@example.com", "c+invalid@example.com", "d@example.com"]
    outcomes = send_messages([personal(i, to) for i, to in enumerate(addresses)])

    assert [o.status for o in outcomes] == ["sent", "failed", "failed", "sent"]
    assert outcomes[1].error.startswith("recipient refused: 406")
    assert outcomes[2].error.startswith("recipient refused: 300")
    assert outcomes[1].esp_message_id == outcomes[2].esp_message_id == ""
    assert postmark.stats.calls == 1


def test_an_error_about_the_message_fails_it_alone_with_postmarks_code(
    postmark: PostmarkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = postmark._message_result

    def refuse_the_sender_of_b(message: dict[str, Any]) -> dict[str, Any]:
        if message["To"] == "b@example.com":
            return {"ErrorCode": 300, "Message": "Invalid 'From' address: 'bank@example.com'."}
        return answer(message)

    monkeypatch.setattr(postmark, "_message_result", refuse_the_sender_of_b)
    outcomes = send_messages([personal(0, "a@example.com"), personal(1, "b@example.com")])

    assert outcomes[0].status == "sent"
    assert outcomes[1] == SendOutcome("failed", error="Postmark error 300: Invalid 'From' address: 'bank@example.com'.")


def test_a_429_makes_every_message_of_the_call_transient_with_retry_after(postmark: PostmarkServer) -> None:
    addresses = ["a@example.com", "b+ratelimited@example.com", "c@example.com"]
    outcomes = send_messages([personal(i, to) for i, to in enumerate(addresses)])

    assert {o.status for o in outcomes} == {"transient"}
    assert [o.retry_after for o in outcomes] == [30.0, 30.0, 30.0]
    assert all(o.error.startswith("429: ") for o in outcomes)


def test_a_429_stops_the_other_batch_calls_of_the_chunk(settings, postmark: PostmarkServer) -> None:
    settings.ESP_POSTMARK_BATCH_SIZE = 2
    addresses = ["a+ratelimited@example.com", "b@example.com", "c@example.com", "d@example.com"]
    outcomes = send_messages([personal(i, to) for i, to in enumerate(addresses)], concurrency=1)

    assert {o.status for o in outcomes} == {"transient"}
    assert {o.retry_after for o in outcomes} == {30.0}
    assert postmark.stats.calls == 1


def test_a_500_makes_the_calls_messages_transient_and_a_422_fails_them(postmark: PostmarkServer) -> None:
    outcomes = send_messages([personal(0), personal(1, "b+unavailable@example.com")])
    assert [o.status for o in outcomes] == ["transient", "transient"]
    assert outcomes[0].error.startswith("500: ")

    postmark.answer_for("x@example.com", 422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
    outcomes = send_messages([personal(0), personal(1, "x@example.com")])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].error.startswith("422: ")


def test_a_server_without_email_batch_gets_every_message_once(settings, caplog: pytest.LogCaptureFixture) -> None:
    class NoBatchServer(PostmarkServer):
        batch_tries = 0

        def answer(self, path: str, payload: Any) -> Answer:
            if path == "/email/batch":
                self.batch_tries += 1
                return Answer(405, {"ErrorCode": 405, "Message": "Method not allowed."})
            return super().answer(path, payload)

    from messaging.esp import postmark as esp

    original = esp.MESSAGE_BATCH_APIS
    esp.MESSAGE_BATCH_APIS = (PostmarkBatchApi(),)
    try:
        with NoBatchServer() as server:
            settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
            settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": server.url}
            settings.ESP_POSTMARK_BATCH_SIZE = 5
            with caplog.at_level("WARNING", logger="messaging.esp"):
                outcomes = send_messages([personal(i) for i in range(12)], concurrency=3)
                later = send_messages([personal(i) for i in range(100, 104)], concurrency=2)
    finally:
        esp.MESSAGE_BATCH_APIS = original

    assert [o.status for o in outcomes + later] == ["sent"] * 16
    assert sorted(m["To"] for m in server.received) == sorted(
        [f"person{i}@example.com" for i in [*range(12), *range(100, 104)]]
    )
    assert server.stats.by_path == {"/email": 16}
    assert 1 <= server.batch_tries <= 3  # at most one try per lane, then never again
    warnings = [r for r in caplog.records if "no batch endpoint" in r.getMessage()]
    assert len(warnings) == 1


def test_batching_off_sends_one_message_per_call(settings, postmark: PostmarkServer) -> None:
    settings.ESP_POSTMARK_BATCH_SIZE = 0
    outcomes = send_messages([personal(i) for i in range(4)], concurrency=2)

    assert [o.status for o in outcomes] == ["sent"] * 4
    assert postmark.stats.by_path == {"/email": 4}


def test_a_message_for_a_stored_template_goes_alone(postmark: PostmarkServer) -> None:
    templated = AnymailMessage(from_email="bank@example.com", to=["t@example.com"], template_id="welcome")
    outcomes = send_messages([personal(0), templated, personal(1)])

    assert [o.status for o in outcomes][::2] == ["sent", "sent"]
    assert postmark.stats.by_path.get("/email/batch") == 1
    assert postmark.stats.messages == 2  # the stand-in has no template endpoint: 404, failed, never batched
    assert outcomes[1].status == "failed"


@pytest.mark.django_db
def test_batch_lanes_refuse_database_queries(settings, postmark: PostmarkServer) -> None:
    from anymail.signals import pre_send

    def query(sender: object, message: object, esp_name: str, **kwargs: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    settings.ESP_POSTMARK_BATCH_SIZE = 1
    pre_send.connect(query)
    try:
        outcomes = send_messages([personal(0), personal(1)], concurrency=2)
    finally:
        pre_send.disconnect(query)

    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "no database queries" in outcomes[0].error
    assert postmark.stats.calls == 0


def plain(to: str) -> EmailMessage:
    return EmailMessage(subject="Hello", body="Plain", from_email="bank@example.com", to=[to])


def test_plain_django_messages_batch_too(postmark: PostmarkServer) -> None:
    outcomes = send_messages([plain(f"p{i}@example.com") for i in range(5)])

    assert [o.status for o in outcomes] == ["sent"] * 5
    assert postmark.stats.by_path == {"/email/batch": 1}


def test_a_stream_of_batch_calls_hands_over_no_more_than_one_unrecorded_call_per_lane(
    settings, postmark: PostmarkServer
) -> None:
    settings.ESP_POSTMARK_BATCH_SIZE = 5
    postmark.latency = 0.02
    stream = send_stream([personal(i) for i in range(60)], concurrency=3)
    first = next(stream)
    time.sleep(0.3)  # the caller is still recording `first`: the lanes wait for it
    assert 1 <= len(first) <= 15
    assert postmark.stats.calls <= 3  # one call in flight per lane, then nothing new
    assert postmark.stats.messages <= 15

    later = [pair for done in stream for pair in done]
    assert sorted(index for index, _ in [*first, *later]) == list(range(60))
    assert {outcome.status for _, outcome in [*first, *later]} == {"sent"}
    assert postmark.stats.by_path == {"/email/batch": 12}


def test_no_lane_leaves_its_connection_behind_once_the_chunk_is_sent(postmark: PostmarkServer) -> None:
    # Messages of one shape are built from a prototype per lane's connection; the prototype refers to its
    # connection, so keeping it past the lane kept every connection (and its last call's body) alive: a
    # worker on Postmark grew by a few megabytes per batch.
    messages = [personal(i) for i in range(300)]
    for message in messages:
        message.batch_shape = ("nurture", True)  # as the pipe marks them
    for _ in range(3):
        outcomes = send_messages(messages, concurrency=3)
        assert {o.status for o in outcomes} == {"sent"}
    gc.collect()

    assert postmark.stats.messages == 900
    assert len(postmark_batch._prototypes) == 0
