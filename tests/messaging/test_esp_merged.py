"""messaging.esp.send_merged: one ESP call for many personalised messages, each recipient's outcome."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from anymail.message import AnymailMessage, AnymailRecipientStatus

from bench.postmark_server import PostmarkServer
from messaging.esp import SendOutcome, send_merged, send_merged_stream


class SendGridStandIn(ThreadingHTTPServer):
    """SendGrid's v3 /mail/send: 202 with an empty body, or a scripted error with SendGrid's error body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SendGridHandler)
        self.calls: list[dict[str, Any]] = []
        self.status = 202
        self.headers: dict[str, str] = {}
        self.delay = 0.0  # seconds before each answer
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v3/"


class _SendGridHandler(BaseHTTPRequestHandler):
    server: SendGridStandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.path == "/v3/mail/send"
        assert self.headers["Authorization"] == "Bearer sendgrid-key"
        server = self.server
        with server.lock:
            server.calls.append(json.loads(body))
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        time.sleep(server.delay)
        with server.lock:
            server.in_flight -= 1
        status = self.server.status
        data = b"" if status == 202 else json.dumps({"errors": [{"message": "try later", "field": None}]}).encode()
        self.send_response(status)
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sendgrid(settings) -> Iterator[SendGridStandIn]:
    server = SendGridStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "sendgrid-key", "SENDGRID_API_URL": server.url}
    yield server
    server.shutdown()
    server.server_close()


def batch(addresses: list[str]) -> AnymailMessage:
    message = AnymailMessage(
        subject="Hello -name-", body="Dear -name-, your link: -link-", from_email="bank@example.com", to=addresses
    )
    message.merge_data = {a: {"-name-": f"Name {i}", "-link-": f"https://x/{i}"} for i, a in enumerate(addresses)}
    message.merge_metadata = {a: {"delivery_id": f"d{i}"} for i, a in enumerate(addresses)}
    message.merge_headers = {a: {"List-Unsubscribe": f"<https://x/u/{i}>"} for i, a in enumerate(addresses)}
    return message


def test_a_sendgrid_batch_is_one_call_and_records_each_recipients_own_message_id(sendgrid: SendGridStandIn) -> None:
    addresses = [f"person{i}@example.com" for i in range(5)]
    outcomes = send_merged(batch(addresses))

    assert len(sendgrid.calls) == 1
    personalizations = sendgrid.calls[0]["personalizations"]
    sent_ids = {p["to"][0]["email"]: p["custom_args"]["anymail_id"] for p in personalizations}
    assert list(outcomes) == addresses
    assert {a: o.status for a, o in outcomes.items()} == dict.fromkeys(addresses, "sent")
    assert {a: o.esp_message_id for a, o in outcomes.items()} == sent_ids
    assert len(set(sent_ids.values())) == 5
    assert personalizations[2]["substitutions"]["-name-"] == "Name 2"
    assert personalizations[2]["custom_args"]["delivery_id"] == "d2"


def test_a_503_for_the_batch_call_is_transient_for_every_recipient_with_retry_after(sendgrid: SendGridStandIn) -> None:
    sendgrid.status = 503
    sendgrid.headers = {"Retry-After": "12"}
    outcomes = send_merged(batch(["a@example.com", "b@example.com"]))

    assert set(outcomes) == {"a@example.com", "b@example.com"}
    assert {o.status for o in outcomes.values()} == {"transient"}
    assert {o.retry_after for o in outcomes.values()} == {12.0}


def test_a_400_for_the_batch_call_fails_every_recipient_with_the_status(sendgrid: SendGridStandIn) -> None:
    sendgrid.status = 400
    outcomes = send_merged(batch(["a@example.com", "b@example.com"]))

    assert {o.status for o in outcomes.values()} == {"failed"}
    assert all(o.error.startswith("400: ") for o in outcomes.values())


def test_an_esp_that_does_not_answer_makes_the_whole_batch_transient(settings) -> None:
    server = PostmarkServer().start()
    url = server.url
    server.stop()
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "sendgrid-key", "SENDGRID_API_URL": url}

    outcomes = send_merged(batch(["a@example.com", "b@example.com"]))

    assert {o.status for o in outcomes.values()} == {"transient"}
    assert all(o.error.startswith("connection") for o in outcomes.values())


