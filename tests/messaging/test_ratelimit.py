from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from messaging.ratelimit import SendRateLimiter


@pytest.fixture
def limiter_for():
    def make(rate: float) -> SendRateLimiter:
        return SendRateLimiter(rate=rate, key=f"test-{uuid.uuid4().hex}", url=settings.REDIS_URL)

    return make


def test_it_lets_the_rate_through_then_says_how_long_to_wait(limiter_for):
    limiter = limiter_for(5)
    assert [limiter.try_acquire() for _ in range(5)] == [0] * 5
    wait = limiter.try_acquire()
    assert 0 < wait <= 1.0


def test_a_refused_request_takes_no_slot(limiter_for):
    limiter = limiter_for(4)
    assert limiter.try_acquire(3) == 0
    assert limiter.try_acquire(2) > 0
    assert limiter.try_acquire(1) == 0, "the refused two were not counted"


def test_two_limiters_on_one_key_share_the_slots(limiter_for):
    first = limiter_for(3)
    second = SendRateLimiter(rate=3, key=first.key.removeprefix("ratelimit:"), url=settings.REDIS_URL)
    assert first.try_acquire(2) == 0
    assert second.try_acquire(2) > 0
    assert second.try_acquire(1) == 0


def test_a_chunk_larger_than_the_rate_is_refused_loudly(limiter_for):
    with pytest.raises(ValueError, match="cannot send 6"):
        limiter_for(5).try_acquire(6)


def test_less_than_one_a_second_widens_the_window(limiter_for):
    limiter = limiter_for(0.5)
    assert (limiter.per_window, limiter.window_ms) == (1, 2000)
    assert limiter.try_acquire() == 0
    assert 1.0 < limiter.try_acquire() <= 2.0
