"""The Celery app of `bench/chaos.py`: the project's app plus a tick and a guard on a short beat.

The tick and the guard call the cadence engine's services, named by environment variables so
the run can be pointed at whatever the engine calls them:

- CHAOS_CLAIM (default `cadence.tick:schedules_claim_due`)
- CHAOS_GUARD (default `cadence.guard:silence_repair`)
- CHAOS_GUARD_KWARGS: JSON of extra keyword arguments for the guard (for example short graces);
  an object `{"seconds": n}` becomes a timedelta, e.g. `{"stuck_after": {"seconds": 60}}`
- CHAOS_TICK_SECONDS (default 1), CHAOS_GUARD_SECONDS (default 5)
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Callable
from typing import Any

from config.celery import app

DEFAULT_CLAIM = "cadence.tick:schedules_claim_due"
DEFAULT_GUARD = "cadence.guard:silence_repair"


def resolve(spec: str) -> Callable[..., Any]:
    """Return the function named by "module:function"; raise ImportError/AttributeError when it is missing."""
    module, _sep, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def guard_kwargs(text: str) -> dict[str, Any]:
    """Return the guard's extra keyword arguments from JSON, `{"seconds": n}` read as a timedelta."""
    from datetime import timedelta

    parsed = json.loads(text or "{}")
    return {
        key: timedelta(seconds=value["seconds"]) if isinstance(value, dict) and set(value) == {"seconds"} else value
        for key, value in parsed.items()
    }


def claimed_count(result: Any) -> int:
    """Return how many schedules a claim took, whether it returns a number or an object with `claimed`."""
    return int(getattr(result, "claimed", result) or 0)


def call_with_known_kwargs(function: Callable[..., Any], **kwargs: Any) -> Any:
    """Call `function` with those of `kwargs` its signature accepts."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return function(**kwargs)
    return function(**{k: v for k, v in kwargs.items() if k in parameters})


@app.task(name="bench.chaos.tick", ignore_result=True)
def tick() -> None:
    from django.utils import timezone

    from cadence import heartbeat

    claim = resolve(os.environ.get("CHAOS_CLAIM", DEFAULT_CLAIM))
    for _ in range(int(os.environ.get("CHAOS_TICK_ROUNDS", "20"))):
        if not claimed_count(call_with_known_kwargs(claim, now=timezone.now())):
            break
    heartbeat.tick_record()


@app.task(name="bench.chaos.guard", ignore_result=True)
def guard() -> None:
    from django.utils import timezone

    repair = resolve(os.environ.get("CHAOS_GUARD", DEFAULT_GUARD))
    call_with_known_kwargs(repair, now=timezone.now(), **guard_kwargs(os.environ.get("CHAOS_GUARD_KWARGS", "")))


app.conf.beat_schedule = {
    "chaos-tick": {"task": "bench.chaos.tick", "schedule": float(os.environ.get("CHAOS_TICK_SECONDS", "1"))},
    "chaos-guard": {"task": "bench.chaos.guard", "schedule": float(os.environ.get("CHAOS_GUARD_SECONDS", "5"))},
    # As in production: beat asks for the stored ESP posts to be processed (a lost trigger delays, never loses).
    "event-posts-process": {"task": "messaging.tasks.event_posts_process", "schedule": 10.0},
}
app.conf.task_routes = {**app.conf.task_routes, "bench.chaos.*": {"queue": "default"}}
