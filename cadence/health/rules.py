"""Relationship health: pure rules from indicators to healthy, cooling, at risk or lost, with reasons.

No I/O here; `cadence.health.services` gathers the indicators and stores the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models
from django.utils.translation import gettext_lazy as _

from cadence import rules


class State(models.TextChoices):
    """A relationship's health, from best to worst (`ContactHealth.state` stores these values)."""

    HEALTHY = "healthy", _("healthy")
    COOLING = "cooling", _("cooling")
    AT_RISK = "at_risk", _("at risk")
    LOST = "lost", _("lost")


STATES = tuple(State)  # from best to worst

# Reason codes, stored with the state; the admin shows them translated.
OVERDUE = "overdue"
NO_ENGAGEMENT = "no_engagement"
BOUNCES = "bounces"
COMPLAINT = "complaint"
SUPPRESSED = "suppressed"
TOPICS_DROPPED = "topics_dropped"
FREQUENCY_LOWERED = "frequency_lowered"


@dataclass(frozen=True)
class Indicators:
    """What is known about one relationship at `now`."""

    now: datetime
    interval: timedelta  # the effective cadence
    subscribed_at: datetime | None  # confirmation; engagement is measured from here when none yet
    last_sent_at: datetime | None = None  # last marketing mail
    last_engaged_at: datetime | None = None  # last open or click
    bounces: int = 0  # bounces in the recent window
    complained: bool = False
    suppressed: bool = False
    topics_dropped: bool = False  # fewer topics chosen, recently
    frequency_lowered: bool = False  # chose to hear less often, recently
    paused_until: datetime | None = None  # a pause the person chose: silence counts from its end


@dataclass(frozen=True)
class Thresholds:
    """How long without an open or click moves a relationship down (each at least a few intervals)."""

    cooling_after: timedelta = timedelta(days=90)
    at_risk_after: timedelta = timedelta(days=180)
    lost_after: timedelta = timedelta(days=365)
    cooling_intervals: int = 2
    at_risk_intervals: int = 4
    lost_intervals: int = 6


@dataclass(frozen=True)
class Assessment:
    state: State
    reasons: tuple[str, ...]


def _worse(a: State, b: State) -> State:
    return a if STATES.index(a) >= STATES.index(b) else b


def assess(ind: Indicators, th: Thresholds = Thresholds()) -> Assessment:
    """Return the state of one relationship and the reasons for it (empty when healthy)."""
    state = State.HEALTHY
    reasons: list[str] = []

    def flag(level: State, reason: str) -> None:
        nonlocal state
        state = _worse(state, level)
        reasons.append(reason)

    if ind.complained:
        flag(State.LOST, COMPLAINT)
    if ind.suppressed:
        flag(State.LOST, SUPPRESSED)
    if ind.bounces >= 2:
        flag(State.AT_RISK, BOUNCES)
    elif ind.bounces == 1:
        flag(State.COOLING, BOUNCES)
    if ind.topics_dropped and ind.frequency_lowered:
        flag(State.AT_RISK, TOPICS_DROPPED)
        reasons.append(FREQUENCY_LOWERED)
    elif ind.topics_dropped:
        flag(State.COOLING, TOPICS_DROPPED)
    elif ind.frequency_lowered:
        flag(State.COOLING, FREQUENCY_LOWERED)
    last_mail = ind.last_sent_at or ind.subscribed_at
    # Overdue is the silence guard's "silent": one definition (cadence.rules), one grace.
    if last_mail is not None and rules.is_silent(
        now=ind.now, last_marketing_at=last_mail, interval=ind.interval, paused_until=ind.paused_until
    ):
        flag(State.COOLING, OVERDUE)
    # Silence from the person only counts once there was something to answer.
    engaged = ind.last_engaged_at or ind.subscribed_at
    if ind.last_sent_at is not None and engaged is not None:
        quiet = ind.now - engaged
        if quiet > max(th.lost_after, ind.interval * th.lost_intervals):
            flag(State.LOST, NO_ENGAGEMENT)
        elif quiet > max(th.at_risk_after, ind.interval * th.at_risk_intervals):
            flag(State.AT_RISK, NO_ENGAGEMENT)
        elif quiet > max(th.cooling_after, ind.interval * th.cooling_intervals):
            flag(State.COOLING, NO_ENGAGEMENT)
    return Assessment(state, tuple(reasons))
