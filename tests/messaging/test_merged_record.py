"""Merged batch sends are recorded per ESP call as the calls finish: a lane starts no call while its last one
waits for its record, so a killed worker leaves at most one call per lane unrecorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from anymail.signals import pre_send
from django.utils import timezone

from cadence.batch import batch_send
from cadence.models import Schedule
from messaging.models import Delivery
from preferences.models import Contact
from tests.factories import ContactFactory, ContentItemFactory

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """What SIGKILL looks like from inside: nothing after it runs."""


def kill_on_call(number: int) -> Iterator[list[list[str]]]:
    """Let `number - 1` calls through (their recipients listed), then kill the worker at the next one."""
    calls: list[list[str]] = []
    lock = threading.Lock()

    def receiver(sender: Any, message: Any, **kwargs: Any) -> None:
        with lock:
            if len(calls) >= number - 1:
                raise Killed
            calls.append(list(message.to))

    pre_send.connect(receiver, dispatch_uid="test-merged-killed")
    yield calls
    pre_send.disconnect(dispatch_uid="test-merged-killed")


@pytest.fixture
def killed_on_second_call() -> Iterator[list[list[str]]]:
    yield from kill_on_call(2)


@pytest.fixture
def killed_on_third_call() -> Iterator[list[list[str]]]:
    yield from kill_on_call(3)


def due_nurture(topic: Any, locales: list[str]) -> list[Delivery]:
    """Contacts due for their nurture mail, one per locale given, and their queued deliveries."""
    contacts: list[Contact] = [ContactFactory.create(topics=[topic], locale=locale) for locale in locales]
    now = timezone.now()
    Schedule.objects.bulk_create(
        Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9, slot=1)
        for c in contacts
    )
    return Delivery.objects.bulk_create(
        Delivery(contact=c, kind="nurture", template="nurture", idempotency_key=f"n:{c.id}", marketing=True)
        for c in contacts
    )


@pytest.fixture
def merging_esp(settings: Any) -> None:
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ESP_BATCH_SENDING = {"test": {"limit": 1000, "placeholder": "[[{name}]]"}}
    settings.ESP_MAX_SEND_RATE = 0


def test_a_merged_batch_cut_off_after_its_first_call_has_that_calls_deliveries_recorded(
    settings, topics, merging_esp, killed_on_second_call
):
    settings.ESP_SEND_CONCURRENCY = 1  # one lane: each call is recorded before the next one starts
    ContentItemFactory(topic=topics[0], title="Rates go up")
    now = timezone.now()
    # Two groups (two languages) of two: one call each, far below the ESP's limit.
    deliveries = due_nurture(topics[0], ["en", "en", "nl", "nl"])

    with pytest.raises(Killed):
        batch_send(delivery_ids=[d.id for d in deliveries])

    [first_call] = killed_on_second_call
    assert len(first_call) == 2
    rows = {d.contact.email: d for d in Delivery.objects.select_related("contact")}
    assert {email for email, d in rows.items() if d.status == Delivery.Status.SENT} == set(first_call)
    assert {d.status for email, d in rows.items() if email not in first_call} == {Delivery.Status.SENDING}
    sent_schedules = Schedule.objects.filter(contact__email__in=first_call)
    assert all(s.last_sent_at > now for s in sent_schedules)  # the producer's record came with it


def test_with_two_lanes_a_third_call_starts_only_once_an_earlier_one_is_recorded(
    settings, topics, merging_esp, killed_on_third_call
):
    settings.ESP_SEND_CONCURRENCY = 2
    ContentItemFactory(topic=topics[0], title="Rates go up")
    ContentItemFactory(topic=topics[1], title="Pensions explained")
    now = timezone.now()
    # Three groups of two (English and Dutch on the first topic, English on the second): three calls.
    deliveries = due_nurture(topics[0], ["en", "en", "nl", "nl"]) + due_nurture(topics[1], ["en", "en"])

    with pytest.raises(Killed):
        batch_send(delivery_ids=[d.id for d in deliveries])

    assert len(killed_on_third_call) == 2  # both lanes' first calls went through
    sent = {d.contact.email for d in Delivery.objects.select_related("contact") if d.status == Delivery.Status.SENT}
    called = [set(call) for call in killed_on_third_call]
    # The third call started after at least one of the two was recorded, with its producer's writes;
    # whatever was not recorded is one call per lane at most, still `sending` for the guard.
    assert any(call <= sent for call in called)
    assert sent <= called[0] | called[1]
    assert Delivery.objects.filter(status=Delivery.Status.SENDING).count() == len(deliveries) - len(sent)
    assert all(s.last_sent_at > now for s in Schedule.objects.filter(contact__email__in=sent))
