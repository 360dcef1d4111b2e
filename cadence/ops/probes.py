"""Liveness and readiness: /healthz (the process answers), /readyz?role=... (what that role needs answers).

The checks: database, cache, broker, tick age (beat alive) and a worker answering (its ping kept for
PROBE_WORKER_CACHE_SECONDS, so probes and the ops page cost one broadcast per period, not one per call).
Anyone gets the status words; the details (exception text, host names) need the METRICS_TOKEN.
/probes is /readyz with every check of PROBE_CHECKS.
"""

from __future__ import annotations

import contextlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from celery import Celery
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
        return Check(True, _("redis answers"))
    with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=heartbeat.REDIS_TIMEOUT)
    return Check(True, _("broker answers"))


def check_tick() -> Check:
    age = ops.last_tick_age()
    if age is None:
        return Check(False, _("the tick never ran (%(key)s is not set)") % {"key": heartbeat.TICK_KEY})
    limit = settings.PROBE_TICK_MAX_AGE
    return Check(age <= limit, _("last tick %(age)ds ago (limit %(limit)ds)") % {"age": round(age), "limit": limit})


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
        return Check(False, _("no worker answered a ping within %(n)ss") % {"n": timeout})
    return Check(True, ", ".join(sorted(name for reply in replies for name in reply)))


def check_cache() -> Check:
    value = uuid.uuid4().hex
    cache.set(CACHE_PROBE_KEY, value, 30)
    if cache.get(CACHE_PROBE_KEY) != value:
        return Check(False, _("the cache did not return what was stored"))
    return Check(True, _("cache answers"))


CACHE_PROBE_KEY = "probes:cache"
WORKER_CACHE_KEY = "probes:worker"


def check_worker_cached() -> Check:
    """Return the worker ping's answer of the last PROBE_WORKER_CACHE_SECONDS, pinging when there is none.

    "Nobody answered" is kept too: a probe every second must not wait out the ping timeout each time.
    """
    try:
        kept = cache.get(WORKER_CACHE_KEY)
    except Exception:  # a cache that does not answer only costs the broadcast
        kept = None
    if kept is not None:
        return Check(**kept)
    result = check_worker()
    with contextlib.suppress(Exception):
        cache.set(WORKER_CACHE_KEY, result.as_dict(), settings.PROBE_WORKER_CACHE_SECONDS)
    return result


CHECKS: dict[str, Callable[[], Check]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "tick": check_tick,
    "worker": check_worker_cached,
}
# The checks' names for people (the ops page); /readyz keys them by the names above.
LABELS = {
    "database": gettext_lazy("database"),
    "cache": gettext_lazy("cache"),
    "broker": gettext_lazy("broker"),
    "tick": gettext_lazy("tick"),
    "worker": gettext_lazy("worker"),
}
# A worker cannot answer through a broker that is down; skip the ping rather than hang on it.
NEEDS_BROKER = frozenset({"worker"})


def run_checks(names: list[str] | None = None) -> dict[str, Check]:
    """Run the named checks (settings.PROBE_CHECKS by default) and return each one's result."""
    results: dict[str, Check] = {}
    for name in names if names is not None else settings.PROBE_CHECKS:
        if name not in CHECKS:
            results[name] = Check(False, _("unknown check"))
            continue
        if name in NEEDS_BROKER and "broker" in results and not results["broker"].ok:
            results[name] = Check(False, _("skipped: the broker is down"))
            continue
        started = time.monotonic()
        try:
            result = CHECKS[name]()
        except Exception as exc:  # any failure is the answer, not an error page
            result = Check(False, f"{type(exc).__name__}: {exc}")
        result.seconds = round(time.monotonic() - started, 3)
        results[name] = result
    return results


# What each role needs to do its work; "all" is settings.PROBE_CHECKS.
ROLES: dict[str, tuple[str, ...] | None] = {
    "web": ("database", "cache"),
    "worker": ("database", "broker", "worker"),
    "beat": ("database", "broker", "tick"),
    "all": None,
}


def has_metrics_token(request: HttpRequest) -> bool:
    """Return whether the request bears "Authorization: Bearer <METRICS_TOKEN>" (never, when it is unset)."""
    token = settings.METRICS_TOKEN
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: 200 whenever the process answers. It checks nothing else, so a database or Redis outage
    never has the orchestrator restart healthy web processes."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
@require_GET
def readyz(request: HttpRequest, default_role: str = "web") -> JsonResponse:
    """Readiness of a role (`?role=web|worker|beat|all`): 200 when its checks pass, 503 when one fails.

    Anyone gets "ok"/"failing" per check; each check's detail and time only with the metrics token.
    """
    role = request.GET.get("role", default_role)
    if role not in ROLES:
        return JsonResponse({"status": "unknown role", "roles": list(ROLES)}, status=400)
    names = ROLES[role]
    results = run_checks(list(names) if names is not None else None)
    passing = all(result.ok for result in results.values())
    if has_metrics_token(request):
        checks: dict[str, Any] = {name: result.as_dict() for name, result in results.items()}
    else:
        checks = {name: "ok" if result.ok else "failing" for name, result in results.items()}
    body = {"status": "ok" if passing else "failing", "role": role, "checks": checks}
    return JsonResponse(body, status=200 if passing else 503)
