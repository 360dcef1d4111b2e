"""Shared pieces of the benchmarks: a separate database, fast data generation with COPY, RSS sampling."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cadence_bench"


def bench_database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)


def ensure_secrets() -> None:
    """The start-up checks refuse to run without secrets; a bench run makes its own when none is set."""
    import secrets

    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
    os.environ.setdefault("ANYMAIL_WEBHOOK_SECRET", f"bench:{secrets.token_urlsafe(24)}")


def setup(*, migrate: bool = False) -> None:
    """Point Django at the bench database (created when missing) and set it up."""
    url = bench_database_url()
    os.environ["DATABASE_URL"] = url
    ensure_secrets()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if migrate:
        _create_database(url)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _create_database(url: str) -> None:
    import psycopg

    base, _sep, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def progress(label: str, done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stdout.write(f"\r  {label:<22} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,} {rate:>9,.0f}/s")
    if done >= total:
        sys.stdout.write("\n")
    sys.stdout.flush()


def generate(*, contacts: int, due: int, seed: int = 1) -> None:
    """Replace the bench data with `contacts` confirmed contacts (1-3 topics each) past their welcome
    series, `due` of them due now, and content in English and Dutch. Uses COPY; memory stays flat."""
    from django.db import connection
    from django.utils import timezone

    from cadence.models import ContentItem, Schedule
    from messaging.models import Delivery
    from preferences.frequencies import frequencies as offered_frequencies
    from preferences.models import Contact, Topic

    rng = random.Random(seed)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE cadence_contentreceipt, cadence_schedule, messaging_delivery, preferences_contact_topics, "
            "preferences_consentevent, preferences_contact CASCADE"
        )
    topics = []
    for n, slug in enumerate(["saving", "mortgage", "insurance", "pension", "energy", "investing"]):
        topic, _ = Topic.objects.update_or_create(
            slug=slug, defaults={"name_en": slug.title(), "name_nl": slug.title() + " (nl)", "position": n}
        )
        topics.append(topic)
    ContentItem.objects.all().delete()
    ContentItem.objects.bulk_create(
        ContentItem(
            topic=topic,
            language=language,
            title=f"{topic.slug} {language} {n}",
            summary="A summary that is about as long as a real one, give or take a few words.",
            url=f"https://example.com/{topic.slug}/{language}/{n}",
            published_at=now - timedelta(days=n * 3 + (400 if n >= 5 else 0)),
            evergreen=n >= 5,
        )
        for topic in topics
        for language in ("en", "nl")
        for n in range(7)
    )

    fields = [f for f in Contact._meta.concrete_fields]
    columns = [str(f.column) for f in fields]  # concrete fields all have a column
    fixed = {f.attname: f.get_default() for f in fields}
    zones = ["Europe/Amsterdam", "Europe/Amsterdam", "Europe/London", "America/New_York", "Asia/Tokyo"]
    frequencies = ["biweekly", "monthly", "quarterly"]
    interval_days = {frequency.key: frequency.days for frequency in offered_frequencies()}
    ids: list[uuid.UUID] = []
    started = time.monotonic()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY preferences_contact ({', '.join(columns)}) FROM STDIN") as copy:
            for n in range(contacts):
                contact_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                ids.append(contact_id)
                values = dict(fixed)
                values.update(
                    id=contact_id,
                    email=f"bench{n}@example.com",
                    first_name="Sam",
                    locale="nl" if n % 3 else "en",
                    time_zone=zones[n % len(zones)],
                    status="confirmed",
                    frequency=frequencies[n % 3],
                    token_secret=f"secret{n}",
                    created_at=now - timedelta(days=60),
                    updated_at=now,
                    confirmed_at=now - timedelta(days=60),
                    external_id=None,
                )
                copy.write_row([values[f.attname] for f in fields])
                if n % 20000 == 0 or n == contacts - 1:
                    progress("contacts", n + 1, contacts, started)
        started = time.monotonic()
        with raw.copy("COPY preferences_contact_topics (contact_id, topic_id) FROM STDIN") as copy:
            for n, contact_id in enumerate(ids):
                for topic in rng.sample(topics, 1 + n % 3):
                    copy.write_row([contact_id, topic.pk])
                if n % 20000 == 0 or n == contacts - 1:
                    progress("topics", n + 1, contacts, started)
        started = time.monotonic()
        columns = [
            "contact_id",
            "is_active",
            "next_due_at",
            "last_sent_at",
            "welcome_step",
            "slot",
            "created_at",
            "updated_at",
        ]
        with raw.copy(f"COPY cadence_schedule ({', '.join(columns)}) FROM STDIN") as copy:
            for n, contact_id in enumerate(ids):
                is_due = n < due
                next_due = (
                    now - timedelta(seconds=rng.randint(1, 3600))
                    if is_due
                    else now + timedelta(days=rng.randint(1, 30))
                )
                # The last mail one interval and a day ago: the tick's rule lets the next one go now.
                last_sent = now - timedelta(days=interval_days[frequencies[n % 3]] + 1)
                copy.write_row([contact_id, True, next_due, last_sent, 3, 1, now, now])
                if n % 20000 == 0 or n == contacts - 1:
                    progress("schedules", n + 1, contacts, started)
        cursor.execute("ANALYZE preferences_contact; ANALYZE cadence_schedule; ANALYZE preferences_contact_topics")
    del ids
    assert Schedule.objects.count() == contacts and not Delivery.objects.exists()


def purge_queues(*queues: str) -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.queue_purge(queue)


class RssSampler:
    """Sample the resident memory of a process tree every 0.2 s; keep the peak of each process."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                for proc in [self.root, *self.root.children(recursive=True)]:
                    rss = proc.memory_info().rss
                    self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 2**20


@contextmanager
def workers(
    count: int, *, queues: str = "bulk,welcome", concurrency: int = 1, prefix: str = "bench"
) -> Iterator[list[Any]]:
    """Run `count` Celery worker processes on the bench database until the block ends."""
    import signal
    import socket
    import subprocess

    from config.celery import app

    env = dict(os.environ)
    env.update(
        DATABASE_URL=bench_database_url(),
        EMAIL_BACKEND="bench.backends.EmailBackend",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
    )
    processes = []
    for n in range(count):
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-n", f"{prefix}{n}@%h",
                 "--concurrency", str(concurrency), "--pool", "prefork", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel", "WARNING"],
                cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
        )  # fmt: skip
    try:
        names = [f"{prefix}{n}@{socket.gethostname()}" for n in range(count)]
        deadline = time.monotonic() + 90
        while len(app.control.ping(destination=names, timeout=1.0)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("bench workers did not start")
        yield processes
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
