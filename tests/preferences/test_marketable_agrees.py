""" "Marketable" has one definition (`preferences.models.marketable_q`); every use agrees with it: the
Python check at send time, the queryset, the path from a Schedule, the silence guard and an
announcement's marketing audience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.announcements import announcement_audience
from cadence.guard import welcome_overdue_schedules
from cadence.models import Announcement, Schedule
from preferences.models import Contact, marketable_q
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
offsets = st.one_of(st.none(), st.integers(-3, 3).map(lambda hours: NOW + timedelta(hours=hours)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from(list(Contact.Status.values)),
    suppressed_at=offsets,
    paused_until=st.one_of(st.none(), st.just(NOW), offsets),
)
def test_every_use_of_marketable_agrees(status, suppressed_at, paused_until):
    contact = ContactFactory.create(
        status=status, suppressed_at=suppressed_at, paused_until=paused_until, confirmed_at=NOW - timedelta(days=30)
    )
    # Confirmed long ago and never mailed, so that the guard's answer is the marketable rule's alone.
    schedule = Schedule.objects.create(contact=contact, next_due_at=NOW, last_sent_at=None, welcome_step=9)
    marketing = Announcement(title="t", kind=Announcement.Kind.MARKETING, audience=Announcement.Audience.ALL_CONTACTS)
    answers = {
        "python": contact.may_receive_marketing(NOW),
        "queryset": Contact.objects.marketable(NOW).filter(pk=contact.pk).exists(),
        "filter": Contact.objects.filter(marketable_q(NOW), pk=contact.pk).exists(),
        "from a schedule": Schedule.objects.filter(marketable_q(NOW, via="contact__"), pk=schedule.pk).exists(),
        "silence guard": Schedule.objects.filter(welcome_overdue_schedules(now=NOW), pk=schedule.pk).exists(),
        "announcement": announcement_audience(marketing, now=NOW).filter(pk=contact.pk).exists(),
    }
    assert len(set(answers.values())) == 1, (answers, status, suppressed_at, paused_until)
    contact.delete()
