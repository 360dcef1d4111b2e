"""Publishing a task from a person's request: at once, or not at all (the caller keeps the work for later).

Celery's default publish waits for the broker through connection retries (seconds when it is down): a
page that answers a person must neither hang nor answer differently because of it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from kombu.exceptions import OperationalError

from config.celery import app

logger = logging.getLogger(__name__)

# What publishing raises when the broker cannot be reached.
BROKER_ERRORS = (OperationalError, ConnectionError, OSError)


def publish_now_or_never(task: Task, args: tuple[Any, ...], *, queue: str) -> bool:
    """Publish `task(*args)` on `queue` with one connection attempt and no retry. Return whether it went.

    With `task_always_eager` (tests) the task runs here, as apply_async does.
    """
    try:
        with app.connection_for_write(transport_options={"max_retries": 0}) as connection:
            task.apply_async(args, queue=queue, retry=False, connection=connection)
    except BROKER_ERRORS:
        logger.warning("task %s not published: the broker is unreachable", task.name)
        return False
    return True
