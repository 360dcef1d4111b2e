"""Benchmark of the cadence engine: the tick, end-to-end sending with 2 real workers, welcome latency.

    python -m bench cadence_tick [--contacts 100000] [--e2e-seconds 60] [--welcomes 200]

Uses its own PostgreSQL database (BENCH_DATABASE_URL, default cadence_bench) and REDIS_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

from bench import common


def claim_in_child(*, ticks: int = 1, **options: Any) -> dict[str, Any]:
    """Run `ticks` ticks at once, each in a fresh process (so its peak RSS is its own); return the figures."""
    env = dict(os.environ, DATABASE_URL=common.bench_database_url())
    started = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.cadence_tick", "--child-claim", json.dumps(options)],
            cwd=common.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(ticks)
    ]
    results = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    seconds = time.monotonic() - started
    claimed = sum(r["claimed"] for r in results)
    return {
        "ticks": ticks,
        "claimed": claimed,
        "seconds_in_tick": max(r["seconds"] for r in results),
        "per_second": claimed / max(r["seconds"] for r in results),
        "seconds_with_process_start": seconds,
        "peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in results],
    }


def peak_rss_mb() -> float:
    """Return this process's peak resident memory. Not ru_maxrss: Linux carries that over from the
    parent across exec, so a child started by a large parent would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_claim(options: dict[str, Any]) -> None:
    common.setup()
    from cadence.tick import schedules_claim_due

    result = schedules_claim_due(
        batch_size=options["batch_size"], claim_size=options["claim_size"], max_batches=10**7, max_seconds=10**7
    )
    print(json.dumps({
        "claimed": result.claimed,
        "batches": result.batches,
        "seconds": result.seconds,
        "per_second": result.claimed / result.seconds,
        "peak_rss_mb": peak_rss_mb(),
    }))  # fmt: skip


def make_all_due() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE messaging_delivery CASCADE")
        cursor.execute("UPDATE cadence_schedule SET next_due_at = now() - interval '1 minute' * (random() * 60)")
        cursor.execute("VACUUM ANALYZE cadence_schedule")


