"""Webhook intake benchmark: real Postmark (one event a post) and SendGrid-shaped (1,000 a post) payloads,
posted by Debian's `wrk` (bench/intake.lua) to `gunicorn config.wsgi` (4 workers) on PostgreSQL; then the
stored posts processed by a real worker on the `events` queue.

    python -m bench.intake --mails 10000 --seconds 10

Reports accepted events/s for both shapes (with the gunicorn workers' CPU per post, which the machine's
load does not change much), the bounce-to-suppression latency (post stored -> contact suppressed) p50/p99
with an events worker processing while wrk posts, and sustained processing of `--process-events` stored
events by one worker.
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


def events_worker(env: dict[str, str]) -> subprocess.Popen:
    """Start the production set's events worker (deploy/cadence worker-events)."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "events", "-c", "1", "-n", "bench-events@%h",
         "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=BASE_DIR, env=env,
    )  # fmt: skip


def cpu_seconds(master: int) -> float:
    """Return the CPU seconds (user + system) used by a process's children: the live ones and those it
    reaped (gunicorn replaces its workers every GUNICORN_MAX_REQUESTS)."""
    fields = Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[13]) + int(fields[14])
    for pid in subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def bounce_latency(since_id: int) -> tuple[float, float, int]:
    """Return p50 and p99 (seconds) of post stored -> contact suppressed for the Postmark bounces after `since_id`."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM c.suppressed_at - p.received_at)), count(*) "
            "FROM messaging_eventpost p JOIN preferences_contact c ON c.email = (convert_from(p.body, 'UTF8')::jsonb ->> 'Email') "
            "WHERE p.id > %s AND p.esp = 'postmark' AND convert_from(p.body, 'UTF8')::jsonb ->> 'RecordType' = 'Bounce' "
            "AND c.suppressed_at >= p.received_at",
            [since_id],
        )
        (p50, p99), count = cursor.fetchone()
    return p50 or 0.0, p99 or 0.0, count


def store_posts(lines: list[str], count: int) -> None:
    """Store `count` Postmark posts (cycling through `lines`) as the door would, without the door."""
    from messaging.models import EventPost

    meta = {"CONTENT_TYPE": "application/json", "PATH_INFO": "/anymail/postmark/tracking/", "wsgi.url_scheme": "https"}
    for start in range(0, count, 5000):
        EventPost.objects.bulk_create(
            EventPost(esp="postmark", body=lines[i % len(lines)].encode(), meta=meta)
            for i in range(start, min(count, start + 5000))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--process-events", type=int, default=100000, help="stored events timed through a worker")
    args = parser.parse_args()
    assert shutil.which("wrk"), "needs Debian's wrk"
    os.environ["EMAIL_BACKEND"] = "anymail.backends.postmark.EmailBackend"
    os.environ["WEBHOOK_ESPS"] = "sendgrid"
    setup(migrate=True)
    from messaging.models import EventPost
    from messaging.tasks import event_posts_process
    from tests.workers import purge_queues

    deliveries = _deliveries(args.mails)
    lines = postmark_lines(deliveries)
    auth = os.environ["ANYMAIL_WEBHOOK_SECRET"]
    # The door as deployed: gunicorn.conf.py (threads, preload) with the bench's worker count, and the web
    # asking for processing every EVENT_INTAKE_TRIGGER_SECONDS as in production.
    env = {**os.environ, "DATABASE_URL": bench_database_url(), "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
           "LOG_LEVEL": "WARNING", "SECURE_SSL_REDIRECT": "false"}  # fmt: skip
    purge_queues("events")
    print(f"load before: {load()}")
    access_log = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the server runs)
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "config.wsgi", "-w", "4", "-b", f"127.0.0.1:{PORT}",
         "--log-level", "warning"],
        cwd=BASE_DIR, env=env, stdout=access_log,  # the access log as production writes it, to a file
    )  # fmt: skip
    worker = events_worker(env)
    try:
        time.sleep(6)
        base = f"http://127.0.0.1:{PORT}/anymail"
        print("postmark, one event a post, an events worker processing meanwhile:")
        before_id = EventPost.objects.order_by("-id").values_list("id", flat=True).first() or 0
        used = cpu_seconds(web.pid)
        print(wrk(f"{base}/postmark/tracking/", lines, auth, args.seconds, args.connections))
        used = cpu_seconds(web.pid) - used
        accepted = EventPost.objects.filter(id__gt=before_id).count()
        print(f"  accepted {accepted} posts = {accepted / args.seconds:.0f} events/s; gunicorn workers' CPU "
              f"{used * 1000 / max(accepted, 1):.2f} ms a post; load {load()}")  # fmt: skip
        deadline = time.monotonic() + 120
        while EventPost.objects.filter(state="new").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        p50, p99, bounces = bounce_latency(before_id)
        print(f"  bounce -> suppression (post stored -> contact suppressed, processed while posting): "
              f"p50 {p50:.2f} s, p99 {p99:.2f} s over {bounces} bounces")  # fmt: skip
        print("sendgrid-shaped, 1,000 events a post:")
        before_id = EventPost.objects.order_by("-id").values_list("id", flat=True).first() or 0
        print(wrk(f"{base}/sendgrid/tracking/", sendgrid_lines(deliveries), auth, args.seconds, 4))
        arrays = EventPost.objects.filter(esp="sendgrid", id__gt=before_id).count()
        print(f"  accepted {arrays} posts = {arrays * 1000 / args.seconds:.0f} events/s; load {load()}")
    finally:
        web.terminate()
        web.wait()
        worker.terminate()
        worker.wait()
    # Sustained processing: `--process-events` distinct stored Postmark events (121 for every 100 mails),
    # one worker, from a standing start.
    EventPost.objects.all().delete()
    lines = postmark_lines(_deliveries(args.process_events * 100 // 121 + 1))[: args.process_events]
    store_posts(lines, len(lines))
    purge_queues("events")
    worker = events_worker(env)
    try:
        time.sleep(5)
        started = time.monotonic()
        event_posts_process.apply_async()
        while EventPost.objects.filter(state="new").exists():
            time.sleep(0.5)
            if time.monotonic() - started > 1800:
                break
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait()
    print(f"processed {args.process_events} stored events in {elapsed:.1f} s = {args.process_events / elapsed:.0f} events/s; "
          f"load {load()}")  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