def test_one_inactive_recipient_in_a_postmark_batch_fails_alone(settings) -> None:
    """Postmark's /email/batch answers per message; without merge_data it takes one body for all."""
    with PostmarkServer() as postmark:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": postmark.url}
        addresses = ["a@example.com", "B+Inactive@example.com", "c@example.com"]
        message = AnymailMessage(subject="Maintenance", body="Tonight", from_email="bank@example.com", to=addresses)
        message.merge_metadata = {a: {"delivery_id": f"d{i}"} for i, a in enumerate(addresses)}

        outcomes = send_merged(message)

        assert postmark.stats.by_path == {"/email/batch": 1}
        assert [postmark_message["Metadata"]["delivery_id"] for postmark_message in postmark.received] == [
            "d0",
            "d1",
            "d2",
        ]
    assert [outcomes[a].status for a in addresses] == ["sent", "failed", "sent"]
    assert outcomes["B+Inactive@example.com"] == SendOutcome("failed", error="recipient refused: rejected")
    assert outcomes["a@example.com"].esp_message_id != outcomes["c@example.com"].esp_message_id


def test_every_recipient_refused_is_recorded_per_recipient(settings) -> None:
    with PostmarkServer() as postmark:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": postmark.url}
        addresses = ["a+inactive@example.com", "b+inactive@example.com"]
        message = AnymailMessage(subject="Maintenance", body="Tonight", from_email="bank@example.com", to=addresses)
        message.merge_metadata = {a: {"delivery_id": a} for a in addresses}

        outcomes = send_merged(message)

    assert outcomes == dict.fromkeys(addresses, SendOutcome("failed", error="recipient refused: rejected"))


def test_recipients_the_esp_gave_no_status_for_count_as_sent_with_a_note_and_rejected_ones_fail(settings) -> None:
    """SparkPost answers a batch with some refusals as "unknown" for everyone; those are not sent again."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    message = batch(["a@example.com", "b@example.com", "c@example.com"])
    message.anymail_test_response = {  # type: ignore[attr-defined]
        "recipient_status": {
            "a@example.com": AnymailRecipientStatus(message_id="t1", status="unknown"),
            "b@example.com": AnymailRecipientStatus(message_id=None, status="rejected"),
            "c@example.com": AnymailRecipientStatus(message_id="t1", status="queued"),
        }
    }

    outcomes = send_merged(message)

    assert outcomes["a@example.com"].status == "sent"
    assert outcomes["a@example.com"].esp_message_id == "t1"
    assert "no status" in outcomes["a@example.com"].error
    assert outcomes["b@example.com"] == SendOutcome("failed", error="recipient refused: rejected")
    assert outcomes["c@example.com"] == SendOutcome("sent", esp_message_id="t1")


def test_merged_calls_go_several_at_once_and_no_lane_starts_one_before_the_caller_asks_for_more(
    sendgrid: SendGridStandIn,
) -> None:
    sendgrid.delay = 0.05
    messages = [batch([f"p{call}-{i}@example.com" for i in range(3)]) for call in range(7)]
    started: list[int] = []

    stream = send_merged_stream(messages, concurrency=3, before_call=lambda m: started.append(len(m.to)))
    first = next(stream)
    time.sleep(0.2)  # the caller records slowly: nothing more may start meanwhile
    assert len(sendgrid.calls) == 3 == len(started)
    outcomes = dict(first)
    for done in stream:
        outcomes.update(done)

    assert sorted(outcomes) == list(range(7))
    assert len(sendgrid.calls) == 7
    assert sendgrid.most_in_flight == 3  # three lanes, each with one call
    assert all(o.status == "sent" for result in outcomes.values() for o in result.values())
    assert set(outcomes[4]) == {f"p4-{i}@example.com" for i in range(3)}


def test_a_429_stops_the_merged_calls_not_yet_started_with_the_esps_retry_after(sendgrid: SendGridStandIn) -> None:
    sendgrid.status = 429
    sendgrid.headers = {"Retry-After": "30"}
    messages = [batch([f"p{call}@example.com"]) for call in range(5)]

    outcomes = {index: result for done in send_merged_stream(messages, concurrency=2) for index, result in done}

    assert len(sendgrid.calls) == 2  # the two lanes' first calls; nothing after the 429
    assert sorted(outcomes) == list(range(5))
    statuses = [o for result in outcomes.values() for o in result.values()]
    assert {o.status for o in statuses} == {"transient"}
    assert {o.retry_after for o in statuses} == {30.0}
    assert all("asked to wait" in outcomes[index][f"p{index}@example.com"].error for index in (2, 3, 4))


def test_one_lane_sends_the_merged_calls_one_after_the_other_in_the_calling_thread(sendgrid: SendGridStandIn) -> None:
    messages = [batch([f"p{call}@example.com"]) for call in range(3)]
    threads: list[str] = []
    stream = send_merged_stream(
        messages, concurrency=1, before_call=lambda m: threads.append(threading.current_thread().name)
    )

    assert next(stream)[0][0] == 0
    assert len(sendgrid.calls) == 1
    assert [index for done in stream for index, _ in done] == [1, 2]
    assert threads == [threading.current_thread().name] * 3
    assert sendgrid.most_in_flight == 1
