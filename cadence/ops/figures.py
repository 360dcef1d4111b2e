"""The figures ops looks at: queues, deliveries, overdue subscribers, tick age, latency.

Read-only, computed at the moment they are asked for (a scrape, /probes, the ops page), each
with one bounded query. The tick's heartbeat (when it last ran) is kept by `cadence.heartbeat`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import TruncHour
from django.utils import timezone
from kombu.transport.redis import PRIORITY_STEPS, Channel

from cadence import schedules
from cadence.guard import silence_count
from cadence.heartbeat import last_tick_at, redis_client
from cadence.kinds import Kind
from cadence.models import Schedule
from messaging.models import Delivery
from preferences.models import Contact, marketable_q

# Seconds, confirm -> welcome sent.
WELCOME_LATENCY_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
WELCOME_LATENCY_WINDOW = timedelta(hours=24)
WELCOME_LATENCY_MAX_ROWS = 10_000


# TICK


def last_tick_age(*, now: datetime | None = None) -> float | None:
    """Return the seconds since the tick last ran, or None when it never did."""
    at = last_tick_at()
    return None if at is None else max(0.0, ((now or timezone.now()) - at).total_seconds())


def tick_lag(*, now: datetime | None = None) -> float:
    """Return how long the oldest due schedule has been waiting, in seconds (0 when none is due)."""
    now = now or timezone.now()
    oldest = Schedule.objects.filter(is_active=True, next_due_at__lte=now).aggregate(oldest=Min("next_due_at"))[
        "oldest"
    ]
    return 0.0 if oldest is None else (now - oldest).total_seconds()


# QUEUES


def queue_names() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def priority_keys(queue: str) -> list[str]:
    """Return the Redis list keys kombu uses for `queue`, one per priority step (step 0 is the bare name)."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    steps = options.get("priority_steps", PRIORITY_STEPS)
    sep = options.get("sep", Channel.sep)
    prefix = options.get("global_keyprefix", "")
    return [f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}" for step in steps]


def broker_is_redis() -> bool:
    return urlsplit(settings.CELERY_BROKER_URL).scheme in {"redis", "rediss", "redis+socket"}


def queue_depths() -> dict[str, int]:
    """Return the messages waiting per queue: Redis lists (priority lists included) or RabbitMQ's ready counts."""
    if urlsplit(settings.CELERY_BROKER_URL).scheme in {"amqp", "amqps", "pyamqp"}:
        from cadence.ops.amqp_depths import amqp_queue_depths

        return amqp_queue_depths(settings.CELERY_BROKER_URL, queue_names())
    if not broker_is_redis():
        return {}
    client = redis_client(settings.CELERY_BROKER_URL)
    names = queue_names()
    pipe = client.pipeline(transaction=False)
    for name in names:
        for key in priority_keys(name):
            pipe.llen(key)
    sizes = iter(pipe.execute())
    steps = len(priority_keys(names[0])) if names else 0
    return {name: sum(next(sizes) for _ in range(steps)) for name in names}


def unacked_count() -> int:
    """Return the messages a worker holds but has not acknowledged (kombu's `unacked` hash)."""
    if not broker_is_redis():
        return 0
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return int(redis_client(settings.CELERY_BROKER_URL).hlen(f"{prefix}unacked"))


# DELIVERIES


def deliveries_by_status_and_kind() -> dict[tuple[str, str], int]:
    rows = Delivery.objects.order_by().values_list("status", "kind").annotate(n=Count("pk"))
    return {(status, kind): n for status, kind, n in rows}


def esp_errors() -> dict[str, int]:
    """Return failed deliveries (and queued ones waiting after a transient ESP error) by error class."""
    shown = [
        Delivery.ErrorClass.RECIPIENT_REFUSED,
        Delivery.ErrorClass.PERMANENT,
        Delivery.ErrorClass.RETRIES_EXHAUSTED,
        Delivery.ErrorClass.RENDER_ERROR,
    ]
    bucket = Case(
        When(status=Delivery.Status.QUEUED, then=Value("transient")),
        When(error_class__in=shown, then="error_class"),
        default=Value("other"),
        output_field=CharField(),
    )
    failing = Q(status=Delivery.Status.FAILED) | Q(
        status=Delivery.Status.QUEUED, error_class=Delivery.ErrorClass.TRANSIENT
    )
    rows = Delivery.objects.filter(failing).order_by().annotate(bucket=bucket)
    return dict(rows.values_list("bucket").annotate(n=Count("pk")).values_list("bucket", "n"))


def recent_failures(*, limit: int = 20) -> list[Delivery]:
    return list(Delivery.objects.filter(status=Delivery.Status.FAILED).order_by("-updated_at")[:limit])


def sends_per_hour(*, now: datetime | None = None, hours: int = 48) -> list[tuple[datetime, int]]:
    """Return (hour, mails sent) for the last `hours` hours, oldest first, zero-filled."""
    now = now or timezone.now()
    last = now.replace(minute=0, second=0, microsecond=0)
    first = last - timedelta(hours=hours - 1)
    rows = (
        Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__gte=first)
        .annotate(hour=TruncHour("sent_at"))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    counts = {hour: n for hour, n in rows}
    return [(first + timedelta(hours=i), counts.get(first + timedelta(hours=i), 0)) for i in range(hours)]


