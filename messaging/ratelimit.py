"""A send-rate limit for the whole ESP account, shared by every worker through Redis.

Celery's `rate_limit` counts per worker; ten workers would send ten times the rate. This is a
sliding-window log in one Redis sorted set, checked and filled by one Lua script (atomic), with
Redis's own clock, so workers on different machines agree.
"""

from __future__ import annotations

import time
import uuid
from functools import lru_cache

import redis
from django.conf import settings

# KEYS[1]: the window key. ARGV: limit per window, messages wanted, window in ms, a unique token.
# Returns 0 when the messages may go now (and records them), else the milliseconds to wait.
_ACQUIRE = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
if used + wanted <= limit then
  for i = 1, wanted do
    redis.call('ZADD', key, now, ARGV[4] .. ':' .. i)
  end
  redis.call('PEXPIRE', key, window)
  return 0
end
local oldest = redis.call('ZRANGE', key, used + wanted - limit - 1, used + wanted - limit - 1, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _script(url: str):  # type: ignore[no-untyped-def]
    return _client(url).register_script(_ACQUIRE)


class SendRateLimiter:
    """At most `rate` messages per second for one ESP account, across all processes."""

    def __init__(self, *, rate: float, key: str, url: str, window_ms: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.key = f"ratelimit:{key}"
        self.url = url
        # One second, or longer for less than one message a second (0.5/s: one per 2 s).
        self.window_ms = window_ms or (1000 if rate >= 1 else int(1000 / rate))
        self.per_window = max(1, int(rate * self.window_ms / 1000))

    def try_acquire(self, count: int = 1) -> float:
        """Take `count` slots if free and return 0, else return the seconds to wait; nothing is taken."""
        if count > self.per_window:
            raise ValueError(f"cannot send {count} at once under a limit of {self.per_window} per second")
        wait_ms = _script(self.url)(keys=[self.key], args=[self.per_window, count, self.window_ms, uuid.uuid4().hex])
        return int(wait_ms) / 1000

    def acquire(self, count: int = 1) -> float:
        """Block until `count` messages may go out. Return the seconds spent waiting."""
        waited = 0.0
        while True:
            wait = self.try_acquire(count)
            if not wait:
                return waited
            time.sleep(wait)
            waited += wait


def send_rate_limiter() -> SendRateLimiter | None:
    """Return the limiter for the configured ESP account, or None when ESP_MAX_SEND_RATE is 0."""
    if not settings.ESP_MAX_SEND_RATE:
        return None
    return SendRateLimiter(rate=settings.ESP_MAX_SEND_RATE, key=settings.ESP_RATE_LIMIT_KEY, url=settings.REDIS_URL)


def acquire_send_slots(count: int = 1) -> None:
    """Wait until `count` messages may be handed to the ESP (no wait when there is no limit)."""
    limiter = send_rate_limiter()
    if limiter is not None:
        limiter.acquire(count)


def max_chunk() -> int | None:
    """Return how many messages take their slots at once under the rate limit, or None without one.

    A tenth of the window's slots: a chunk's sends spread over the time its lanes take, so slots taken
    for a whole window at once could put a late send of one window into the next.
    """
    limiter = send_rate_limiter()
    return None if limiter is None else max(1, limiter.per_window // 10)
