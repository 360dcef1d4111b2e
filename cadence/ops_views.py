"""/probes, /metrics and the ops page in the admin."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import RedisError

from cadence import metrics, ops, probes
from cadence.sending import delivery_enqueue
from cadence.services import delivery_retry_refusal
from messaging.models import Delivery, SendBrake
from messaging.services import delivery_retry


@never_cache
@require_GET
def probes_view(request: HttpRequest) -> JsonResponse:
    """Return each service probe's result as JSON: 200 when all pass, 503 when any fails."""
    results = probes.run_checks()
    passing = all(result.ok for result in results.values())
    body = {"status": "ok" if passing else "failing", "checks": {n: r.as_dict() for n, r in results.items()}}
    return JsonResponse(body, status=200 if passing else 503)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Return the Prometheus exposition to a request bearing METRICS_TOKEN; 403 to anyone else."""
    token = settings.METRICS_TOKEN
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)


def _chart(hours: list[tuple[datetime, int]], *, width: int = 720, height: int = 160) -> dict[str, Any]:
    """Return the geometry of an SVG bar chart of sends per hour (drawn by the template)."""
    top = max((n for _hour, n in hours), default=0) or 1
    step = width / max(len(hours), 1)
    bars = []
    for i, (hour, n) in enumerate(hours):
        bar_height = round(n / top * (height - 20), 1)
        bars.append(
            {
                "x": round(i * step, 1),
                "y": round(height - bar_height, 1),
                "width": round(max(step - 2, 1), 1),
                "height": bar_height,
                "count": n,
                "hour": hour,
                "label": hour.hour % 6 == 0,
            }
        )
    return {"bars": bars, "width": width, "height": height, "top": top, "total": sum(n for _h, n in hours)}


def _safe(read: Any, default: Any) -> tuple[Any, bool]:
    try:
        return read(), True
    except (RedisError, OSError, DatabaseError):
        return default, False


@never_cache
def ops_page(request: HttpRequest) -> TemplateResponse:
    """Show the ops figures, the recent failures and the sends per hour of the last 48 hours."""
    now = timezone.now()
    depths, redis_ok = _safe(ops.queue_depths, {})
    tick_age, _tick_ok = _safe(ops.last_tick_age, None)
    counts = ops.deliveries_by_status_and_kind()
    by_status = {status: 0 for status in Delivery.Status.values}
    for (status, _kind), n in counts.items():
        by_status[status] = by_status.get(status, 0) + n
    overdue = ops.overdue_by_reason(now=now)
    context = {
        **admin.site.each_context(request),
        "title": _("Operations"),
        "probes": probes.run_checks(),
        "queues": depths,
        "redis_ok": redis_ok,
        "unacked": _safe(ops.unacked_count, None)[0],
        "tick_age": tick_age,
        "tick_lag": ops.tick_lag(now=now),
        "overdue": [
            (_("silent (no mail beyond interval and grace)"), overdue["silent"]),
            (_("welcome overdue"), overdue["welcome_overdue"]),
            (_("schedule overdue (tick behind)"), overdue["tick_behind"]),
            (_("confirmed without a schedule"), overdue["no_schedule"]),
        ],
        "overdue_total": sum(overdue.values()),
        "deliveries": [(Delivery.Status(s).label, n) for s, n in by_status.items()],
        "esp_errors": sorted(ops.esp_errors().items()),
        "latency": ops.welcome_latency(now=now),
        "webhook_events": sorted((ops.webhook_events(now=now) or {}).items()),
        "failures": ops.recent_failures(),
        "braked_sends": list(SendBrake.objects.filter(status=SendBrake.Status.HELD)[:50]),
        "chart": _chart(ops.sends_per_hour(now=now)),
        "can_retry": request.user.has_perm("messaging.change_delivery"),
    }
    return TemplateResponse(request, "cadence/admin/ops.html", context)


@require_POST
@permission_required("messaging.change_delivery", raise_exception=True)
def ops_retry(request: HttpRequest, delivery_id: str) -> HttpResponse:
    """Queue a failed delivery again and go back to the ops page; refuse one that was replaced or sent."""
    with transaction.atomic():
        refusal = delivery_retry_refusal(delivery_id=delivery_id)
        delivery = None if refusal else delivery_retry(delivery_id=delivery_id, enqueue=delivery_enqueue)
    if refusal == "replaced":
        messages.warning(request, _("That delivery was lost and has been replaced by a late one; nothing was queued."))
    elif refusal == "reported by the ESP":
        messages.warning(request, _("The ESP reported on that delivery, so it went out; nothing was queued."))
    elif delivery is None:
        messages.warning(request, _("That delivery was not failed (any more); nothing was queued."))
    else:
        messages.success(request, _("The delivery is queued again."))
    return redirect("admin-ops")