def webhook_events(*, now: datetime | None = None) -> dict[tuple[str, str], int] | None:
    """Return ESP webhook events of the last 24 hours by (ESP, type), or None without a DeliveryEvent model."""
    from messaging import models as messaging_models

    event_model = getattr(messaging_models, "DeliveryEvent", None)
    if event_model is None:
        return None
    since = (now or timezone.now()) - timedelta(hours=24)
    rows = event_model.objects.filter(occurred_at__gte=since).order_by().values_list("esp_name", "type")
    return {(esp, kind): n for esp, kind, n in rows.annotate(n=Count("pk"))}


# THE PROMISE: NOBODY SILENT


def overdue_by_reason(*, now: datetime | None = None) -> dict[str, int]:
    """Return how many subscribers the promise currently fails, by reason.

    - `silent` and `welcome_overdue`: the silence guard's own counts (cadence.guard.silence_count),
      so ops, marketers and the guard speak of the same people;
    - `tick_behind`: owed mail, with an active schedule due longer ago than OPS_OVERDUE_GRACE (the tick
      is not keeping up);
    - `no_schedule`: owed mail and confirmed longer ago than that grace, without an active schedule.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=settings.OPS_OVERDUE_GRACE)
    owed = marketable_q(now)
    behind = Schedule.objects.filter(is_active=True, next_due_at__lt=now - grace).filter(
        marketable_q(now, via="contact__")
    )
    active_schedule = Schedule.objects.filter(contact=OuterRef("pk"), is_active=True)
    silence = silence_count(now=now)
    return {
        "silent": silence.silent,
        "welcome_overdue": silence.welcome_overdue,
        "tick_behind": behind.count(),
        "no_schedule": Contact.objects.filter(owed, confirmed_at__lt=now - grace)
        .exclude(Exists(active_schedule))
        .count(),
    }


# THE PROMISE: NEVER MORE THAN CHOSEN

INTERVAL_BREACH_WINDOW = timedelta(days=7)


def marketing_interval_breaches(*, now: datetime | None = None, window: timedelta = INTERVAL_BREACH_WINDOW) -> int:
    """Return how many people got two marketing mails inside one effective interval (expected 0): a marketing
    mail sent in the last `window`, other than a welcome step, with an earlier one less than the person's
    interval before it. One query, bounded by the window's sends (each looks back along the contact's
    own deliveries)."""
    now = now or timezone.now()
    interval = Case(
        *[
            When(contact__potential=potential, contact__frequency=frequency, then=Value(days))
            for potential, frequency, days in schedules.effective_intervals(schedules.cadence_policies())
        ],
        default=Value(timedelta(days=1)),
        output_field=DurationField(),
    )
    earlier = Delivery.objects.filter(
        contact=OuterRef("contact"),
        marketing=True,
        status=Delivery.Status.SENT,
        sent_at__lt=OuterRef("sent_at"),
        sent_at__gt=OuterRef("allowed_after"),
    )
    return (
        Delivery.objects.filter(marketing=True, status=Delivery.Status.SENT, sent_at__gte=now - window)
        .exclude(kind=Kind.WELCOME)
        .annotate(allowed_after=ExpressionWrapper(F("sent_at") - interval, output_field=DateTimeField()))
        .filter(Exists(earlier))
        .values("contact")
        .distinct()
        .count()
    )


# WELCOME LATENCY


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; last is +Inf
    total: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """Return Prometheus-style (upper bound, cumulative count) pairs, ending with +Inf."""
        pairs, running = [], 0
        for bound, n in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            running += n
            pairs.append((bound, running))
        return pairs


def welcome_latency(*, now: datetime | None = None) -> Histogram:
    """Return confirm -> welcome sent latencies of the last 24 hours (at most 10,000 most recent rows)."""
    now = now or timezone.now()
    histogram = Histogram(WELCOME_LATENCY_BUCKETS, [0] * (len(WELCOME_LATENCY_BUCKETS) + 1))
    rows = (
        Delivery.objects.filter(
            kind=Kind.WELCOME,
            queue=Delivery.Queue.WELCOME,  # the first welcome; the series' later steps wait days by design
            status=Delivery.Status.SENT,
            sent_at__gte=now - WELCOME_LATENCY_WINDOW,
            contact__confirmed_at__isnull=False,
        )
        .order_by("-sent_at")
        .values_list("sent_at", "contact__confirmed_at")[:WELCOME_LATENCY_MAX_ROWS]
    )
    for sent_at, confirmed_at in rows:
        if sent_at is None or confirmed_at is None:  # excluded by the filter; for the type checker
            continue
        seconds = max(0.0, (sent_at - confirmed_at).total_seconds())
        histogram.counts[bisect.bisect_left(WELCOME_LATENCY_BUCKETS, seconds)] += 1
        histogram.total += seconds
    return histogram
