"""One way to write a date, on pages and in mails: "3 December 2026" / "3 december 2026"."""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.utils import formats, timezone

register = template.Library()

LONG_DATE_FORMAT = "j F Y"


def long_date(value: date | datetime | str | None) -> str:
    """Return `value` (a date, an aware datetime in local time, or an ISO string) in the active language."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return formats.date_format(value, LONG_DATE_FORMAT)


register.filter("longdate", long_date)
