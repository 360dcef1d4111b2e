"""Merged batch sends are recorded per ESP call, before the next call (the kill window is one call)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from anymail.signals import pre_send
from django.utils import timezone

from cadence.batch import batch_send
from cadence.models import Schedule
from messaging.models import Delivery
from tests.factories import ContactFactory, ContentItemFactory

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """What SIGKILL looks like from inside: nothing after it runs."""


@pytest.fixture
def killed_on_second_call() -> Iterator[list[list[str]]]:
    calls: list[list[str]] = []

    def receiver(sender: Any, message: Any, **kwargs: Any) -> None:
        if calls:
            raise Killed
        calls.append(list(message.to))

    pre_send.connect(receiver, dispatch_uid="test-merged-killed")
    yield calls
    pre_send.disconnect(dispatch_uid="test-merged-killed")


def test_a_merged_batch_cut_off_after_its_first_call_has_that_calls_deliveries_recorded(
    settings, topics, killed_on_second_call
):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ESP_BATCH_SENDING = {"test": {"limit": 1000, "placeholder": "[[{name}]]"}}
    settings.ESP_MAX_SEND_RATE = 0
    ContentItemFactory(topic=topics[0], title="Rates go up")
    # Two groups (two languages) of two: one call each, far below the ESP's limit.
    contacts = [ContactFactory(topics=[topics[0]], locale=locale) for locale in ("en", "en", "nl", "nl")]
    now = timezone.now()
    Schedule.objects.bulk_create(
        Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9, slot=1)
        for c in contacts
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(contact=c, kind="nurture", template="nurture", idempotency_key=f"n:{c.id}", marketing=True)
        for c in contacts
    )

    with pytest.raises(Killed):
        batch_send(delivery_ids=[d.id for d in deliveries])

    [first_call] = killed_on_second_call
    assert len(first_call) == 2
    rows = {d.contact.email: d for d in Delivery.objects.select_related("contact")}
    assert {email for email, d in rows.items() if d.status == Delivery.Status.SENT} == set(first_call)
    assert {d.status for email, d in rows.items() if email not in first_call} == {Delivery.Status.SENDING}
    sent_schedules = Schedule.objects.filter(contact__email__in=first_call)
    assert all(s.last_sent_at > now for s in sent_schedules)  # the producer's record came with it
