"""Profile the send task's work in this process, batch by batch as a worker does it: wall and CPU time
per mail, queries per mail, and where the time goes. Run after `python -m bench cadence_tick` (it needs
queued deliveries).

    python -m bench profile_send [--mails 2000] [--batch 200]
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
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ["EMAIL_BACKEND"] = "bench.backends.EmailBackend"
    common.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cadence.batch import batch_send
    from messaging.models import Delivery

    size = args.batch
    ids = list(Delivery.objects.filter(status="queued").values_list("id", flat=True)[: args.mails + size])
    if len(ids) < 3 * size:
        raise SystemExit("run `python -m bench cadence_tick` first: not enough queued deliveries")

    def send(some: list[Any]) -> None:
        for start in range(0, len(some), size):
            batch_send(delivery_ids=some[start : start + size])

    send(ids[:size])  # warm up: templates, connections
    measured = ids[size:]
    half = len(measured) // 2
    with CaptureQueriesContext(connection) as queries:
        wall, cpu = time.monotonic(), time.process_time()
        send(measured[:half])
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
    send(measured[half:])
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(
        r"/(messaging|cadence)/|rendering|psycopg/cursor|anymail/backends", 20
    )
    return figures


if __name__ == "__main__":
    main()
