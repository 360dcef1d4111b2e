from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from messaging.ratelimit import SendRateLimiter


@pytest.fixture
def limiter_for():
    def make(per_minute: int) -> SendRateLimiter:
        # A minute's window, so a slow machine cannot let a window pass between two calls.
        key = f"test-{uuid.uuid4().hex}"
        return SendRateLimiter(rate=per_minute / 60, key=key, url=settings.REDIS_URL, window_ms=60_000)

    return make


def test_it_lets_the_rate_through_then_says_how_long_to_wait(limiter_for):
    limiter = limiter_for(5)
    assert [limiter.try_acquire() for _ in range(5)] == [0] * 5
    wait = limiter.try_acquire()
    assert 0 < wait <= 60


def test_a_refused_request_takes_no_slot(limiter_for):
    limiter = limiter_for(4)
    assert limiter.try_acquire(3) == 0
    assert limiter.try_acquire(2) > 0
    assert limiter.try_acquire(1) == 0, "the refused two were not counted"


def test_two_limiters_on_one_key_share_the_slots(limiter_for):
    first = limiter_for(3)
    second = SendRateLimiter(
        rate=3 / 60, key=first.key.removeprefix("ratelimit:"), url=settings.REDIS_URL, window_ms=60_000
    )
    assert first.try_acquire(2) == 0
    assert second.try_acquire(2) > 0
    assert second.try_acquire(1) == 0


def test_a_chunk_larger_than_the_rate_is_refused_loudly(limiter_for):
    with pytest.raises(ValueError, match="cannot send 6"):
        limiter_for(5).try_acquire(6)


def test_the_window_is_a_second_or_longer_for_less_than_one_a_second():
    def window(rate: float) -> tuple[int, int]:
        limiter = SendRateLimiter(rate=rate, key="unused", url=settings.REDIS_URL)
        return limiter.per_window, limiter.window_ms

    assert window(5) == (5, 1000)
    assert window(12.5) == (12, 1000)
    assert window(0.5) == (1, 2000)
