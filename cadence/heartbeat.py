"""The tick's heartbeat: the tick writes when it last ran; probes, metrics and the ops page read it.

The one place that knows the Redis key (`TICK_KEY`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.utils import timezone

# Set by the tick to the Unix time it ran (a float, as text), no expiry.
TICK_KEY = "cadence:last_tick"
REDIS_TIMEOUT = 1.0


@lru_cache(maxsize=8)
def redis_client(url: str) -> redis.Redis:
    """Return a client for `url` with short timeouts, so a dead Redis costs a second, not a minute."""
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)


def tick_record(*, now: datetime | None = None) -> None:
    """Remember that the tick ran at `now` (called by the tick on every run)."""
    moment = now or timezone.now()
    redis_client(settings.REDIS_URL).set(TICK_KEY, repr(moment.timestamp()))


def last_tick_at() -> datetime | None:
    """Return when the tick last ran, or None when it never did. Raise redis.RedisError when Redis is down."""
    value = redis_client(settings.REDIS_URL).get(TICK_KEY)
    if value is None:
        return None
    return datetime.fromtimestamp(float(value), tz=UTC)
