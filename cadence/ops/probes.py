"""The checks behind /probes: database, broker, tick age (beat alive) and a worker answering."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from celery import Celery
from django.conf import settings
from django.db import connection

from cadence import heartbeat
from cadence.ops import figures as ops
from config.celery import app as celery_app


@dataclass
class Check:
    ok: bool
    detail: str
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return Check(True, connection.vendor)


def check_broker() -> Check:
    if ops.broker_is_redis():
        heartbeat.redis_client(settings.CELERY_BROKER_URL).ping()
        return Check(True, "redis answers")
    with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=heartbeat.REDIS_TIMEOUT)
    return Check(True, "broker answers")


def check_tick() -> Check:
    age = ops.last_tick_age()
    if age is None:
        return Check(False, f"the tick never ran ({heartbeat.TICK_KEY} is not set)")
    limit = settings.PROBE_TICK_MAX_AGE
    return Check(age <= limit, f"last tick {age:.0f}s ago (limit {limit}s)")


@lru_cache(maxsize=4)
def _probe_app(broker_url: str) -> Celery:
    """Return a bare Celery app on `broker_url` for control pings.

    The project's app publishes control messages through its own producer pool, bound to the
    broker it was configured with at start, so it cannot be pointed at another broker per call.
    """
    probe = Celery("cadence-probes", broker=broker_url, set_as_current=False)
    probe.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    probe.conf.broker_connection_timeout = heartbeat.REDIS_TIMEOUT
    return probe


def check_worker() -> Check:
    timeout = settings.PROBE_WORKER_TIMEOUT
    # limit=1 returns as soon as one worker answers instead of waiting out the timeout.
    replies = _probe_app(settings.CELERY_BROKER_URL).control.ping(timeout=timeout, limit=1)
    if not replies:
        return Check(False, f"no worker answered a ping within {timeout}s")
    return Check(True, ", ".join(sorted(name for reply in replies for name in reply)))


CHECKS: dict[str, Callable[[], Check]] = {
    "database": check_database,
    "broker": check_broker,
    "tick": check_tick,
    "worker": check_worker,
}
# A worker cannot answer through a broker that is down; skip the ping rather than hang on it.
NEEDS_BROKER = frozenset({"worker"})


def run_checks(names: list[str] | None = None) -> dict[str, Check]:
    """Run the named checks (settings.PROBE_CHECKS by default) and return each one's result."""
    results: dict[str, Check] = {}
    for name in names if names is not None else settings.PROBE_CHECKS:
        if name not in CHECKS:
            results[name] = Check(False, "unknown check")
            continue
        if name in NEEDS_BROKER and "broker" in results and not results["broker"].ok:
            results[name] = Check(False, "skipped: the broker is down")
            continue
        started = time.monotonic()
        try:
            result = CHECKS[name]()
        except Exception as exc:  # any failure is the answer, not an error page
            result = Check(False, f"{type(exc).__name__}: {exc}")
        result.seconds = round(time.monotonic() - started, 3)
        results[name] = result
    return results
