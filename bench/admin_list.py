"""Benchmark: the admin contact list at 1,000,000 contacts.

Fills a separate PostgreSQL database (BENCH_DATABASE_URL, default cadence_admin_bench) with
contacts, health rows and schedules through COPY, then times the changelist with the Django test
client: default, filtered and searched pages. Writes the figures to bench/RESULTS-admin.md.

    .venv/bin/python -m bench.admin_list [--contacts 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cadence_admin_bench"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CONN_MAX_AGE", "0")

PAGES = [
    ("default (newest first)", ""),
    ("filtered: confirmed", "?status__exact=confirmed"),
    ("filtered: prospects", "?lifecycle=prospect"),
    ("filtered: customers", "?lifecycle=customer"),
    ("filtered: former customers", "?lifecycle=former_customer"),
    ("filtered: potential none", "?potential__exact=none"),
    ("filtered: frequency quarterly", "?frequency=quarterly"),
    ("filtered: health lost", "?health=lost"),
    ("filtered: prospects, high potential, cooling", "?lifecycle=prospect&potential__exact=high&health=cooling"),
    ("page 150", "?p=150"),
    ("search: exact email", "?q={email}"),
    ("search: CRM id", "?q={external_id}"),
    ("search: no match", "?q=nobody%40example.org"),
]


def create_database() -> None:
    import psycopg
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    params = settings.DATABASES["default"]
    with psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def fill(total: int) -> float:
    """Replace every contact with `total` generated ones (COPY). Return the seconds it took."""
    from django.db import connection

    rng = random.Random(42)
    started = time.monotonic()
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE preferences_contact, preferences_contact_topics, preferences_conversion, "
            "cadence_contacthealth, cadence_schedule, messaging_delivery, preferences_consentevent CASCADE"
        )
        raw = cursor.cursor
        contact_cols = (
            "id, email, first_name, locale, time_zone, status, frequency, source, external_id, share_of_customer, "
            "potential, suppression_reason, token_secret, created_at, updated_at, confirmed_at, former_customer_at"
        )
        health_rows: list[tuple] = []
        schedule_rows: list[tuple] = []
        with raw.copy(f"COPY preferences_contact ({contact_cols}) FROM STDIN") as copy:
            for i in range(total):
                contact_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                created = now - timedelta(seconds=rng.randrange(3 * 365 * 86400))
                roll = rng.random()
                status = "confirmed" if roll < 0.85 else ("pending" if roll < 0.95 else "unsubscribed")
                share_roll = rng.random()
                share = 0 if share_roll < 0.90 else rng.randrange(1, 101)
                former = created + timedelta(days=30) if share == 0 and share_roll > 0.89 else None
                copy.write_row(
                    (
                        contact_id,
                        f"person{i}@example.com",
                        "Sam",
                        "nl" if rng.random() < 0.7 else "en",
                        "Europe/Amsterdam",
                        status,
                        rng.choice(["biweekly", "monthly", "monthly", "quarterly"]),
                        rng.choice(["website", "branch", "app", "campaign-spring", "partner"]),
                        f"crm-{i}" if rng.random() < 0.6 else None,
                        share,
                        rng.choices(["high", "medium", "low", "none"], [10, 30, 40, 20])[0],
                        "",
                        "x" * 22,
                        created,
                        created,
                        created if status != "pending" else None,
                        former,
                    )
                )
                if status == "confirmed":
                    state = rng.choices(["healthy", "cooling", "at_risk", "lost"], [70, 15, 10, 5])[0]
                    health_rows.append((contact_id, state, now, now))
                    schedule_rows.append((contact_id, True, now + timedelta(days=rng.randrange(-40, 91)), now, now))
                if i and i % 100_000 == 0:
                    print(f"  {i:,} contacts", file=sys.stderr)
        with raw.copy(
            "COPY cadence_contacthealth (contact_id, state, reasons, state_since, computed_at, bounce_count, "
            "sunset_stage) FROM STDIN"
        ) as copy:
            for contact_id, state, since, computed in health_rows:
                copy.write_row((contact_id, state, "[]", since, computed, 0, 0))
        with raw.copy(
            "COPY cadence_schedule (contact_id, is_active, next_due_at, created_at, updated_at, welcome_step) FROM STDIN"
        ) as copy:
            for row in schedule_rows:
                copy.write_row((*row, 0))
        cursor.execute("ANALYZE preferences_contact, cadence_contacthealth, cadence_schedule")
    return time.monotonic() - started


def timed(client, url: str, runs: int) -> tuple[float, float]:
    client.get(url)  # warm: caches, plans, templates
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("RESULTS-admin.md"))
    args = parser.parse_args()

    import django

    django.setup()
    create_database()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from preferences.models import Contact

    call_command("migrate", verbosity=0)
    existing = Contact.objects.count()
    fill_seconds = None
    if existing != args.contacts:
        print(f"filling {args.contacts:,} contacts (had {existing:,})", file=sys.stderr)
        fill_seconds = fill(args.contacts)
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    sample = (
        Contact.objects.filter(external_id="crm-500000").first() or Contact.objects.exclude(external_id=None).first()
    )
    if sample is None:
        raise SystemExit("no contact with a CRM id to look up: fill the database first")
    rows = []
    for label, query in PAGES:
        url = "/admin/preferences/contact/" + query.format(
            email=sample.email.replace("@", "%40"), external_id=sample.external_id
        )
        median, worst = timed(client, url, args.runs)
        rows.append((label, query, median, worst))
        print(f"{label:50s} median {median * 1000:7.1f} ms  max {worst * 1000:7.1f} ms", file=sys.stderr)
    started = time.perf_counter()
    assert client.get("/admin/dashboard/?refresh=1").status_code == 200
    dashboard = time.perf_counter() - started
    contact_page = timed(client, f"/admin/preferences/contact/{sample.pk}/change/", args.runs)

    lines = [
        "# Admin contact list at scale",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `.venv/bin/python -m bench.admin_list "
        f"--contacts {args.contacts} --runs {args.runs}` on {platform.node()}: {os.cpu_count()} cores "
        "(shared with other work), PostgreSQL on the same machine, Django test client (no network).",
        "",
        f"Data: {Contact.objects.count():,} contacts (85% confirmed, each with a health row and a schedule), "
        "filled with COPY" + (f" in {fill_seconds:.0f} s." if fill_seconds else " (existing data reused)."),
        "Each page is requested once to warm up, then timed; the target is < 1 s per page.",
        "",
        "| page | query | median | max |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [f"| {label} | `{query or '-'}` | {m * 1000:.0f} ms | {w * 1000:.0f} ms |" for label, query, m, w in rows]
    lines += [
        f"| contact change page | - | {contact_page[0] * 1000:.0f} ms | {contact_page[1] * 1000:.0f} ms |",
        "",
        f"Dashboard, computed without cache (then cached for DASHBOARD_CACHE_SECONDS): {dashboard * 1000:.0f} ms.",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
