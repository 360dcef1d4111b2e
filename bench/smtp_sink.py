"""An SMTP sink for the send benchmark: accepts every mail, answers each command after a delay, counts.

    python -m bench.smtp_sink --port 2525 --delay-ms 3 --counts /tmp/counts.json

Built on aiosmtpd. Every EHLO/HELO, MAIL, RCPT, DATA and RSET is answered after `--delay-ms`, like a
relay on the local network. Each accepted recipient is counted; on SIGTERM or SIGINT the counts are
written to `--counts` as JSON (`{"messages": n, "connections": n, "recipients": {"a@b": n, ...}}`) and
the sink exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class CountingHandler:
    """Accept everything after a delay; count recipients of accepted messages."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages = 0
        self.connections = 0
        self.recipients: Counter[str] = Counter()

    async def _wait(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        await self._wait()
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        await self._wait()
        self.connections += 1
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._wait()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._wait()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._wait()
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._wait()
        self.messages += 1
        self.recipients.update(address.lower() for address in envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "connections": self.connections, "recipients": dict(self.recipients)}


async def serve(*, host: str, port: int, delay: float, counts: Path | None) -> None:
    handler = CountingHandler(delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.bench", data_size_limit=10 * 2**20), host=host, port=port, backlog=512
    )
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print(f"smtp sink on {host}:{port}, {delay * 1000:.1f} ms per command", flush=True)
    await stopped.wait()
    server.close()
    if counts is not None:
        counts.write_text(json.dumps(handler.as_dict()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--delay-ms", type=float, default=3.0, help="delay before each command's answer")
    parser.add_argument("--counts", type=Path, help="write the counts here (JSON) on exit")
    args = parser.parse_args()
    asyncio.run(serve(host=args.host, port=args.port, delay=args.delay_ms / 1000, counts=args.counts))


if __name__ == "__main__":
    main()
