"""The marketers' dashboard: lifecycle, potential, health, silence, prospects and conversions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from cadence.charts import bar_line_chart
from cadence.leaving import leaving_context, leaving_stats
from cadence.models import ContactHealth
from cadence.services import silence_count
from preferences.models import Contact, Conversion, Lifecycle

CACHE_KEY = "admin-dashboard-stats"


def _months(now: Any, count: int = 12) -> list[str]:
    year, month = now.year, now.month
    keys = []
    for _i in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(keys))


def _by_month(rows: Any, field: str = "month") -> dict[str, int]:
    return {row[field].strftime("%Y-%m"): row["n"] for row in rows if row[field] is not None}


def _rate(conversions: int, contacts: int) -> float:
    return 100.0 * conversions / contacts if contacts else 0.0


def dashboard_stats(now: Any = None) -> dict[str, Any]:
    """Return every figure of the dashboard (about a dozen aggregate queries, whatever the size)."""
    now = now or timezone.now()
    since = (now - timedelta(days=366)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    lifecycle = Contact.objects.aggregate(
        **{value: Count("pk", filter=Lifecycle.q(value)) for value in Lifecycle.values},
        confirmed=Count("pk", filter=Q(status=Contact.Status.CONFIRMED)),
    )
    potential = dict(Contact.objects.values_list("potential").annotate(n=Count("pk")).order_by())
    health = dict(ContactHealth.objects.values_list("state").annotate(n=Count("pk")).order_by())
    # The silence guard's own definitions, so the dashboard, the ops page and the guard agree.
    silence = silence_count(now=now)
    silent, welcome_overdue = silence.silent, silence.welcome_overdue
    signups = Contact.objects.filter(created_at__gte=since).annotate(month=TruncMonth("created_at"))
    signups_by_month = _by_month(signups.values("month").annotate(n=Count("pk")).order_by())
    prospects_by_month = _by_month(
        signups.filter(share_of_customer=0).values("month").annotate(n=Count("pk")).order_by()
    )
    conversions_by_month = _by_month(
        Conversion.objects.filter(converted_at__gte=since)
        .annotate(month=TruncMonth("converted_at"))
        .values("month")
        .annotate(n=Count("pk"))
        .order_by()
    )
    converted_by_signup_month = _by_month(
        Conversion.objects.filter(signed_up_at__gte=since)
        .annotate(month=TruncMonth("signed_up_at"))
        .values("month")
        .annotate(n=Count("pk"))
        .order_by()
    )
    contacts_by_source = dict(Contact.objects.values_list("source").annotate(n=Count("pk")).order_by("-n")[:20])
    conversions_by_source = dict(Conversion.objects.values_list("contact_source").annotate(n=Count("pk")).order_by())
    conversions_by_potential = dict(Conversion.objects.values_list("potential").annotate(n=Count("pk")).order_by())
    months = _months(now)
    return {
        "computed_at": now,
        "leaving": leaving_stats(since=since, months=months),
        "lifecycle": lifecycle,
        "potential": potential,
        "health": health,
        "silent": silent,
        "welcome_overdue": welcome_overdue,
        "months": months,
        "prospects_by_month": [prospects_by_month.get(m, 0) for m in months],
        "conversions_by_month": [conversions_by_month.get(m, 0) for m in months],
        "rate_by_source": [
            (source or "-", n, conversions_by_source.get(source, 0), _rate(conversions_by_source.get(source, 0), n))
            for source, n in contacts_by_source.items()
        ],
        "rate_by_potential": [
            (
                value,
                potential.get(value, 0),
                conversions_by_potential.get(value, 0),
                _rate(conversions_by_potential.get(value, 0), potential.get(value, 0)),
            )
            for value in Contact.Potential.values
        ],
        "rate_by_signup_month": [
            (
                m,
                signups_by_month.get(m, 0),
                converted_by_signup_month.get(m, 0),
                _rate(converted_by_signup_month.get(m, 0), signups_by_month.get(m, 0)),
            )
            for m in months
        ],
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The dashboard page; figures are cached for DASHBOARD_CACHE_SECONDS (?refresh=1 recomputes)."""
    stats = None if request.GET.get("refresh") else cache.get(CACHE_KEY)
    if stats is None:
        stats = dashboard_stats()
        cache.set(CACHE_KEY, stats, settings.DASHBOARD_CACHE_SECONDS)
    labels = {
        "lifecycle": dict(Lifecycle.choices),
        "potential": dict(Contact.Potential.choices),
        "health": dict(ContactHealth.State.choices),
    }
    context = {
        **admin.site.each_context(request),
        "title": _("Marketing dashboard"),
        "stats": stats,
        "lifecycle_rows": [(labels["lifecycle"][k], stats["lifecycle"].get(k, 0), k) for k in Lifecycle.values],
        "potential_rows": [(labels["potential"][k], stats["potential"].get(k, 0), k) for k in Contact.Potential.values],
        "health_rows": [(labels["health"][k], stats["health"].get(k, 0), k) for k in ContactHealth.State.values],
        "rate_by_potential": [(labels["potential"][k], *rest) for k, *rest in stats["rate_by_potential"]],
        "leaving": leaving_context(stats["leaving"]),
        "over_time_chart": bar_line_chart(
            stats["months"],
            stats["prospects_by_month"],
            stats["conversions_by_month"],
            title=_("New prospects and conversions per month"),
            bar_label=_("new prospects"),
            line_label=_("conversions"),
        ),
        "source_chart": bar_line_chart(
            [row[0] for row in stats["rate_by_source"]],
            [row[3] for row in stats["rate_by_source"]],
            title=_("Conversion rate by source"),
            bar_label=_("conversion rate"),
            percent=True,
        ),
    }
    return TemplateResponse(request, "admin/cadence/dashboard.html", context)
