from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cadence.health import rules as health
from cadence.health.rules import Indicators, assess

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
MONTH = timedelta(days=30)
QUARTER = timedelta(days=91)


def days(n: int) -> datetime:
    return NOW - timedelta(days=n)


CASES = [
    # name, indicators (beyond now), expected state, expected reasons
    ("new subscriber, nothing sent yet", dict(interval=MONTH, subscribed_at=days(1)), health.State.HEALTHY, ()),
    (
        "mailed on time and opened last week",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(10), last_engaged_at=days(7)),
        health.State.HEALTHY,
        (),
    ),
    (
        "mail overdue beyond interval plus grace",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(40), last_engaged_at=days(35)),
        health.State.COOLING,
        (health.OVERDUE,),
    ),
    (
        "37 days at a monthly cadence is within the silence guard's grace: not overdue",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(37), last_engaged_at=days(36)),
        health.State.HEALTHY,
        (),
    ),
    (
        "confirmed long ago and never mailed is overdue",
        dict(interval=MONTH, subscribed_at=days(60)),
        health.State.COOLING,
        (health.OVERDUE,),
    ),
    (
        "no open for 100 days at a monthly cadence",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(5), last_engaged_at=days(100)),
        health.State.COOLING,
        (health.NO_ENGAGEMENT,),
    ),
    (
        "100 quiet days at a quarterly cadence is only one mail: still healthy",
        dict(interval=QUARTER, subscribed_at=days(400), last_sent_at=days(5), last_engaged_at=days(100)),
        health.State.HEALTHY,
        (),
    ),
    (
        "no open for 200 days",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(5), last_engaged_at=days(200)),
        health.State.AT_RISK,
        (health.NO_ENGAGEMENT,),
    ),
    (
        "no open for 400 days",
        dict(interval=MONTH, subscribed_at=days(800), last_sent_at=days(5), last_engaged_at=days(400)),
        health.State.LOST,
        (health.NO_ENGAGEMENT,),
    ),
    (
        "never opened since signing up 400 days ago",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(5)),
        health.State.LOST,
        (health.NO_ENGAGEMENT,),
    ),
    (
        "one recent bounce",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), bounces=1),
        health.State.COOLING,
        (health.BOUNCES,),
    ),
    (
        "two recent bounces",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), bounces=2),
        health.State.AT_RISK,
        (health.BOUNCES,),
    ),
    (
        "complaint",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), complained=True),
        health.State.LOST,
        (health.COMPLAINT,),
    ),
    (
        "suppressed",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), suppressed=True),
        health.State.LOST,
        (health.SUPPRESSED,),
    ),
    (
        "dropped topics",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), topics_dropped=True),
        health.State.COOLING,
        (health.TOPICS_DROPPED,),
    ),
    (
        "lowered frequency",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), frequency_lowered=True),
        health.State.COOLING,
        (health.FREQUENCY_LOWERED,),
    ),
    (
        "dropped topics and lowered frequency",
        dict(interval=MONTH, subscribed_at=days(30), last_sent_at=days(5), topics_dropped=True, frequency_lowered=True),
        health.State.AT_RISK,
        (health.TOPICS_DROPPED, health.FREQUENCY_LOWERED),
    ),
    (
        "the worst indicator wins and every reason is kept",
        dict(interval=MONTH, subscribed_at=days(400), last_sent_at=days(45), last_engaged_at=days(200), bounces=1),
        health.State.AT_RISK,
        (health.BOUNCES, health.OVERDUE, health.NO_ENGAGEMENT),
    ),
]


@pytest.mark.parametrize(("name", "given", "state", "reasons"), CASES, ids=[c[0] for c in CASES])
def test_health_follows_the_indicators(name, given, state, reasons):
    assessment = assess(Indicators(now=NOW, **given))
    assert assessment.state == state
    assert assessment.reasons == reasons


def test_a_longer_sunset_threshold_keeps_a_quiet_contact_at_risk():
    indicators = Indicators(
        now=NOW, interval=MONTH, subscribed_at=days(800), last_sent_at=days(5), last_engaged_at=days(400)
    )
    assert assess(indicators, health.Thresholds(lost_after=timedelta(days=500))).state == health.State.AT_RISK