def end_to_end_and_welcome(*, e2e_seconds: float, welcomes: int, welcome_worker: bool = False) -> dict[str, Any]:
    """With the tick's batches waiting on `bulk`, run 2 workers; confirm contacts meanwhile and time
    their welcome from confirmation to hand-off. Return mails/s, latencies and peak RSS."""
    from django.db.models import Max
    from django.utils import timezone

    from messaging.models import Delivery
    from preferences.models import Contact
    from preferences.services import Evidence, contact_confirm

    pending = [
        Contact.objects.create(email=f"welcome{n}-{time.time_ns()}@example.com", status=Contact.Status.PENDING)
        for n in range(welcomes)
    ]
    waiting = Delivery.objects.filter(status="queued", kind="nurture").count()
    evidence = Evidence(ip_address="127.0.0.1", user_agent="bench", source="bench")
    with ExitStack() as stack:
        processes = stack.enter_context(common.workers(2, queues="bulk" if welcome_worker else "bulk,welcome"))
        if welcome_worker:
            stack.enter_context(common.workers(1, queues="welcome", prefix="welcome"))
        samplers = [common.RssSampler(p.pid) for p in processes]
        for sampler in samplers:
            sampler.__enter__()
        started = timezone.now()
        t0 = time.monotonic()
        confirmed_at: dict[Any, float] = {}
        gap = min(0.25, e2e_seconds / 2 / max(welcomes, 1))
        for contact in pending:
            confirmed_at[contact.pk] = time.time()
            contact_confirm(contact=contact, evidence=evidence)
            time.sleep(gap)
        while time.monotonic() - t0 < e2e_seconds:
            time.sleep(1)
            if not Delivery.objects.filter(status__in=["queued", "sending"]).exists():
                break
        for sampler in samplers:
            sampler.__exit__(None, None, None)
        sent = Delivery.objects.filter(kind="nurture", status="sent", sent_at__gte=started)
        count = sent.count()
        last = sent.aggregate(last=Max("sent_at"))["last"] or timezone.now()
    common.purge_queues("bulk", "welcome")
    latencies = []
    for delivery in Delivery.objects.filter(kind="welcome", contact_id__in=list(confirmed_at)).exclude(sent_at=None):
        assert delivery.sent_at is not None  # excluded above; for the type checker
        latencies.append(delivery.sent_at.timestamp() - confirmed_at[delivery.contact_id])
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {
        "welcome_worker": welcome_worker,
        "nurture_waiting_at_start": waiting,
        "mails_sent": count,
        "seconds": (last - started).total_seconds(),
        "mails_per_second": count / max((last - started).total_seconds(), 1e-9),
        "welcomes_sent": len(latencies),
        "welcomes_asked": welcomes,
        "welcome_p50_s": pct(0.50),
        "welcome_p99_s": pct(0.99),
        "welcome_max_s": latencies[-1] if latencies else float("nan"),
        "welcome_mean_s": statistics.fmean(latencies) if latencies else float("nan"),
        "worker_peak_rss_mb": [round(s.peak_mb(), 1) for s in samplers],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench cadence_tick")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--e2e-seconds", type=float, default=60.0)
    parser.add_argument("--welcomes", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=200, help="mails per send task")
    parser.add_argument("--claim-size", type=int, default=2000, help="schedules per claim transaction")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--welcome-worker", action="store_true", help="a third worker process for `welcome` only")
    parser.add_argument("--ticks", type=int, default=1, help="ticks running at once (SKIP LOCKED)")
    parser.add_argument("--child-claim")
    parser.add_argument("--tick-only", action="store_true", help="reuse the data: make every schedule due, tick")
    args = parser.parse_args(argv)
    if args.child_claim:
        child_claim(json.loads(args.child_claim))
        return {}

    common.setup(migrate=True)
    figures: dict[str, Any] = {"contacts": args.contacts, "cores": os.cpu_count()}
    if args.tick_only:
        from cadence.models import Schedule

        make_all_due()
        due = Schedule.objects.count()
        print(f"Tick with all {due:,} due")
        figures[f"tick_{due}_due"] = claim_in_child(
            batch_size=args.batch_size, claim_size=args.claim_size, ticks=args.ticks
        )
        common.purge_queues("bulk", "welcome")
        print(json.dumps(figures, indent=2, default=str))
        return figures
    due = min(100_000, args.contacts)
    print(f"Generating {args.contacts:,} contacts ({due:,} due) with COPY")
    t = time.monotonic()
    common.generate(contacts=args.contacts, due=due)
    figures["generate_seconds"] = time.monotonic() - t
    common.purge_queues("bulk", "welcome")

    print(f"Tick with {due:,} due")
    figures[f"tick_{due}_due"] = claim_in_child(
        batch_size=args.batch_size, claim_size=args.claim_size, ticks=args.ticks
    )
    print("  ", figures[f"tick_{due}_due"])
    if not args.skip_e2e:
        print("End to end with 2 workers, welcome latency meanwhile")
        figures["end_to_end"] = end_to_end_and_welcome(
            e2e_seconds=args.e2e_seconds, welcomes=args.welcomes, welcome_worker=args.welcome_worker
        )
        print("  ", figures["end_to_end"])
    from cadence.guard import silence_count

    t = time.monotonic()
    figures["silence_count"] = {**silence_count().as_dict(), "seconds": time.monotonic() - t}
    print("Silence count", figures["silence_count"])
    if args.contacts > due:
        print(f"Tick with all {args.contacts:,} due")
        common.purge_queues("bulk", "welcome")
        make_all_due()
        figures[f"tick_{args.contacts}_due"] = claim_in_child(
            batch_size=args.batch_size, claim_size=args.claim_size, ticks=args.ticks
        )
        print("  ", figures[f"tick_{args.contacts}_due"])
        common.purge_queues("bulk", "welcome")
    print(json.dumps(figures, indent=2, default=str))
    return figures


if __name__ == "__main__":
    main()
