"""Webhook intake benchmark: real Postmark (one event a post) and SendGrid-shaped (1,000 a post) payloads,
posted by Debian's `wrk` (bench/intake.lua) to `gunicorn config.wsgi` (4 workers) on PostgreSQL; then the
stored posts processed by a real worker on the `events` queue.

    python -m bench.intake --mails 10000 --seconds 10

Reports accepted events/s for both shapes, processed events/s, and bounce-to-suppression latency
(post stored -> contact suppressed) p50/p99.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BASE_DIR, bench_database_url, setup

PORT = 8031


def _deliveries(mails: int) -> list[tuple[str, str, str]]:
    from messaging.models import Delivery, DeliveryEvent, EventPost
    from preferences.models import ConsentEvent, Contact, SuppressionEntry

    EventPost.objects.all().delete()
    DeliveryEvent.objects.all().delete()
    SuppressionEntry.objects.all().delete()
    ConsentEvent.objects.filter(kind=ConsentEvent.Kind.SUPPRESSED).delete()
    Delivery.objects.filter(idempotency_key__startswith="bench-intake:").delete()
    Contact.objects.filter(email__startswith="bench-intake-").delete()
    contacts = Contact.objects.bulk_create(
        (Contact(email=f"bench-intake-{i}@example.com", status="confirmed") for i in range(mails)), batch_size=5000
    )
    deliveries = Delivery.objects.bulk_create(
        (
            Delivery(contact=c, kind="nurture", marketing=True, template="nurture", idempotency_key=f"bench-intake:{i}",
                     status="sent", esp_name="postmark", esp_message_id=f"pm-bench-{i}", send_key="bench-intake")
            for i, c in enumerate(contacts)
        ),
        batch_size=5000,
    )  # fmt: skip
    return [(str(d.id), d.esp_message_id, c.email) for d, c in zip(deliveries, contacts, strict=True)]


def postmark_lines(deliveries: list[tuple[str, str, str]]) -> list[str]:
    """A Delivery for each mail, an Open for one in five, a HardBounce for one in a hundred (Postmark's shapes)."""
    lines = []
    for i, (delivery_id, message_id, email) in enumerate(deliveries):
        common = {"MessageStream": "outbound", "MessageID": message_id, "Metadata": {"delivery_id": delivery_id},
                  "Tag": "nurture", "ServerID": 23}  # fmt: skip
        lines.append(json.dumps({**common, "RecordType": "Delivery", "Recipient": email,
                                 "DeliveredAt": "2026-12-05T06:33:54.9070259Z", "Details": "smtp;250 2.0.0 OK"}))  # fmt: skip
        if i % 5 == 0:
            lines.append(json.dumps({**common, "RecordType": "Open", "FirstOpen": True, "Recipient": email,
                                     "ReceivedAt": "2026-12-05T06:40:00Z", "Platform": "WebMail",
                                     "UserAgent": "Mozilla/5.0", "Client": {"Name": "Chrome"}, "OS": {"Name": "Linux"}}))  # fmt: skip
        if i % 100 == 0:
            lines.append(json.dumps({**common, "RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1,
                                     "ID": 4323372036854775000 + i, "Name": "Hard bounce", "Email": email,
                                     "Description": "The server was unable to deliver your message.",
                                     "Details": "smtp;550 5.1.1 unknown user", "BouncedAt": "2026-12-05T06:34:00Z",
                                     "Inactive": True, "CanActivate": True, "Subject": "Hello"}))  # fmt: skip
    return lines


def sendgrid_lines(deliveries: list[tuple[str, str, str]], per_post: int = 1000) -> list[str]:
    events = [
        {"email": email, "timestamp": 1_764_000_000 + i, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
         "sg_event_id": f"sg-bench-{i}", "sg_message_id": f"{message_id}.filter0001", "event": "delivered",
         "response": "250 OK", "category": ["nurture"], "delivery_id": delivery_id}
        for i, (delivery_id, message_id, email) in enumerate(deliveries)
    ]  # fmt: skip
    return [json.dumps(events[i : i + per_post]) for i in range(0, len(events), per_post)]


def load() -> str:
    return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()


def wrk(url: str, lines: list[str], auth: str, seconds: int, connections: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as file:
        file.write("\n".join(lines) + "\n")
    token = base64.b64encode(auth.encode()).decode()
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(BASE_DIR / "bench" / "intake.lua"), url, "--",
         file.name, token],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    os.unlink(file.name)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    assert shutil.which("wrk"), "needs Debian's wrk"
    os.environ["EMAIL_BACKEND"] = "anymail.backends.postmark.EmailBackend"
    os.environ["WEBHOOK_ESPS"] = "sendgrid"
    setup(migrate=True)
    from messaging.models import EventPost

    deliveries = _deliveries(args.mails)
    auth = os.environ["ANYMAIL_WEBHOOK_SECRET"]
    env = {**os.environ, "DATABASE_URL": bench_database_url(), "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
           "LOG_LEVEL": "WARNING", "EVENT_INTAKE_TRIGGER_SECONDS": "3600", "SECURE_SSL_REDIRECT": "false"}  # fmt: skip
    print(f"load before: {load()}")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", "4", "-b", f"127.0.0.1:{PORT}", "--log-level", "warning"],
        cwd=BASE_DIR, env=env,
    )  # fmt: skip
    try:
        time.sleep(4)
        base = f"http://127.0.0.1:{PORT}/anymail"
        print("postmark, one event a post:")
        print(wrk(f"{base}/postmark/tracking/", postmark_lines(deliveries), auth, args.seconds, args.connections))
        accepted = EventPost.objects.count()
        print(f"  accepted {accepted} posts = {accepted / args.seconds:.0f} events/s; load {load()}")
        print("sendgrid-shaped, 1,000 events a post:")
        print(wrk(f"{base}/sendgrid/tracking/", sendgrid_lines(deliveries), auth, args.seconds, 4))
        arrays = EventPost.objects.filter(esp="sendgrid").count()
        print(f"  accepted {arrays} posts = {arrays * 1000 / args.seconds:.0f} events/s; load {load()}")
    finally:
        web.terminate()
        web.wait()
    EventPost.objects.filter(esp="sendgrid").delete()  # processing is timed on the Postmark posts
    waiting = EventPost.objects.filter(state="new").count()
    from tests.workers import purge_queues

    purge_queues("events")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "events", "-c", "1", "-n", "bench-events@%h",
         "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=BASE_DIR, env=env,
    )  # fmt: skip
    try:
        from messaging.tasks import event_posts_process

        time.sleep(5)
        started = time.monotonic()
        event_posts_process.apply_async()
        while EventPost.objects.filter(state="new").exists():
            time.sleep(0.2)
            if time.monotonic() - started > 600:
                break
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait()
    print(f"processed {waiting} posts in {elapsed:.1f} s = {waiting / elapsed:.0f} events/s; load {load()}")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM c.suppressed_at - p.received_at)) "
            "FROM messaging_eventpost p JOIN preferences_contact c ON c.email = (convert_from(p.body, 'UTF8')::jsonb ->> 'Email') "
            "WHERE convert_from(p.body, 'UTF8')::jsonb ->> 'RecordType' = 'Bounce'"
        )
        p50, p99 = cursor.fetchone()[0]
    print(f"bounce -> suppression (post stored -> contact suppressed): p50 {p50:.1f} s, p99 {p99:.1f} s")
    print("(processing started after the load run: latency includes the wait for the run to end)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
