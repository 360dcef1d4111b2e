"""What each health reason means, in words a marketer reads."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

from cadence.health import rules as health

REASON_LABELS = {
    health.OVERDUE: _("no mail for longer than the cadence allows"),
    health.NO_ENGAGEMENT: _("no opens or clicks for a long time"),
    health.BOUNCES: _("recent bounces"),
    health.COMPLAINT: _("complained (spam report)"),
    health.SUPPRESSED: _("suppressed"),
    health.TOPICS_DROPPED: _("dropped topics recently"),
    health.FREQUENCY_LOWERED: _("asked for less mail recently"),
}


def reason_labels(reasons: Iterable[str]) -> list[str]:
    """Return the readable labels of stored reason codes."""
    return [str(REASON_LABELS.get(code, code)) for code in reasons]
