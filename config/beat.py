"""One beat at a time: django-celery-beat's scheduler that sends only while it holds a lease in Redis.

A second beat (a rolling deploy, a copy started by mistake) idles behind the lease and takes over
within BEAT_LOCK_SECONDS when the first one stops or dies. The tasks beat starts are safe to run
twice (one mail per slot is kept by the database), so the lease saves work and noise; it also makes
"one beat" a fact instead of an instruction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Any

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# Set the lease to this beat's id unless another beat holds it; renew it when this beat does.
_HOLD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def lease_key() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'cadence')}:beat:lease"


class SingleBeatScheduler(DatabaseScheduler):
    """Send due tasks only while this beat holds the Redis lease; otherwise sleep and try again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lease_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holding = False
        self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        super().__init__(*args, **kwargs)

    def hold(self) -> bool:
        """Take or renew the lease; return whether this beat holds it (False when Redis does not answer)."""
        try:
            return bool(self._redis.eval(_HOLD, 1, lease_key(), self.lease_id, int(settings.BEAT_LOCK_SECONDS * 1000)))
        except (redis.RedisError, OSError) as exc:
            logger.warning("beat: Redis does not answer, so this beat sends nothing: %s", exc)
            return False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        renew_every = settings.BEAT_LOCK_SECONDS / 3
        held = self.hold()
        if held and not self.holding:
            logger.info("beat %s holds the lease and sends the schedule", self.lease_id)
            # What the previous holder ran is in the database: read it before sending anything.
            self._initial_read = True
            self._heap = None
        elif self.holding and not held:
            logger.warning("beat %s lost the lease: idle", self.lease_id)
        elif not held and not self.holding and not getattr(self, "_told_idle", False):
            logger.info("beat %s: another beat holds the lease, so this one idles", self.lease_id)
            self._told_idle = True
        self.holding = held
        if not held:
            return min(renew_every, self.max_interval)
        return min(super().tick(*args, **kwargs), renew_every)

    def close(self) -> None:
        super().close()
        if self.holding:  # the standby takes over at once rather than after the lease runs out
            with contextlib.suppress(redis.RedisError, OSError):
                self._redis.eval(_RELEASE, 1, lease_key(), self.lease_id)
