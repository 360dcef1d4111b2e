"""Leaving, understood: saves (people who chose less often, a pause or fewer topics instead of
leaving) and reasons, per month and per signup source, for the marketing dashboard."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pygal
from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from pygal.style import Style

from preferences.models import LeaveFeedback

SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
OUTCOMES = [
    LeaveFeedback.Outcome.LESS_OFTEN,
    LeaveFeedback.Outcome.PAUSE,
    LeaveFeedback.Outcome.FEWER_TOPICS,
    LeaveFeedback.Outcome.LEFT,
]
REASONS = [*LeaveFeedback.Reason.values, ""]
# Saves in greens and blues, leaving in the admin's red: the eye finds the share kept at once.
CHART_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#333333",
    foreground_subtle="#dddddd",
    colors=("#2e7d4f", "#79aec8", "#417690", "#ba2121"),
    font_family="system-ui, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    title_font_size=15,
    value_font_size=12,
)


def leaving_stats(*, since: datetime, months: list[str]) -> dict[str, Any]:
    """Return counts of outcomes and reasons per month ("YYYY-MM") and per signup source (two queries)."""
    rows = (
        LeaveFeedback.objects.filter(occurred_at__gte=since)
        .annotate(month=TruncMonth("occurred_at"))
        .values("month", "contact_source", "outcome", "reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_month: dict[str, dict[str, dict[str, int]]] = {
        m: {"outcomes": dict.fromkeys(OUTCOMES, 0), "reasons": dict.fromkeys(REASONS, 0)} for m in months
    }
    by_source: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows:
        month = row["month"].strftime("%Y-%m")
        source = row["contact_source"] or "-"
        bucket = by_source.setdefault(
            source, {"outcomes": dict.fromkeys(OUTCOMES, 0), "reasons": dict.fromkeys(REASONS, 0)}
        )
        for target in (by_month.get(month), bucket):
            if target is not None:
                target["outcomes"][row["outcome"]] += row["n"]
                target["reasons"][row["reason"]] += row["n"]
    return {"months": months, "by_month": by_month, "by_source": by_source}


def _row(label: str, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    outcomes = [counts["outcomes"][key] for key in OUTCOMES]
    total = sum(outcomes)
    saves = total - counts["outcomes"][LeaveFeedback.Outcome.LEFT]
    return {
        "label": label,
        "outcomes": outcomes,
        "reasons": [counts["reasons"][key] for key in REASONS],
        "total": total,
        "saves": saves,
        "save_rate": 100.0 * saves / total if total else None,
    }


def leaving_chart(stats: dict[str, Any]) -> SafeString:
    """Return an inline SVG (pygal, no scripts): stacked bars per month, one colour per choice made."""
    title = _("On the way out: what people chose, per month")
    chart = pygal.StackedBar(
        style=CHART_STYLE,
        width=720,
        height=300,
        js=[],
        disable_xml_declaration=True,
        explicit_size=False,
        legend_at_bottom=True,
        legend_at_bottom_columns=4,
        x_label_rotation=0,
        show_minor_x_labels=True,
        print_zeroes=False,
        min_scale=2,
        max_scale=6,
        y_title=_("people"),
        title=title,
        no_data_text=_("Nobody on the way out yet"),
        value_formatter=lambda value: f"{value:.0f}",
    )
    chart.x_labels = [month[2:] for month in stats["months"]]
    labels = dict(LeaveFeedback.Outcome.choices)
    for key in OUTCOMES:
        chart.add(str(labels[key]).capitalize(), [stats["by_month"][m]["outcomes"][key] for m in stats["months"]])
    # pygal inlines its configuration as a <script> even without its JS; the page needs none (the
    # table carries the numbers), so it goes.
    svg = mark_safe(SCRIPT.sub("", chart.render(is_unicode=True)))
    return format_html('<figure class="chart" role="img" aria-label="{}">{}</figure>', title, svg)


def leaving_context(stats: dict[str, Any]) -> dict[str, Any]:
    """Return what the dashboard template shows: the chart and the two tables, labelled in the active language."""
    outcome_labels = dict(LeaveFeedback.Outcome.choices)
    reason_labels = {**dict(LeaveFeedback.Reason.choices), "": _("no reason given")}
    sources = sorted(stats["by_source"].items(), key=lambda item: -sum(item[1]["outcomes"].values()))
    return {
        "chart": leaving_chart(stats),
        "outcome_labels": [str(outcome_labels[key]) for key in OUTCOMES],
        "reason_labels": [str(reason_labels[key]) for key in REASONS],
        "by_month": [_row(month, stats["by_month"][month]) for month in stats["months"]],
        "by_source": [_row(source, counts) for source, counts in sources],
    }
