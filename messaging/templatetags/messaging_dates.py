"""Template filters for values stored as JSON in a delivery's context."""

from __future__ import annotations

from datetime import date

from django import template

register = template.Library()


@register.filter
def isodate(value: str | date | None) -> date | None:
    """Return the date an ISO string names, so that `|date` can format it in the page's language."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
