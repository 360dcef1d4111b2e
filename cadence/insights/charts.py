"""Server-side SVG charts of the admin (pygal): axes with values, one scale per chart, no scripts, no CDN.

Each chart is a responsive SVG (a viewBox, no fixed size) drawn for a phone's width, so its labels stay
readable when the browser scales it down; the page caps its width on a large screen.
"""

from __future__ import annotations

import math
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


def integer_ticks(top: float, *, most: int = 6) -> list[int]:
    """Return whole-number ticks from 0 to at least `top`, at most `most` of them, in steps of 1, 2 or 5 x 10^n.

    A count axis drawn with pygal's own ticks reads "0, 0, 1, 1, 2" once the largest value is small.
    """
    step = 1
    while True:
        for factor in (1, 2, 5):
            if math.ceil(top / (step * factor)) + 1 <= most:
                step *= factor
                return list(range(0, step * max(1, math.ceil(top / step)) + 1, step))
        step *= 10


def _svg(
    chart: pygal.graph.graph.Graph, title: str, description: str, tooltips: Sequence[str], nonce: str
) -> SafeString:
    """Return the chart as inline SVG in a figure, named and described for assistive technology.

    Each bar gets a native tooltip (an SVG <title>): pygal's own tooltips need its JavaScript. The one
    inline <style> carries `nonce`, so a page whose Content-Security-Policy allows no inline style
    may still show the chart.
    """
    svg = _UNUSED.sub("", chart.render(is_unicode=True))
    chart_id = re.search(r'<svg [^>]*\bid="([^"]+)"', svg)
    ident = chart_id.group(1) if chart_id else "chart"
    head = f'<title id="{ident}-title">{escape(title)}</title>'
    if description:
        head += f'<desc id="{ident}-desc">{escape(description)}</desc>'
    # pygal names an untitled chart "Pygal".
    svg = re.sub(r"<title>[^<]*</title>", lambda _m: head, svg, count=1)
    described = f' aria-describedby="{ident}-desc"' if description else ""
    svg = svg.replace("<svg ", f'<svg role="img" aria-labelledby="{ident}-title"{described} ', 1)
    if nonce:
        svg = svg.replace("<style ", f'<style nonce="{escape(nonce)}" ', 1)
    # The hidden tooltip box of pygal's JavaScript: a presentation attribute, not a style attribute.
    svg = svg.replace('style="opacity: 0"', 'opacity="0"')
    names = iter(tooltips)
    svg = re.sub(r'<g class="bar">', lambda _m: f'<g class="bar"><title>{escape(next(names, ""))}</title>', svg)
    return mark_safe(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{svg}</figure>')


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    description: str = "",
    percent: bool = False,
    horizontal: bool = False,
    label_every: int = 1,
    tooltip_labels: Sequence[str] | None = None,
    nonce: str = "",
) -> SafeString:
    """Return a bar chart, one group per label and one bar per series, all on one value axis.

    `label_every` writes every n-th label on the category axis (months of a year fit on a phone at 3).
    `description` is read out after the title; `tooltip_labels` (one per label) name the bars in their
    tooltips when the axis labels are short. Counts get whole-number ticks.
    """
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    config = _config(percent=percent)
    values = [v for _name, column in series for v in column]
    if not percent:
        ticks = integer_ticks(max(values, default=0))
        config.update(y_labels=ticks, range=(0, ticks[-1]))
    chart = kind(**config, show_legend=len(series) > 1)
    chart.x_labels = list(labels)
    if label_every > 1 and not horizontal:
        chart.x_labels_major = list(labels)[::label_every]
        chart.show_minor_x_labels = False
    names = list(tooltip_labels or labels)
    tooltips = []
    for name, column in series:
        chart.add(name, list(column))
        prefix = f"{name}, " if len(series) > 1 else ""
        tooltips += [
            f"{prefix}{label}: {config['value_formatter'](v)}" for label, v in zip(names, column, strict=False)
        ]
    return _svg(chart, title, description, tooltips, nonce)


def rare_into_other(
    rows: Sequence[tuple[str, int, int]], *, min_sample: int, other_label: str
) -> list[tuple[str, int, int]]:
    """Return (label, contacts, conversions) rows with rows under `min_sample` contacts summed as one "other" row."""
    kept = [row for row in rows if row[1] >= min_sample]
    rare = [row for row in rows if row[1] < min_sample]
    if rare:
        kept.append((other_label, sum(r[1] for r in rare), sum(r[2] for r in rare)))
    return kept
