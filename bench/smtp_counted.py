"""bench/smtp_sink.py with a count per recipient, for the send benchmark's check at the server.

    python -m bench.smtp_counted --port 8026 --latency-ms 3 --counts /tmp/counts.json

The same sink (same answers, same wait before MAIL, RCPT and DATA). On SIGTERM or SIGINT it writes
`{"connections": n, "messages": n, ..., "recipients": {"a@b": n}}` to `--counts` and exits.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections import Counter
from pathlib import Path

from bench.smtp_sink import SmtpSink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--latency-ms", type=float, default=3.0)
    parser.add_argument("--counts", type=Path, required=True)
    args = parser.parse_args()
    sink = SmtpSink(host=args.host, port=args.port, latency=args.latency_ms / 1000)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    sink.start()
    print(f"SMTP sink at smtp://{args.host}:{args.port} ({args.latency_ms:g} ms per command), counting", flush=True)
    stopped.wait()
    sink.stop()
    recipients = Counter(address.lower() for address in sink.stats.recipients)
    args.counts.write_text(json.dumps({**sink.stats.as_dict(), "recipients": dict(recipients)}))


if __name__ == "__main__":
    main()
