"""bench/postmark_server.py with a count per recipient, for the send benchmark's check at the server.

    python -m bench.postmark_counted --port 8025 --latency-ms 60 --counts /tmp/counts.json

The same stand-in (same answers, same latency per call), counting each accepted message's recipients.
On SIGTERM or SIGINT it writes `{"calls": n, "messages": n, ..., "recipients": {"a@b": n}}` to
`--counts` and exits.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections import Counter
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from bench.postmark_server import Answer, PostmarkServer


class CountingPostmarkServer(PostmarkServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recipients: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def answer(self, path: str, payload: Any) -> Answer:
        answer = super().answer(path, payload)
        if answer.status != 200:
            return answer
        messages = payload if isinstance(payload, list) else [payload]
        results: list[Any] = answer.body if isinstance(answer.body, list) else [answer.body] * len(messages)
        accepted = [
            message
            for message, result in zip(messages, results, strict=False)
            if not isinstance(result, dict) or not result.get("ErrorCode")
        ]
        addresses = [
            address.lower()
            for message in accepted
            for field in ("To", "Cc", "Bcc")
            for _name, address in getaddresses([message.get(field) or ""])
            if address
        ]
        with self._count_lock:
            self.recipients.update(addresses)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--latency-ms", type=float, default=60.0)
    parser.add_argument("--counts", type=Path, required=True)
    args = parser.parse_args()
    server = CountingPostmarkServer(host=args.host, port=args.port, latency=args.latency_ms / 1000)
    server.keep_messages = False
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    server.start()
    print(f"Postmark stand-in at {server.url} ({args.latency_ms:g} ms per call), counting recipients", flush=True)
    stopped.wait()
    server.stop()
    args.counts.write_text(json.dumps({**server.stats.as_dict(), "recipients": dict(server.recipients)}))


if __name__ == "__main__":
    main()
