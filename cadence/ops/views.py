"""/metrics and the ops page in the admin (what the page shows is cadence/ops/overview.py)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cadence.enqueue import delivery_enqueue
from cadence.guard import delivery_retry_refusal
from cadence.ops import metrics
from cadence.ops.overview import ops_overview
from config.csp import csp_nonce, strict_admin_policy
from messaging.services import delivery_retry


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Return the Prometheus exposition to a request bearing METRICS_TOKEN; 403 to anyone else."""
    token = settings.METRICS_TOKEN
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    from cadence.ops.http_metrics import http_exposition

    body = generate_latest(metrics.registry()) + http_exposition()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@never_cache
@permission_required("cadence.view_ops", raise_exception=True)
@strict_admin_policy
def ops_page(request: HttpRequest) -> TemplateResponse:
    """Open with one verdict (does the promise hold, by which thresholds), then the figures behind it."""
    nonce = csp_nonce(request)
    context = {
        **admin.site.each_context(request),
        "title": _("Operations"),
        "csp_nonce": nonce,
        **ops_overview(now=timezone.now(), nonce=nonce),
        "can_retry": request.user.has_perm("messaging.change_delivery"),
    }
    return TemplateResponse(request, "cadence/admin/ops.html", context)


@require_POST
@permission_required(["cadence.view_ops", "messaging.change_delivery"], raise_exception=True)
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
