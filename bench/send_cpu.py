"""CPU per mail of the send task's work in ONE process, through a real ESP stand-in (or none).

    python -m bench send_cpu --esp test|postmark|smtp [--mails 4000] [--batch 200] [--repeat 3] [--profile]

The stand-in (bench/postmark_server.py or bench/smtp_sink.py, answering at once) runs in a process
of its own, so its CPU is not counted. This process creates MAILS confirmed contacts (names with
accents, quotes and '=' among them) with topics, digest content and a queued nurture mail each,
sends them with cadence.batch.batch_send in batches of BATCH (the send task's whole work: claim,
consent, digest, rendering, hand-off through the lanes, record, schedules and receipts), and prints
this process's CPU time per mail (every thread: the lanes included) and the wall time. The mails are
sent REPEAT times over (queued again in between) and the best round is reported: CPU time on a
shared machine only ever grows with others' load. With `--profile` it prints a cProfile of the
last round in CPU time of the calling thread (ESP_SEND_CONCURRENCY=1 sends in that thread: all of it). The data is deleted afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from bench import common

NAMES = ["Anna", "Zoë", "O'Brien", "Jan=Piet", "José", "Ümit", "Li", "Bram"]


def _stand_in(esp: str) -> tuple[subprocess.Popen[bytes] | None, dict[str, str]]:
    if esp == "test":
        return None, {"EMAIL_BACKEND": "bench.backends.EmailBackend"}
    from bench.send import free_port, wait_for_port

    port = free_port()
    module = "bench.postmark_server" if esp == "postmark" else "bench.smtp_sink"
    command = [sys.executable, "-m", module, "--port", str(port), "--latency-ms", "0", "--report-every", "0"]
    server = subprocess.Popen(command, cwd=common.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    if esp == "postmark":
        return server, {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "bench-server-token",
            "ANYMAIL_POSTMARK_API_URL": f"http://127.0.0.1:{port}/",
        }
    return server, {"EMAIL_URL": f"smtp://127.0.0.1:{port}"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench send_cpu")
    parser.add_argument("--esp", choices=("test", "postmark", "smtp"), default="test")
    parser.add_argument("--mails", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    server, env = _stand_in(args.esp)
    os.environ.pop("EMAIL_URL", None)
    os.environ.pop("EMAIL_BACKEND", None)
    os.environ.update(env)
    os.environ["ESP_MAX_SEND_RATE"] = "0"
    try:
        common.setup(migrate=True)
        return _run(args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from django.utils import timezone

    from cadence.batch import batch_send
    from cadence.models import ContentItem, Schedule
    from messaging.models import Delivery
    from preferences.models import Contact, Topic

    run = uuid.uuid4().hex[:8]
    now = timezone.now()
    topics = [Topic.objects.create(slug=f"cpu-{run}-{i}", name_en=f"T{i}", name_nl=f"T{i}") for i in range(3)]
    ContentItem.objects.bulk_create(
        ContentItem(topic=t, language=lang, title=f"{t.slug} {lang} nieuws", published_at=now - timedelta(days=1))
        for t in topics
        for lang in ("en", "nl")
    )
    best: dict[str, float] = {}
    try:
        contacts = Contact.objects.bulk_create(
            Contact(
                email=f"cpu-{run}-{i}@example.com",
                first_name=NAMES[i % len(NAMES)],
                locale="nl" if i % 2 else "en",
                status="confirmed",
                confirmed_at=now,
            )
            for i in range(args.mails)
        )
        Contact.topics.through.objects.bulk_create(
            Contact.topics.through(contact_id=c.id, topic_id=topics[i % 3].id) for i, c in enumerate(contacts)
        )
        Schedule.objects.bulk_create(
            Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9)
            for c in contacts
        )
        deliveries = Delivery.objects.bulk_create(
            Delivery(contact=c, kind="nurture", template="nurture", idempotency_key=f"cpu:{run}:{c.id}", marketing=True)
            for c in contacts
        )
        ids = [d.id for d in deliveries]
        batch_send(delivery_ids=ids[: args.batch])  # warm up: templates, connections, the render cache
        measured = ids[args.batch :]
        for round_ in range(args.repeat):
            Delivery.objects.filter(id__in=measured).update(status="queued", esp_message_id="", sent_at=None)
            profile = cProfile.Profile(time.thread_time) if args.profile and round_ == args.repeat - 1 else None
            sent = 0
            wall, cpu = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            for start in range(0, len(measured), args.batch):
                sent += len(batch_send(delivery_ids=measured[start : start + args.batch]).sent)
            if profile is not None:
                profile.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            figures = {"cpu_ms_per_mail": cpu / max(sent, 1) * 1000, "wall_ms_per_mail": wall / max(sent, 1) * 1000}
            print(
                f"{args.esp:>8} round {round_ + 1}: {sent} sent, {figures['cpu_ms_per_mail']:.3f} ms CPU per mail, "
                f"{figures['wall_ms_per_mail']:.3f} ms wall per mail, {_rss_mb():.0f} MB resident",
                flush=True,
            )
            if sent != len(measured):
                raise SystemExit(f"only {sent} of {len(measured)} sent")
            if not best or figures["cpu_ms_per_mail"] < best["cpu_ms_per_mail"]:
                best = figures
            if profile is not None:
                stats = pstats.Stats(profile)
                stats.sort_stats("tottime").print_stats(30)
                stats.sort_stats("cumulative").print_stats(40)
        print(f"{args.esp:>8} best: {best['cpu_ms_per_mail']:.3f} ms CPU per mail ({os.getloadavg()[0]:.1f} load)")
    finally:
        Delivery.objects.filter(idempotency_key__startswith=f"cpu:{run}:").delete()
        Contact.objects.filter(email__startswith=f"cpu-{run}-").delete()
        Topic.objects.filter(slug__startswith=f"cpu-{run}-").delete()
    return best


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


if __name__ == "__main__":
    main()
