"""Retention at scale: prune a large delivery history and check that the tick's claim speed holds.

    python -m bench retention [--rows 10000000] [--contacts 100000] [--due 20000] [--generate]

Uses its own database (`RETENTION_DATABASE_URL`, default cadence_retention) so other benchmarks'
data stays put. The history is generated once, in the server (INSERT ... SELECT generate_series, no
rows through Python): `--rows` sent nurture deliveries spread evenly over two years, one ESP event per
five deliveries. Then: the tick's claim rate on `--due` due schedules, one retention run
(DELIVERY_RETENTION_MAX_SECONDS bounds it, as in production), runs until nothing is left, and the
claim rate again.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from typing import Any

from bench.common import BASE_DIR, generate, purge_queues, setup

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cadence_retention"


def generate_history(*, rows: int) -> None:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE messaging_deliveryevent, messaging_delivery, messaging_deliverymonthlycount")
        cursor.execute(
            "CREATE TEMP TABLE bench_contacts AS "
            "SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS n FROM preferences_contact"
        )
        cursor.execute("CREATE INDEX ON bench_contacts (n)")
        cursor.execute("SELECT count(*) FROM bench_contacts")
        contacts = cursor.fetchone()[0]
        step = 1_000_000
        for first in range(0, rows, step):
            last = min(first + step, rows) - 1
            cursor.execute(
                """
                INSERT INTO messaging_delivery (id, contact_id, kind, template, idempotency_key, status, context,
                    esp_name, esp_message_id, attempts, error, error_class, feedback, created_at, claimed_at, sent_at,
                    updated_at, marketing, queue, send_key)
                SELECT gen_random_uuid(), c.id, 'nurture', 'nurture', 'bench:' || g, 'sent', '{}'::jsonb,
                    'test', 'msg-' || g, 1, '', '', 'delivered', t, t, t, t,
                    true, 'bulk', 'nurture:' || to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                FROM generate_series(%s, %s) AS g
                JOIN bench_contacts c ON c.n = g %% %s
                CROSS JOIN LATERAL (SELECT now() - (g %% 730) * interval '1 day' - (g %% 86400) * interval '1 second' AS t) ts
                """,
                [first, last, contacts],
            )
            print(f"  deliveries {last + 1:>11,} {time.monotonic() - started:7.0f} s", flush=True)
    generate_events()
    print(f"  history generated in {time.monotonic() - started:.0f} s", flush=True)


def generate_events() -> None:
    """One ESP event per five deliveries."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE messaging_deliveryevent")
        cursor.execute(
            """
            INSERT INTO messaging_deliveryevent (delivery_id, contact_id, esp_name, event_id, type, esp_type,
                occurred_at, received_at, description, click_url, detail)
            SELECT id, contact_id, 'test', 'ev-' || idempotency_key, 'delivered', 'delivered', created_at,
                created_at, '', '', '{}'::jsonb
            FROM messaging_delivery WHERE right(idempotency_key, 1) IN ('0', '5')
            """
        )
        cursor.execute("ANALYZE messaging_delivery; ANALYZE messaging_deliveryevent")


def claim_rate(*, due: int) -> dict[str, Any]:
    """Make `due` schedules due and time the tick's claim of all of them."""
    from django.utils import timezone

    from cadence.models import Schedule
    from cadence.tick import schedules_claim_due

    now = timezone.now()
    ids = list(Schedule.objects.order_by("contact_id").values_list("contact_id", flat=True)[:due])
    Schedule.objects.filter(contact_id__in=ids).update(
        next_due_at=now - timedelta(minutes=5), last_sent_at=now - timedelta(days=400), is_active=True
    )
    result = schedules_claim_due(max_batches=10**6, max_seconds=10**6)
    purge_queues("bulk", "welcome", "default")
    return {
        "claimed": result.claimed,
        "seconds": round(result.seconds, 2),
        "per_second": round(result.claimed / result.seconds),
    }


def counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM messaging_delivery), (SELECT count(*) FROM messaging_deliveryevent)"
        )
        deliveries, events = cursor.fetchone()
    return {"deliveries": deliveries, "events": events}


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=20_000)
    parser.add_argument("--generate", action="store_true", help="generate the history even when it exists")
    args = parser.parse_args()
    os.environ["BENCH_DATABASE_URL"] = os.environ.get("RETENTION_DATABASE_URL", DEFAULT_URL)
    setup(migrate=True)

    from messaging.retention import deliveries_monthly_totals, deliveries_prune

    if args.generate or counts()["deliveries"] < args.rows:
        generate(contacts=args.contacts, due=0)
        generate_history(rows=args.rows)
    elif counts()["events"] == 0:
        generate_events()
    figures: dict[str, Any] = {"load_before": os.getloadavg(), "before": counts()}
    figures["claim_before"] = claim_rate(due=args.due)
    totals_started = time.monotonic()
    totals = deliveries_monthly_totals()
    figures["monthly_totals_seconds"] = round(time.monotonic() - totals_started, 1)
    first = deliveries_prune()
    figures["first_run"] = {
        "deliveries": first.deliveries,
        "events": first.events,
        "batches": first.batches,
        "seconds": round(first.seconds, 1),
        "per_second": round(first.deliveries / max(first.seconds, 1e-9)),
    }
    runs, total_seconds, pruned = 1, first.seconds, first.deliveries
    while not first.done:
        first = deliveries_prune()
        runs, total_seconds, pruned = runs + 1, total_seconds + first.seconds, pruned + first.deliveries
    figures["all_runs"] = {"runs": runs, "deliveries": pruned, "seconds": round(total_seconds, 1)}
    figures["after"] = counts()
    figures["totals_kept"] = deliveries_monthly_totals() == totals
    figures["claim_after"] = claim_rate(due=args.due)
    figures["load_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2, default=str))
    (BASE_DIR / "var").mkdir(exist_ok=True)
    (BASE_DIR / "var" / "bench-retention.json").write_text(json.dumps(figures, indent=2, default=str))
    return figures


if __name__ == "__main__":
    main()
