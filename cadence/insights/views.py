"""The marketers' dashboard page in the admin (its figures are cadence/insights/dashboard.py)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from cadence.insights.dashboard import MonthRange, dashboard_rows, dashboard_stats_cached


@permission_required("cadence.view_dashboard", raise_exception=True)
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The dashboard page; figures are cached for DASHBOARD_CACHE_SECONDS (?refresh=1 recomputes)."""
    now = timezone.now()
    months = MonthRange.from_query(request.GET, now)
    stats = dashboard_stats_cached(now=now, months=months, refresh=bool(request.GET.get("refresh")))
    context = {
        **admin.site.each_context(request),
        "title": _("Marketing dashboard"),
        **dashboard_rows(stats, months),
    }
    return TemplateResponse(request, "admin/cadence/dashboard.html", context)
