"""Processing the stored ESP posts in batches (the door is messaging/webhooks.py).

A batch is one transaction: claim up to EVENT_INTAKE_BATCH_POSTS new posts (`SELECT … FOR UPDATE
SKIP LOCKED`, so processors run side by side), parse each with anymail's own parser for its ESP,
record all their events at once (messaging.feedback), and mark each post processed, or quarantined
with the error when it cannot be parsed. A worker killed in the middle commits nothing: the posts
are new again and the next run takes them. A batch that fails as a whole is taken again one post
at a time, each in its own savepoint, so one bad post never holds back the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from anymail import urls as anymail_urls
from anymail.signals import AnymailTrackingEvent, inbound
from anymail.webhooks.base import AnymailCoreWebhookView
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from messaging.bulk_sql import values_cte
from messaging.feedback import TrackedEvent, delivery_events_record
from messaging.models import DeliveryEvent, EventPost
from messaging.webhooks import esp_key, request_from_post

logger = logging.getLogger(__name__)


def _views() -> dict[tuple[str, str], tuple[type[AnymailCoreWebhookView], dict[str, Any]]]:
    """Return anymail's view class (and init kwargs) for each (ESP, kind) of its URLs."""
    views: dict[tuple[str, str], tuple[type[AnymailCoreWebhookView], dict[str, Any]]] = {}
    for pattern in anymail_urls.urlpatterns:
        view_class = getattr(getattr(pattern, "callback", None), "view_class", None)
        if view_class is None:
            continue
        route = str(pattern.pattern).lstrip("^")
        esp = esp_key(route.split("/", 1)[0])
        kind = EventPost.Kind.INBOUND if "inbound" in route else EventPost.Kind.TRACKING
        views.setdefault((esp, kind), (view_class, getattr(pattern.callback, "view_initkwargs", {})))
    return views


VIEWS = _views()


@dataclass
class BatchResult:
    posts: int = 0
    processed: int = 0
    quarantined: int = 0
    events: int = 0
    recorded: int = 0
    errors: list[str] = field(default_factory=list)


def post_parse(post: EventPost) -> tuple[str, list[Any]]:
    """Return the ESP's name as anymail gives it and the events anymail's parser makes of the stored post.

    An Amazon SNS SubscriptionConfirmation is confirmed here, by anymail (boto3, in the topic's region).
    """
    view_class, initkwargs = VIEWS[(post.esp, post.kind)]
    view: Any = view_class(**initkwargs)
    request = request_from_post(post.meta, bytes(post.body))
    return str(view.esp_name), list(view.parse_events(request))


def _apply(posts: list[EventPost], result: BatchResult) -> None:
    """Parse the posts, record their events in one go and mark the posts; quarantine what does not parse."""
    now = timezone.now()
    tracked: list[TrackedEvent] = []
    counts: dict[int, int] = {}
    for post in posts:
        try:
            esp_name, events = post_parse(post)
        except Exception as error:  # whatever a parser raises, the post is kept and shown
            post.state, post.error = EventPost.State.QUARANTINED, f"{type(error).__name__}: {error}"[:2000]
            continue
        counts[post.pk] = len(events)
        for event in events:
            if isinstance(event, AnymailTrackingEvent):
                tracked.append(TrackedEvent(esp_name=esp_name, esp=post.esp, event=event))
            elif settings.WEBHOOK_INBOUND:
                inbound.send(sender=EventPost, event=event, esp_name=esp_name)
        post.state, post.events = EventPost.State.PROCESSED, len(events)
    result.recorded += delivery_events_record(events=tracked)
    result.events += len(tracked)
    for post in posts:
        post.processed_at = now
        if post.state == EventPost.State.QUARANTINED:
            result.quarantined += 1
            logger.error("ESP post quarantined", extra={"esp": post.esp, "post_id": post.pk, "error": post.error})
        else:
            result.processed += 1
    _mark(posts)


def _mark(posts: list[EventPost]) -> None:
    """Write the posts' state, event count, processing time and error in one statement."""
    columns = ["id", "state", "events", "processed_at", "error"]
    cte, params = values_cte(EventPost, columns, [[getattr(post, column) for column in columns] for post in posts])
    table = connection.ops.quote_name(EventPost._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{cte} UPDATE {table} SET state = v.state, events = v.events, processed_at = v.processed_at, "
            f"error = v.error FROM v WHERE {table}.id = v.id",
            params,
        )


def event_posts_process_batch(*, limit: int | None = None) -> BatchResult:
    """Process one batch of stored posts, oldest first. Return what it did (posts 0: nothing was waiting)."""
    result = BatchResult()
    with transaction.atomic():
        posts = list(
            EventPost.objects.select_for_update(skip_locked=True)
            .filter(state=EventPost.State.NEW)
            .order_by("id")[: limit or settings.EVENT_INTAKE_BATCH_POSTS]
        )
        result.posts = len(posts)
        if not posts:
            return result
        try:
            with transaction.atomic():
                _apply(posts, result)
        except Exception:
            logger.exception("ESP event batch failed; taking its posts one at a time")
            result = BatchResult(posts=len(posts))
            for post in posts:
                post.state, post.error = EventPost.State.NEW, ""
                try:
                    with transaction.atomic():
                        _apply([post], result)
                except Exception as error:
                    post.state, post.error = EventPost.State.QUARANTINED, f"{type(error).__name__}: {error}"[:2000]
                    post.processed_at = timezone.now()
                    EventPost.objects.filter(pk=post.pk).update(
                        state=post.state, error=post.error, processed_at=post.processed_at
                    )
                    result.quarantined += 1
    return result


def event_posts_process(*, max_seconds: float | None = None) -> dict[str, int]:
    """Process batches until none is waiting or `max_seconds` have passed. Return the totals."""
    deadline = time.monotonic() + (settings.EVENT_INTAKE_MAX_SECONDS if max_seconds is None else max_seconds)
    totals = {"posts": 0, "processed": 0, "quarantined": 0, "events": 0, "recorded": 0}
    while True:
        result = event_posts_process_batch()
        for key in totals:
            totals[key] += getattr(result, key)
        if result.posts == 0 or time.monotonic() >= deadline:
            return totals


@dataclass(frozen=True)
class IntakeFigures:
    lag_seconds: float  # age of the oldest unprocessed post (0 when none waits)
    waiting: int  # posts not processed yet
    quarantined: int  # posts that could not be parsed, kept
    quarantined_recent: int  # of those, received in the last 24 hours
    accepted_total: int  # posts ever taken (the sequence: monotonic, whatever retention removes)
    events_total: int  # ESP events ever recorded (the same)


def intake_figures(*, now: Any = None) -> IntakeFigures:
    """Return what ops watch of the intake, read with indexed queries only."""
    now = now or timezone.now()
    waiting = EventPost.objects.filter(state=EventPost.State.NEW)
    oldest = waiting.order_by("id").values_list("received_at", flat=True).first()
    quarantined = EventPost.objects.filter(state=EventPost.State.QUARANTINED)
    return IntakeFigures(
        lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        waiting=waiting.count(),
        quarantined=quarantined.count(),
        quarantined_recent=quarantined.filter(received_at__gte=now - timedelta(hours=24)).count(),
        accepted_total=EventPost.objects.aggregate(last=Max("id"))["last"] or 0,
        events_total=DeliveryEvent.objects.aggregate(last=Max("id"))["last"] or 0,
    )
