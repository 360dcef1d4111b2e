"""The frequencies a subscriber may choose, configured in settings.CADENCE_FREQUENCIES."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

LABELS = {
    "weekly": _("Every week"),
    "biweekly": _("Every 2 weeks"),
    "monthly": _("Monthly"),
    "quarterly": _("Quarterly"),
    "yearly": _("Once a year"),
}


@dataclass(frozen=True)
class Frequency:
    key: str
    days: int

    @property
    def interval(self) -> timedelta:
        return timedelta(days=self.days)

    @property
    def label(self) -> str:
        return str(LABELS.get(self.key, self.key))


def frequencies() -> list[Frequency]:
    """Return the configured frequencies, most frequent first."""
    return list(_parse(tuple(settings.CADENCE_FREQUENCIES)))


@lru_cache(maxsize=8)
def _parse(items: tuple[str, ...]) -> tuple[Frequency, ...]:
    # Asked once per contact when a batch is sent: parse each configuration once.
    parsed = []
    for item in items:
        key, sep, days = item.partition("=")
        if not sep or not days.strip().isdigit() or int(days) < 1:
            raise ImproperlyConfigured(f"CADENCE_FREQUENCIES item {item!r} is not 'key=days'.")
        parsed.append(Frequency(key.strip(), int(days)))
    return tuple(sorted(parsed, key=lambda f: f.days))


def get_frequency(key: str) -> Frequency:
    """Return the frequency named `key`, or the least frequent one when it is no longer offered."""
    options = frequencies()
    for frequency in options:
        if frequency.key == key:
            return frequency
    return options[-1]


def frequency_choices() -> list[tuple[str, str]]:
    """Return (key, label) pairs for a form field (pass the function: labels follow the language)."""
    return [(f.key, f.label) for f in frequencies()]
