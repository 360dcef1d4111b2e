"""A local stand-in for Postmark's email API, for tests and benchmarks.

It speaks enough of https://postmarkapp.com/developer/api/email-api for anymail's real Postmark
backend (`ANYMAIL = {"POSTMARK_SERVER_TOKEN": "...", "POSTMARK_API_URL": server.url}`):
`POST /email` and `POST /email/batch`, answered after a configurable latency, with Postmark's
success and error bodies. It counts calls, messages and the most requests in flight at once.

Recipients steer the answer, so a run needs no scripting (the tag before the @):
  `someone+inactive@…`    422, ErrorCode 406 (inactive recipient); in a batch, that message only
  `someone+invalid@…`     422, ErrorCode 300 (invalid 'To' address)
  `someone+ratelimited@…` 429 with `Retry-After: 30` (the whole call)
  `someone+unavailable@…` 500 (the whole call)
`answer_for(address, status, body, headers)` scripts any other answer in-process.

    python -m bench.postmark_server --port 8025 --latency-ms 60

serves until interrupted and prints its counts every few seconds; `GET /stats` returns them as JSON
and `POST /stats/reset` sets them to zero.

Like Postmark, it can report each accepted message back: with `webhook_url` (and
`webhook_auth=(user, password)`, Postmark's basic-auth webhook URL) it posts a Delivery webhook
(https://postmarkapp.com/developer/webhooks/delivery-webhook) with the message's MessageID, Tag and
Metadata a moment after accepting it, from a few threads, retrying a post that fails (Postmark
retries for hours) until `stop()`.
"""

from __future__ import annotations

import argparse
import base64
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

RETRY_AFTER_SECONDS = 30


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stats:
    calls: int = 0
    messages: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    connections: int = 0
    by_path: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "messages": self.messages,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "connections": self.connections,
            "by_path": dict(self.by_path),
        }


