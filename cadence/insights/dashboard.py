"""The marketers' dashboard: lifecycle, potential, health, silence, prospects and conversions.

Every count links to the people behind it (the admin lists, filtered). The figures over time cover a
range of months chosen on the page (the last twelve by default); rates are shown only for groups of at
least MIN_SAMPLE contacts, smaller sources are summed as "other".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cadence.guard import silence_count
from cadence.insights.charts import bar_chart, rare_into_other
from cadence.insights.leaving import leaving_context, leaving_stats
from cadence.models import ContactHealth
from preferences.models import Contact, Conversion, Lifecycle

CACHE_KEY = "admin-dashboard-stats"
# Fewer contacts than this in a group give no rate worth comparing.
MIN_SAMPLE = 30
MAX_MONTHS = 36


@dataclass(frozen=True)
class MonthRange:
    """Whole months from `first` to `last` (both "YYYY-MM"), inclusive."""

    first: str
    last: str

    @classmethod
    def default(cls, now: datetime) -> MonthRange:
        months = _month_keys(_shift(now.year, now.month, -11), (now.year, now.month))
        return cls(months[0], months[-1])

    @classmethod
    def from_query(cls, query: Any, now: datetime) -> MonthRange:
        """Return the range asked for in `?from=YYYY-MM&to=YYYY-MM`, the default when absent or malformed."""
        default = cls.default(now)
        first, last = _parse(query.get("from")) or default.first, _parse(query.get("to")) or default.last
        if first > last:
            first, last = last, first
        months = _month_keys(_tuple(first), _tuple(last))
        if len(months) > MAX_MONTHS:
            first = months[-MAX_MONTHS]
        return cls(first, last)

    @property
    def months(self) -> list[str]:
        return _month_keys(_tuple(self.first), _tuple(self.last))

    @property
    def start(self) -> datetime:
        year, month = _tuple(self.first)
        return datetime(year, month, 1, tzinfo=timezone.get_current_timezone())

    @property
    def end(self) -> datetime:
        """Return the first moment after the range."""
        year, month = _shift(*_tuple(self.last), 1)
        return datetime(year, month, 1, tzinfo=timezone.get_current_timezone())


def _parse(value: str | None) -> str | None:
    try:
        return datetime.strptime(value or "", "%Y-%m").strftime("%Y-%m")
    except ValueError:
        return None


def _tuple(key: str) -> tuple[int, int]:
    year, month = key.split("-")
    return int(year), int(month)


def _shift(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + by
    return index // 12, index % 12 + 1


def _month_keys(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    keys, (year, month) = [], first
    while (year, month) <= last:
        keys.append(f"{year:04d}-{month:02d}")
        year, month = _shift(year, month, 1)
    return keys


def _by_month(rows: Any, field: str = "month") -> dict[str, int]:
    return {timezone.localtime(row[field]).strftime("%Y-%m"): row["n"] for row in rows if row[field] is not None}


def _rate(conversions: int, contacts: int) -> float | None:
    """Return the conversion rate in percent, or None below the minimum sample."""
    return 100.0 * conversions / contacts if contacts >= MIN_SAMPLE else None


def _per_month(queryset: Any, field: str) -> dict[str, int]:
    return _by_month(queryset.annotate(month=TruncMonth(field)).values("month").annotate(n=Count("pk")).order_by())


def dashboard_stats(now: datetime | None = None, months: MonthRange | None = None) -> dict[str, Any]:
    """Return every figure of the dashboard (about a dozen aggregate queries, whatever the size)."""
    now = now or timezone.now()
    months = months or MonthRange.default(now)
    in_range = Q(created_at__gte=months.start, created_at__lt=months.end)
    lifecycle = Contact.objects.aggregate(
        **{value: Count("pk", filter=Lifecycle.q(value)) for value in Lifecycle.values},
        confirmed=Count("pk", filter=Q(status=Contact.Status.CONFIRMED)),
    )
    potential = dict(Contact.objects.values_list("potential").annotate(n=Count("pk")).order_by())
    health = dict(ContactHealth.objects.values_list("state").annotate(n=Count("pk")).order_by())
    # The silence guard's own definitions, so the dashboard, the ops page and the guard agree.
    silence = silence_count(now=now)
    signups = Contact.objects.filter(in_range)
    signups_by_month = _per_month(signups, "created_at")
    prospects_by_month = _per_month(signups.filter(share_of_customer=0), "created_at")
    conversions = Conversion.objects.filter(converted_at__gte=months.start, converted_at__lt=months.end)
    conversions_by_month = _per_month(conversions, "converted_at")
    converted = Conversion.objects.filter(signed_up_at__gte=months.start, signed_up_at__lt=months.end)
    converted_by_signup_month = _per_month(converted, "signed_up_at")
    contacts_by_source = dict(signups.values_list("source").annotate(n=Count("pk")).order_by("-n"))
    conversions_by_source = dict(converted.values_list("contact_source").annotate(n=Count("pk")).order_by())
    conversions_by_potential = dict(Conversion.objects.values_list("potential").annotate(n=Count("pk")).order_by())
    return {
        "computed_at": now,
        "range": months,
        "leaving": leaving_stats(since=months.start, months=months.months),
        "lifecycle": lifecycle,
        "potential": potential,
        "health": health,
        "silent": silence.silent,
        "welcome_overdue": silence.welcome_overdue,
        "months": months.months,
        "prospects_by_month": [prospects_by_month.get(m, 0) for m in months.months],
        "conversions_by_month": [conversions_by_month.get(m, 0) for m in months.months],
        "by_source": [(source, n, conversions_by_source.get(source, 0)) for source, n in contacts_by_source.items()],
        "by_potential": [
            (value, potential.get(value, 0), conversions_by_potential.get(value, 0))
            for value in Contact.Potential.values
        ],
        "by_signup_month": [
            (m, signups_by_month.get(m, 0), converted_by_signup_month.get(m, 0)) for m in months.months
        ],
    }


def _cache_key(months: MonthRange, now: datetime) -> str:
    # The default range keeps the plain key: beat refreshes it (cadence.insights.tasks.dashboard_refresh).
    return CACHE_KEY if months == MonthRange.default(now) else f"{CACHE_KEY}:{months.first}:{months.last}"


def _link(name: str, **query: str) -> str:
    return f"{reverse(name)}?{urlencode(query)}"


def dashboard_stats_cached(*, now: datetime, months: MonthRange, refresh: bool = False) -> dict[str, Any]:
    """Return the dashboard's figures for `months`, from the cache unless `refresh` or stale.

    Computed figures are kept for DASHBOARD_CACHE_SECONDS.
    """
    key = _cache_key(months, now)
    stats = None if refresh else cache.get(key)
    if stats is None or stats.get("range") != months:
        stats = dashboard_stats(now, months)
        cache.set(key, stats, settings.DASHBOARD_CACHE_SECONDS)
    return stats


def dashboard_rows(stats: dict[str, Any], months: MonthRange) -> dict[str, Any]:
    """Return what the dashboard page shows of `stats`: rows with links to the people behind each count, charts."""
    contacts = "admin:preferences_contact_changelist"
    labels = {
        "lifecycle": dict(Lifecycle.choices),
        "potential": dict(Contact.Potential.choices),
        "health": dict(ContactHealth.State.choices),
    }
    signed_up = _signed_up_query(months)
    other = _("other (groups under %(n)d contacts)") % {"n": MIN_SAMPLE}
    source_rows = [
        (
            source or _("(none)"),
            n,
            c,
            _rate(c, n),
            _link(contacts, source=source, **signed_up) if source != other else "",
            _link("admin:preferences_conversion_changelist", contact_source=source) if source != other else "",
        )
        for source, n, c in rare_into_other(stats["by_source"], min_sample=MIN_SAMPLE, other_label=other)
    ]
    rated_sources = [(label, rate) for label, n, _c, rate, *_links in source_rows if rate is not None]
    month_labels = stats["months"]
    every = 1 if len(month_labels) <= 6 else 3
    return {
        "stats": stats,
        "range": months,
        "min_sample": MIN_SAMPLE,
        "leaving": leaving_context(stats["leaving"]),
        "lifecycle_rows": [
            (labels["lifecycle"][k], stats["lifecycle"].get(k, 0), _link(contacts, lifecycle=k))
            for k in Lifecycle.values
        ],
        "potential_rows": [
            (labels["potential"][k], stats["potential"].get(k, 0), _link(contacts, potential__exact=k))
            for k in Contact.Potential.values
        ],
        "health_rows": [
            (labels["health"][k], stats["health"].get(k, 0), _link(contacts, health=k))
            for k in ContactHealth.State.values
        ],
        "silent_url": _link(contacts, silence="silent"),
        "welcome_overdue_url": _link(contacts, silence="welcome_overdue"),
        "source_rows": source_rows,
        "potential_rates": [
            (labels["potential"][k], n, c, _rate(c, n), _link(contacts, potential__exact=k))
            for k, n, c in stats["by_potential"]
        ],
        "month_rates": [
            (m, n, c, _rate(c, n), _link(contacts, **_signed_up_query(MonthRange(m, m))))
            for m, n, c in stats["by_signup_month"]
        ],
        "prospects_chart": bar_chart(
            month_labels,
            [(_("new prospects"), stats["prospects_by_month"])],
            title=_("New prospects per month"),
            label_every=every,
        ),
        "conversions_chart": bar_chart(
            month_labels,
            [(_("conversions"), stats["conversions_by_month"])],
            title=_("Conversions per month"),
            label_every=every,
        ),
        "source_chart": bar_chart(
            [label for label, _rate_value in rated_sources],
            [(_("conversion rate"), [rate for _label, rate in rated_sources])],
            title=_("Conversion rate by source (%)"),
            percent=True,
            horizontal=True,
        ),
    }


def _signed_up_query(months: MonthRange) -> dict[str, str]:
    """Return the contact list's filter for contacts signed up in `months` (aware times: no naive warning)."""
    return {"created_at__gte": months.start.isoformat(), "created_at__lt": months.end.isoformat()}
