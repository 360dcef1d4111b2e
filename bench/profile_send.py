"""Profile sending one mail at a time in this process: wall and CPU time per mail, queries per mail,
and where the time goes. Run after `python -m bench cadence_tick` (it needs queued deliveries).

    python -m bench profile_send [--mails 300]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import time
from typing import Any

from bench import common


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench profile_send")
    parser.add_argument("--mails", type=int, default=300)
    args = parser.parse_args(argv)
    os.environ["EMAIL_BACKEND"] = "bench.backends.EmailBackend"
    common.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cadence.sending import batch_send
    from messaging.models import Delivery

    ids = list(Delivery.objects.filter(status="queued").values_list("id", flat=True)[: args.mails + 20])
    if len(ids) < 40:
        raise SystemExit("run `python -m bench cadence_tick` first: no queued deliveries")
    for delivery_id in ids[:20]:  # warm up: templates, connections
        batch_send(delivery_ids=[delivery_id])
    measured = ids[20:]
    half = len(measured) // 2
    with CaptureQueriesContext(connection) as queries:
        wall, cpu = time.monotonic(), time.process_time()
        for delivery_id in measured[:half]:
            batch_send(delivery_ids=[delivery_id])
        wall, cpu = (time.monotonic() - wall) / half, (time.process_time() - cpu) / half
    db = sum(float(q["time"]) for q in queries.captured_queries) / half
    statements = collections.Counter(
        " ".join([*q["sql"].split()[:1], q["sql"].split('"')[1] if '"' in q["sql"] else ""])
        for q in queries.captured_queries
    )
    figures = {
        "wall_ms_per_mail": round(wall * 1000, 2),
        "cpu_ms_per_mail": round(cpu * 1000, 2),
        "db_ms_per_mail": round(db * 1000, 2),
        "queries_per_mail": round(len(queries.captured_queries) / half, 2),
        "statements": {k: round(v / half, 2) for k, v in statements.most_common()},
    }
    print(figures)
    profile = cProfile.Profile()
    profile.enable()
    for delivery_id in measured[half:]:
        batch_send(delivery_ids=[delivery_id])
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(
        r"wt/cadence/(messaging|cadence)/|rendering|psycopg/cursor", 14
    )
    return figures


if __name__ == "__main__":
    main()
