"""Server-side SVG charts of the admin (pygal): axes with values, one scale per chart, no scripts, no CDN.

Each chart is a responsive SVG (a viewBox, no fixed size) drawn for a phone's width, so its labels stay
readable when the browser scales it down; the page caps its width on a large screen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from pygal.style import Style

WIDTH, HEIGHT = 520, 300
COLOURS = ("#417690", "#ba2121", "#79aec8", "#e0a526", "#5b8c5a", "#8a6fb0")
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#333",
    foreground_strong="#222",
    foreground_subtle="#ccc",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=12,
    value_label_font_size=12,
    tooltip_font_size=13,
    legend_font_size=13,
    title_font_size=15,
    colors=COLOURS,
)
# pygal writes a configuration script for its optional JavaScript (not loaded here) and credits in comments.
_UNUSED = re.compile(r"<script[^>]*>.*?</script>|<!--.*?-->", re.S)


def _config(*, percent: bool) -> dict:
    return {
        "style": STYLE,
        "width": WIDTH,
        "height": HEIGHT,
        "explicit_size": False,
        "disable_xml_declaration": True,
        "js": [],
        "title": None,
        "print_values": False,
        "show_y_guides": True,
        "show_x_guides": False,
        "truncate_label": 24,
        "truncate_legend": 30,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 2,
        "margin": 8,
        "min_scale": 3,
        "max_scale": 6,
        "value_formatter": (lambda v: f"{v:.1f}%") if percent else (lambda v: f"{v:,.0f}"),
        "no_data_text": gettext("No data in this range"),
    }


def _svg(chart: pygal.graph.graph.Graph, title: str) -> SafeString:
    svg = _UNUSED.sub("", chart.render(is_unicode=True))
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1)
    return mark_safe(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{svg}</figure>')


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    percent: bool = False,
    horizontal: bool = False,
    label_every: int = 1,
) -> SafeString:
    """Return a bar chart, one group per label and one bar per series, all on one value axis.

    `label_every` writes every n-th label on the category axis (months of a year fit on a phone at 3).
    """
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    chart = kind(**_config(percent=percent), show_legend=len(series) > 1)
    chart.x_labels = list(labels)
    if label_every > 1 and not horizontal:
        chart.x_labels_major = list(labels)[::label_every]
        chart.show_minor_x_labels = False
    for name, values in series:
        chart.add(name, list(values))
    return _svg(chart, title)


def rare_into_other(
    rows: Sequence[tuple[str, int, int]], *, min_sample: int, other_label: str
) -> list[tuple[str, int, int]]:
    """Return (label, contacts, conversions) rows with rows under `min_sample` contacts summed as one "other" row."""
    kept = [row for row in rows if row[1] >= min_sample]
    rare = [row for row in rows if row[1] < min_sample]
    if rare:
        kept.append((other_label, sum(r[1] for r in rare), sum(r[2] for r in rare)))
    return kept
