"""A local SMTP sink (aiosmtpd) for tests and benchmarks: a bank's relay that keeps nothing.

It counts connections, MAIL FROM commands, delivered messages and the most messages in flight at
once, waits a configurable time per command, and lets recipients steer the answer to RCPT TO:
  `someone+deferred@…`  451 4.3.0 (try again later)
  `someone+rejected@…`  550 5.1.1 (no such user)
  `someone+closing@…`   421 4.3.2 (the client closes the connection)

    python -m bench.smtp_sink --port 8026 --latency-ms 2

serves until interrupted; point Django's SMTP backend at it with `EMAIL_URL=smtp://127.0.0.1:8026`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class SinkStats:
    connections: int = 0
    mail_from: int = 0
    messages: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    recipients: list[str] = field(default_factory=list)  # accepted, in order of arrival

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "mail_from": self.mail_from,
            "messages": self.messages,
            "max_in_flight": self.max_in_flight,
        }


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sink._count_connection(session)
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        session.host_name = hostname
        self.sink._count_connection(session)
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        await self.sink._wait()
        with self.sink._lock:
            self.sink.stats.mail_from += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        await self.sink._wait()
        lowered = address.lower()
        if "+deferred@" in lowered:
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if "+rejected@" in lowered:
            return "550 5.1.1 No such user here"
        if "+closing@" in lowered:
            return "421 4.3.2 Service shutting down, closing transmission channel"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink._lock:
            self.sink.stats.in_flight += 1
            self.sink.stats.max_in_flight = max(self.sink.stats.max_in_flight, self.sink.stats.in_flight)
        try:
            await self.sink._wait()
            with self.sink._lock:
                self.sink.stats.messages += 1
                if self.sink.keep_recipients:
                    self.sink.stats.recipients.extend(envelope.rcpt_tos)
                if self.sink.keep_messages:
                    self.sink.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        finally:
            with self.sink._lock:
                self.sink.stats.in_flight -= 1
        return "250 Message accepted for delivery"


class SmtpSink:
    """An aiosmtpd server on its own thread; port 0 picks a free port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.latency = latency
        self.keep_recipients = True
        self.keep_messages = False  # tests: (recipients, the bytes as received) of every message
        self.messages: list[tuple[list[str], bytes]] = []
        self.stats = SinkStats()
        self._lock = threading.Lock()
        # aiosmtpd logs every command at INFO: at thousands of mails a second that is the bottleneck.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller = Controller(_Handler(self), hostname=host, port=self.port, ready_timeout=10)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.stats = SinkStats()

    def _count_connection(self, session: Any) -> None:
        with self._lock:
            if not getattr(session, "counted", False):  # a second EHLO (after STARTTLS) is the same connection
                session.counted = True
                self.stats.connections += 1

    async def _wait(self) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument(
        "--latency-ms", type=float, default=2.0, help="wait this long before answering MAIL, RCPT and DATA"
    )
    parser.add_argument("--report-every", type=float, default=5.0, help="seconds between printed counts (0: never)")
    args = parser.parse_args(argv)
    sink = SmtpSink(host=args.host, port=args.port, latency=args.latency_ms / 1000)
    sink.keep_recipients = False
    sink.start()
    print(f"SMTP sink at smtp://{sink.host}:{sink.port} ({args.latency_ms:g} ms per command)", flush=True)
    print(f"  EMAIL_URL=smtp://{sink.host}:{sink.port}", flush=True)
    try:
        while True:
            time.sleep(args.report_every or 3600)
            if args.report_every:
                print(json.dumps(sink.stats.as_dict()), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps(sink.stats.as_dict()), flush=True)
        sink.stop()


if __name__ == "__main__":
    main()