class PostmarkServer:
    """A threaded Postmark stand-in on 127.0.0.1; port 0 picks a free port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        webhook_url: str = "",
        webhook_auth: tuple[str, str] | None = None,
        webhook_threads: int = 4,
    ) -> None:
        self.latency = latency
        self.webhooks = Webhooks(webhook_url, webhook_auth, webhook_threads) if webhook_url else None
        self.stats = Stats()
        self.received: list[dict[str, Any]] = []  # every message posted, in order of arrival
        self.keep_messages = True
        self._scripted: dict[str, Answer] = {}
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.standin = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="postmark-standin", daemon=True)
        self._thread.start()
        if self.webhooks is not None:
            self.webhooks.start()
        return self

    def stop(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer_for(
        self, address: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """Answer every call that includes `address` with this status and body."""
        self._scripted[address.lower()] = Answer(status, body, headers or {})

    def reset(self) -> None:
        with self._lock:
            self.stats = Stats()
            self.received = []

    # Answers

    def answer(self, path: str, payload: Any) -> Answer:
        """Return the answer to one API call (after the latency, counted)."""
        messages = payload if path == "/email/batch" else [payload]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return Answer(400, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
        with self._lock:
            self.stats.calls += 1
            self.stats.messages += len(messages)
            self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            if self.keep_messages:
                self.received.extend(messages)
        try:
            if self.latency:
                time.sleep(self.latency)
            whole_call = self._whole_call_answer(messages)
            if whole_call is not None:
                return whole_call
            results = [self._message_result(message) for message in messages]
            if self.webhooks is not None:
                for message, result in zip(messages, results, strict=True):
                    if result["ErrorCode"] == 0:
                        self.webhooks.delivered(message, result)
            if path == "/email/batch":
                return Answer(200, {"_list": results})
            result = results[0]
            return Answer(200 if result["ErrorCode"] == 0 else 422, result)
        finally:
            with self._lock:
                self.stats.in_flight -= 1

    def _whole_call_answer(self, messages: list[dict[str, Any]]) -> Answer | None:
        for message in messages:
            for address in _addresses(message.get("To", "")):
                scripted = self._scripted.get(address)
                if scripted is not None:
                    return scripted
                if "+ratelimited@" in address:
                    return Answer(
                        429,
                        {"ErrorCode": 429, "Message": "Rate limit exceeded."},
                        {"Retry-After": str(RETRY_AFTER_SECONDS)},
                    )
                if "+unavailable@" in address:
                    return Answer(500, {"ErrorCode": 500, "Message": "Internal server error."})
        return None

    def _message_result(self, message: dict[str, Any]) -> dict[str, Any]:
        to = str(message.get("To", ""))
        addresses = _addresses(to)
        if not message.get("From") or not addresses:
            return {"ErrorCode": 300, "Message": "Invalid 'To' address: ''."}
        inactive = [a for a in addresses if "+inactive@" in a]
        if inactive:
            return {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as inactive.\n"
                f"Found inactive addresses: {', '.join(inactive)}.\n"
                "Inactive recipients are ones that have generated a hard bounce or a spam complaint. ",
            }
        invalid = [a for a in addresses if "+invalid@" in a]
        if invalid:
            return {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{invalid[0]}'."}
        return {
            "To": to,
            "SubmittedAt": datetime.now(UTC).isoformat(),
            "MessageID": str(uuid.uuid4()),
            "ErrorCode": 0,
            "Message": "OK",
        }


class Webhooks:
    """Posts a Delivery webhook for each accepted message, as Postmark does, retrying failed posts."""

    RETRY_SECONDS = 1.0

    def __init__(self, url: str, auth: tuple[str, str] | None, threads: int) -> None:
        self.url, self.threads = url, threads
        self.headers = {"Content-Type": "application/json"}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.pending: queue.Queue[dict[str, Any]] = queue.Queue()
        self.posted = self.failed_posts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []

    def delivered(self, message: dict[str, Any], result: dict[str, Any]) -> None:
        """Queue the Delivery webhook of one accepted message."""
        event: dict[str, Any] = {
            "RecordType": "Delivery",
            "ServerID": 1,
            "MessageStream": message.get("MessageStream", "outbound"),
            "MessageID": result["MessageID"],
            "Recipient": _addresses(result["To"])[0],
            "DeliveredAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "Details": "Test delivery webhook details",
            "Metadata": message.get("Metadata") or {},
        }
        if message.get("Tag"):
            event["Tag"] = message["Tag"]
        self.pending.put(event)

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._post_forever, name=f"postmark-webhooks-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stopping.set()
        for worker in self._workers:
            worker.join(timeout=5)

    def drained(self) -> bool:
        """True when every webhook queued so far has been posted."""
        return self.pending.unfinished_tasks == 0

    def _post_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                event = self.pending.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                while not self._stopping.is_set() and not self._post(event):
                    with self._lock:
                        self.failed_posts += 1
                    self._stopping.wait(self.RETRY_SECONDS)
            finally:
                self.pending.task_done()

    def _post(self, event: dict[str, Any]) -> bool:
        request = urllib.request.Request(self.url, data=json.dumps(event).encode(), headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                ok = 200 <= response.status < 300
        except (urllib.error.URLError, OSError):
            return False
        if ok:
            with self._lock:
                self.posted += 1
        return ok


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    standin: PostmarkServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a requests Session reuses its connection
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.standin._lock:
            self.server.standin.stats.connections += 1

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._reply(Answer(200, self.server.standin.stats.as_dict()))
        else:
            self._reply(Answer(404, {"ErrorCode": 404, "Message": "Not found."}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        standin = self.server.standin
        if self.path == "/stats/reset":
            standin.reset()
            self._reply(Answer(200, standin.stats.as_dict()))
            return
        if self.path not in ("/email", "/email/batch"):
            self._reply(Answer(404, {"ErrorCode": 404, "Message": "Not found."}))
            return
        if not self.headers.get("X-Postmark-Server-Token"):
            self._reply(
                Answer(
                    401,
                    {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied in the HTTP headers."},
                )
            )
            return
        try:
            payload = json.loads(raw)
        except ValueError:
            self._reply(Answer(400, {"ErrorCode": 402, "Message": "Received invalid JSON input."}))
            return
        self._reply(standin.answer(self.path, payload))

    def _reply(self, answer: Answer) -> None:
        body = answer.body.get("_list", answer.body)
        data = json.dumps(body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per call would cost more than the call


def _addresses(field_value: str) -> list[str]:
    """Return the addresses of a To field ("Name <a@b>, c@d"), lower case."""
    found = []
    for part in str(field_value).split(","):
        part = part.strip()
        if "<" in part and part.endswith(">"):
            part = part[part.rindex("<") + 1 : -1]
        if part:
            found.append(part.lower())
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--latency-ms", type=float, default=60.0, help="wait this long before answering each call")
    parser.add_argument("--report-every", type=float, default=5.0, help="seconds between printed counts (0: never)")
    args = parser.parse_args(argv)
    server = PostmarkServer(host=args.host, port=args.port, latency=args.latency_ms / 1000)
    server.keep_messages = False  # a long run would keep every message in memory
    server.start()
    print(f"Postmark stand-in at {server.url} ({args.latency_ms:g} ms per call)", flush=True)
    print(f"  ANYMAIL_POSTMARK_SERVER_TOKEN=any ANYMAIL_POSTMARK_API_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(args.report_every or 3600)
            if args.report_every:
                print(json.dumps(server.stats.as_dict()), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps(server.stats.as_dict()), flush=True)
        server.stop()


if __name__ == "__main__":
    main()
