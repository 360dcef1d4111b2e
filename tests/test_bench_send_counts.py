"""The send benchmark counts each recipient accepted by the SMTP sink and checks the counts against the due."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from bench.send import free_port, verify_counts, wait_for_port

BASE_DIR = Path(__file__).resolve().parent.parent


def test_the_sink_counts_every_recipient_and_writes_the_counts_when_stopped(tmp_path: Path) -> None:
    port = free_port()
    counts = tmp_path / "counts.json"
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.smtp_counted", "--port", str(port), "--latency-ms", "1", "--counts", str(counts)],
        cwd=BASE_DIR,
    )
    try:
        wait_for_port(port)
        with smtplib.SMTP("127.0.0.1", port) as client:
            for n in range(3):
                client.sendmail("hello@example.com", [f"bench{n}@example.com"], b"Subject: hi\r\n\r\nbody")
            client.sendmail("hello@example.com", ["Bench1@example.com"], b"Subject: again\r\n\r\nbody")
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=20)
    report = json.loads(counts.read_text())
    assert report["messages"] == 4
    assert report["recipients"] == {"bench0@example.com": 1, "bench1@example.com": 2, "bench2@example.com": 1}
    assert verify_counts(due=4, counts=report["recipients"]) == {
        "server_recipients": 3,
        "server_missing": 1,
        "server_duplicates": 1,
    }
