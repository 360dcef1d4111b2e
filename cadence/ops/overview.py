"""What the ops page shows: one verdict (does the promise hold, by which thresholds) and the figures behind it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.urls import reverse
from django.utils.translation import gettext as _
from django_celery_beat.models import PeriodicTask
from kombu.exceptions import KombuError
from redis import RedisError

from cadence.insights.charts import bar_chart
from cadence.kinds import Kind
from cadence.ops import figures as ops
from cadence.ops import probes
from config.celery import app as celery_app
from messaging.intake import intake_figures
from messaging.models import Delivery, SendBrake

# The beat entry of the silence guard (config.settings.CELERY_BEAT_SCHEDULE); it runs every 5 minutes.
GUARD_TASK = "cadence-silence-guard"
GUARD_MAX_AGE = 15 * 60
# Confirmation to welcome sent, 95th percentile, in seconds.
WELCOME_P95_TARGET = 60


def sends_chart(hours: list[tuple[datetime, int]], *, nonce: str = "") -> dict[str, Any]:
    """Return the bar chart of mails sent per hour (UTC), its total and the hours that had any, for the ops page."""
    total = sum(n for _hour, n in hours)
    stamp = "%Y-%m-%d %H:00"
    context: dict[str, Any] = {"total": total, "busy_hours": [(hour, n) for hour, n in hours if n]}
    if not hours:
        return {**context, "svg": ""}
    busiest, most = max(hours, key=lambda row: row[1])
    description = _("From %(first)s to %(last)s UTC, %(total)d mails in all.") % {
        "first": hours[0][0].astimezone(UTC).strftime(stamp),
        "last": hours[-1][0].astimezone(UTC).strftime(stamp),
        "total": total,
    }
    if most:
        description += " " + _("The busiest hour, %(hour)s UTC, had %(n)d.") % {
            "hour": busiest.astimezone(UTC).strftime(stamp),
            "n": most,
        }
    svg = bar_chart(
        [hour.astimezone(UTC).strftime("%H:00") for hour, _n in hours],
        [(_("mails sent"), [n for _hour, n in hours])],
        title=_("Mails sent per hour, last %(n)d hours (UTC)") % {"n": len(hours)},
        description=description,
        label_every=6,
        tooltip_labels=[hour.astimezone(UTC).strftime(stamp) + " UTC" for hour, _n in hours],
        nonce=nonce,
    )
    return {**context, "svg": svg}


@dataclass(frozen=True)
class Condition:
    """One condition of the promise, with its threshold as a marketer or ops person reads it."""

    label: str
    holds: bool
    value: str
    url: str = ""


def welcome_latency_percentiles(*, now: datetime) -> dict[str, float] | None:
    """Return p50/p95/p99 of confirmation -> welcome sent (seconds) over the last 24 hours, None without any.

    The same rows as the latency histogram of /metrics (cadence.ops.figures.welcome_latency): at most the latest 10,000.
    """
    rows = (
        Delivery.objects.filter(
            kind=Kind.WELCOME,
            queue=Delivery.Queue.WELCOME,  # the first welcome; the series' later steps wait days by design
            status=Delivery.Status.SENT,
            sent_at__gte=now - ops.WELCOME_LATENCY_WINDOW,
            contact__confirmed_at__isnull=False,
        )
        .order_by("-sent_at")
        .values_list("sent_at", "contact__confirmed_at")[: ops.WELCOME_LATENCY_MAX_ROWS]
    )
    seconds = sorted(max(0.0, (sent - confirmed).total_seconds()) for sent, confirmed in rows if sent and confirmed)
    if not seconds:
        return None
    if len(seconds) == 1:
        return {"p50": seconds[0], "p95": seconds[0], "p99": seconds[0], "count": 1}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "count": len(seconds)}


CONSUMERS_CACHE_KEY = "ops:consumers-per-queue"


def consumers_per_queue() -> dict[str, int] | None:
    """Return how many workers consume each configured queue, None when no worker answered in time.

    The answer comes from a broadcast that waits up to PROBE_WORKER_TIMEOUT; it is kept for
    OPS_CONSUMERS_CACHE_SECONDS in the cache, so a page reloaded by several people costs one broadcast.
    """
    cached = cache.get(CONSUMERS_CACHE_KEY)
    if cached is not None:
        return cached.get("counts")
    counts = _broadcast_consumers_per_queue()
    cache.set(CONSUMERS_CACHE_KEY, {"counts": counts}, settings.OPS_CONSUMERS_CACHE_SECONDS)
    return counts


def _broadcast_consumers_per_queue() -> dict[str, int] | None:
    try:
        replies = celery_app.control.inspect(timeout=settings.PROBE_WORKER_TIMEOUT).active_queues() or {}
    except (OSError, KombuError, RedisError):
        return None
    if not replies:
        return None
    counts = dict.fromkeys(ops.queue_names(), 0)
    for queues in replies.values():
        for queue in queues or []:
            counts[queue["name"]] = counts.get(queue["name"], 0) + 1
    return counts


def beat_run_in_time(name: str, *, now: datetime, limit: float) -> tuple[float | None, bool]:
    """Return the seconds since beat last started `name` (None: never) and whether that is in time: within
    `limit`, or never yet while beat wrote the entry less than `limit` ago (a beat that just started has
    not reached the task's first run: a fresh start is not a broken promise)."""
    row = PeriodicTask.objects.filter(name=name).values("last_run_at", "date_changed").first()
    if row is None:
        return None, False
    age = _age(row["last_run_at"], now)
    if age is not None:
        return age, age <= limit
    since = _age(row["date_changed"], now)
    return None, since is not None and since <= limit


def _age(at: datetime | None, now: datetime) -> float | None:
    return None if at is None else max(0.0, (now - at).total_seconds())


def _safe(read: Any, default: Any) -> tuple[Any, bool]:
    try:
        return read(), True
    except (RedisError, OSError, DatabaseError):
        return default, False


def ops_overview(*, now: datetime, nonce: str = "") -> dict[str, Any]:
    """Return the ops page's verdict, the conditions behind it and the figures, read at `now`.

    A part whose store does not answer (Redis, the database) shows as unknown instead of failing the page.
    """
    depths, redis_ok = _safe(ops.queue_depths, {})
    tick_age, _tick_ok = _safe(ops.last_tick_age, None)
    consumers = consumers_per_queue()
    counts = ops.deliveries_by_status_and_kind()
    by_status = {status: 0 for status in Delivery.Status.values}
    for (status, _kind), n in counts.items():
        by_status[status] = by_status.get(status, 0) + n
    overdue = ops.overdue_by_reason(now=now)
    health = probes.run_checks()
    guard_age, guard_in_time = beat_run_in_time(GUARD_TASK, now=now, limit=GUARD_MAX_AGE)
    percentiles = welcome_latency_percentiles(now=now)
    breaches = ops.marketing_interval_breaches(now=now)
    contacts = reverse("admin:preferences_contact_changelist")
    schedules = reverse("admin:cadence_schedule_changelist")
    grace_minutes = settings.OPS_OVERDUE_GRACE // 60
    intake = intake_figures(now=now)
    conditions = [
        Condition(_("nobody silent (no marketing mail beyond interval plus grace)"), overdue["silent"] == 0,
                  str(overdue["silent"]), f"{contacts}?silence=silent"),
        Condition(_("every welcome sent within 10 minutes of confirmation"), overdue["welcome_overdue"] == 0,
                  str(overdue["welcome_overdue"]), f"{contacts}?silence=welcome_overdue"),
        Condition(_("no schedule due for more than %(n)d minutes") % {"n": grace_minutes},
                  overdue["tick_behind"] == 0, str(overdue["tick_behind"]), f"{schedules}?silence=tick_behind"),
        Condition(_("every confirmed subscriber has a schedule (after %(n)d minutes)") % {"n": grace_minutes},
                  overdue["no_schedule"] == 0, str(overdue["no_schedule"]), f"{contacts}?silence=no_schedule"),
        Condition(_("nobody got two marketing mails inside one interval (last 7 days, welcome series aside)"),
                  breaches == 0, str(breaches)),
        Condition(_("the tick ran in the last %(n)d seconds") % {"n": settings.PROBE_TICK_MAX_AGE},
                  tick_age is not None and tick_age <= settings.PROBE_TICK_MAX_AGE, _seconds_ago(tick_age)),
        Condition(_("the silence guard ran in the last %(n)d minutes") % {"n": GUARD_MAX_AGE // 60},
                  guard_in_time,
                  _seconds_ago(guard_age) if guard_age is not None or not guard_in_time else _("not yet due")),
        Condition(_("welcome p95 under %(n)d seconds") % {"n": WELCOME_P95_TARGET},
                  percentiles is None or percentiles["p95"] <= WELCOME_P95_TARGET,
                  "-" if percentiles is None else f"{percentiles['p95']:.1f} s"),
        Condition(_("ESP events processed within %(n)d seconds") % {"n": settings.OPS_EVENT_INTAKE_LAG_MAX},
                  intake.lag_seconds <= settings.OPS_EVENT_INTAKE_LAG_MAX, f"{intake.lag_seconds:.0f} s"),
        Condition(_("no ESP post quarantined in the last 24 hours"), intake.quarantined_recent == 0,
                  str(intake.quarantined_recent), reverse("admin:messaging_eventpost_changelist") + "?state=quarantined"),
        Condition(_("database, broker and a worker answer"), all(check.ok for check in health.values()),
                  ", ".join(name for name, check in health.items() if not check.ok) or _("all answer")),
    ]  # fmt: skip
    return {
        "verdict": all(condition.holds for condition in conditions),
        "conditions": conditions,
        "health": health,
        "queues": [
            (name, n, None if consumers is None else consumers.get(name, 0)) for name, n in (depths or {}).items()
        ],
        "consumers_known": consumers is not None,
        "probes": [(probes.LABELS.get(name, name), check) for name, check in health.items()],
        "redis_ok": redis_ok,
        "unacked": _safe(ops.unacked_count, None)[0],
        "tick_age": tick_age,
        "guard_age": guard_age,
        "tick_lag": ops.tick_lag(now=now),
        "deliveries": [(Delivery.Status(s).label, n) for s, n in by_status.items()],
        "esp_errors": sorted(ops.esp_errors().items()),
        "latency": ops.welcome_latency(now=now),
        "percentiles": percentiles,
        "webhook_events": sorted((ops.webhook_events(now=now) or {}).items()),
        "intake": intake,
        "failures": ops.recent_failures(),
        "braked_sends": list(SendBrake.objects.filter(status=SendBrake.Status.HELD)[:50]),
        "chart": sends_chart(ops.sends_per_hour(now=now), nonce=nonce),
    }


def _seconds_ago(age: float | None) -> str:
    return _("never") if age is None else _("%(n)d s ago") % {"n": age}
