"""Real Celery workers for the cadence tests: the shared launcher in tests/workers.py, with cadence's defaults."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests import workers
from tests.workers import kill

__all__ = ["kill", "purge", "wait_for", "worker"]

purge = workers.purge_queues


@contextmanager
def worker(name: str, *, queues: str = "bulk,welcome", **env: str) -> Iterator[subprocess.Popen]:
    """Run one worker (one prefork child) on the nurture and welcome queues until the block ends."""
    with workers.running_worker(queues=queues, name=name, concurrency=1, loglevel="WARNING", **env) as process:
        yield process


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    return workers.wait_for(predicate, timeout=timeout)
