""" "Marketable" is read in Python at send time and as a filter when an audience is counted: both agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preferences.models import Contact
from preferences.selectors import marketing_allowed_q
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
def test_the_python_check_and_the_filter_agree(status, suppressed_at, paused_until):
    contact = ContactFactory(status=status, suppressed_at=suppressed_at, paused_until=paused_until)
    in_filter = Contact.objects.filter(marketing_allowed_q(NOW), pk=contact.pk).exists()
    assert contact.may_receive_marketing(NOW) == in_filter, (status, suppressed_at, paused_until)
    contact.delete()
