"""An ESP stand-in for tests that run real worker processes.

anymail's test backend, plus: answers scripted in a Redis list (an HTTP status to fail with, or
"ok"), and every call recorded in another Redis list with its time, process and recipients, so the
test process sees what the workers handed to the "ESP".
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from django.conf import settings

SCRIPT_KEY = "test-esp:script"
CALLS_KEY = "test-esp:calls"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


class EmailBackend(AnymailTestBackend):
    def post_to_esp(self, payload: Any, message: Any) -> Any:
        connection = _redis()
        answer = connection.lpop(SCRIPT_KEY)
        status = int(answer) if isinstance(answer, bytes) and answer != b"ok" else None
        call = {"at": time.time(), "pid": os.getpid(), "to": list(payload.recipient_emails), "status": status or 200}
        connection.rpush(CALLS_KEY, json.dumps(call))
        if status is not None:
            raise AnymailAPIError(f"scripted ESP answer {status}", status_code=status)
        return super().post_to_esp(payload, message)


def script(*answers: int | str) -> None:
    """Queue the ESP's next answers (an HTTP status, or "ok")."""
    connection = _redis()
    connection.delete(SCRIPT_KEY, CALLS_KEY)
    if answers:
        connection.rpush(SCRIPT_KEY, *[str(a) for a in answers])


def calls() -> list[dict[str, Any]]:
    """Return every call the workers made to the ESP, oldest first."""
    return [json.loads(raw) for raw in _redis().lrange(CALLS_KEY, 0, -1)]
