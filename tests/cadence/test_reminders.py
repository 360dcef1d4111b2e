from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import redis
import time_machine
from django.conf import settings
from django.core import mail
from django.core.management import call_command

from cadence.batch import batch_send
from cadence.kinds import Kind
from cadence.models import ReminderRule, Schedule
from cadence.reminders import reminders_create_due
from messaging.models import Delivery
from preferences.models import Contact, Product
from tests.factories import ContactFactory, ProductFactory, ReminderRuleFactory

pytestmark = pytest.mark.django_db

RENEWS = date(2026, 12, 31)  # 30 days before: 1 December


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def tick(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return reminders_create_due()


def send_all() -> None:
    for delivery in Delivery.objects.filter(status=Delivery.Status.QUEUED).order_by("created_at"):
        batch_send(delivery_ids=[delivery.id])


@pytest.fixture
def rule() -> ReminderRule:
    return ReminderRuleFactory.create(event=ReminderRule.Event.RENEWAL, days_before=30)


@pytest.fixture
def amsterdam() -> Product:
    contact = ContactFactory.create(
        email="anna@example.nl", locale="nl", time_zone="Europe/Amsterdam", first_name="Anna"
    )
    return ProductFactory.create(contact=contact, name="Woonverzekering", renews_on=RENEWS)


@pytest.fixture
def new_york() -> Product:
    contact = ContactFactory.create(
        email="ned@example.com", locale="en", time_zone="America/New_York", first_name="Ned"
    )
    return ProductFactory.create(contact=contact, name="Home insurance", renews_on=RENEWS)


def test_a_reminder_fires_at_nine_local_in_each_contacts_time_zone_and_language(rule, amsterdam, new_york):
    # 07:59 UTC is 08:59 in Amsterdam and 02:59 in New York: too early for both.
    assert tick(at(2026, 12, 1, 7, 59)) == 0
    # 08:00 UTC is 09:00 in Amsterdam; New York is still asleep.
    assert tick(at(2026, 12, 1, 8, 0)) == 1
    assert Delivery.objects.get().contact == amsterdam.contact
    # 14:00 UTC is 09:00 in New York.
    assert tick(at(2026, 12, 1, 13, 59)) == 0
    assert tick(at(2026, 12, 1, 14, 0)) == 1

    send_all()

    by_address = {message.to[0]: message for message in mail.outbox}
    dutch, english = by_address["anna@example.nl"], by_address["ned@example.com"]
    assert dutch.subject == "Woonverzekering wordt verlengd op 31 december 2026"
    assert "over 30 dagen" in dutch.body and "servicebericht" in dutch.body
    assert english.subject == "Home insurance renews on 31 December 2026"
    assert "in 30 days" in english.body
    # A service message: no List-Unsubscribe, and the marketing cadence is not touched.
    assert "List-Unsubscribe" not in english.extra_headers
    assert all(d.kind == Kind.REMINDER for d in Delivery.objects.all())


def test_a_reminder_fires_once_per_product_rule_and_date(rule, amsterdam):
    second_rule = ReminderRuleFactory.create(event=ReminderRule.Event.RENEWAL, days_before=7)
    for minute in (0, 15, 30):
        tick(at(2026, 12, 1, 8, minute))
    tick(at(2026, 12, 1, 22, 45))  # still 1 December in Amsterdam (23:45)
    tick(at(2026, 12, 24, 8, 0))  # 7 days before
    tick(at(2026, 12, 24, 9, 0))

    keys = sorted(Delivery.objects.values_list("idempotency_key", flat=True))
    assert keys == sorted(
        [
            f"reminder:{amsterdam.pk}:{rule.pk}:2026-12-31",
            f"reminder:{amsterdam.pk}:{second_rule.pk}:2026-12-31",
        ]
    )
    send_all()
    send_all()
    assert len(mail.outbox) == 2


def test_a_moved_renewal_date_gives_a_new_reminder_not_a_duplicate(rule, amsterdam):
    tick(at(2026, 12, 1, 8, 0))
    old = Delivery.objects.get()
    # The CRM moves the renewal before the reminder went out: the old one is out of date.
    Product.objects.filter(pk=amsterdam.pk).update(renews_on=date(2027, 1, 10))
    batch_send(delivery_ids=[old.id])
    old.refresh_from_db()
    assert old.status == Delivery.Status.CANCELLED and "out of date" in old.error
    assert tick(at(2026, 12, 1, 9, 0)) == 0

    assert tick(at(2026, 12, 11, 8, 0)) == 1
    tick(at(2026, 12, 11, 9, 0))
    new = Delivery.objects.exclude(pk=old.pk).get()
    assert new.idempotency_key == f"reminder:{amsterdam.pk}:{rule.pk}:2027-01-10"
    send_all()
    assert [m.subject for m in mail.outbox] == ["Woonverzekering wordt verlengd op 10 januari 2027"]


def test_products_ended_before_the_reminder_get_none(rule):
    end_rule = ReminderRuleFactory.create(event=ReminderRule.Event.END, days_before=30)
    ended_early = ProductFactory.create(renews_on=RENEWS, ends_on=date(2026, 11, 20))
    ends_before_renewal = ProductFactory.create(renews_on=RENEWS, ends_on=date(2026, 12, 15))
    ending = ProductFactory.create(ends_on=RENEWS)
    renewing = ProductFactory.create(renews_on=RENEWS)

    tick(at(2026, 12, 1, 8, 0))

    reminded = {(d.context["product_id"], d.context["event"]) for d in Delivery.objects.all()}
    assert reminded == {(ending.pk, "end"), (renewing.pk, "renewal")}
    assert end_rule.pk and ended_early.pk and ends_before_renewal.pk
    send_all()
    assert any("ends on 31 December 2026" in m.subject for m in mail.outbox)


def test_opted_out_and_suppressed_contacts_get_none_but_unsubscribed_customers_do(rule):
    opted_out = ProductFactory.create(renews_on=RENEWS, contact=ContactFactory.create(service_reminders=False))
    suppressed = ProductFactory.create(renews_on=RENEWS, contact=ContactFactory.create(suppressed_at=at(2026, 1, 1)))
    # A customer who left marketing mail, on the lowest frequency, still hears about their product.
    unsubscribed = ProductFactory.create(
        renews_on=RENEWS, contact=ContactFactory.create(status=Contact.Status.UNSUBSCRIBED, frequency="quarterly")
    )
    Schedule.objects.create(contact=unsubscribed.contact, next_due_at=at(2027, 2, 1), is_active=False)

    tick(at(2026, 12, 1, 8, 0))
    send_all()

    assert [m.to[0] for m in mail.outbox] == [unsubscribed.contact.email]
    assert opted_out.pk and suppressed.pk
    schedule = Schedule.objects.get(contact=unsubscribed.contact)
    assert schedule.last_sent_at is None and schedule.next_due_at == at(2027, 2, 1)


def test_an_opt_out_after_the_tick_stops_the_queued_reminder(rule, amsterdam):
    tick(at(2026, 12, 1, 8, 0))
    Contact.objects.filter(pk=amsterdam.contact_id).update(service_reminders=False)
    send_all()
    assert mail.outbox == []
    assert Delivery.objects.get().error == "service reminders declined"


def test_the_tick_enqueues_the_sends_on_the_bulk_queue(rule, amsterdam, new_york, django_capture_on_commit_callbacks):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("bulk", "welcome")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            tick(at(2026, 12, 1, 14, 0))
        # Both reminders travel in one batch task on the bulk queue.
        assert broker.llen("bulk") == 1 and broker.llen("welcome") == 0
        message = broker.lindex("bulk", 0)
        assert b"cadence.tasks.send_batch" in message
    finally:
        broker.delete("bulk", "welcome")


def test_the_management_command_and_beat_run_the_same_tick(rule, amsterdam, capsys):
    with time_machine.travel(at(2026, 12, 1, 8, 0), tick=False):
        call_command("reminders_tick")
    assert "1 reminder(s) created" in capsys.readouterr().out
    assert settings.CELERY_BEAT_SCHEDULE["reminders-tick"]["task"] == "cadence.tasks.reminders_tick"


def test_a_reminder_day_missed_while_beat_was_down_is_caught_up_once(rule, amsterdam):
    # Beat was down all of 1 December (the reminder day) and comes back on the 2nd at 07:00 local.
    assert tick(at(2026, 12, 2, 6)) == 1
    assert tick(at(2026, 12, 2, 6, 15)) == 0
    reminder = Delivery.objects.get()
    assert reminder.idempotency_key.endswith(":2026-12-31") and reminder.kind == Kind.REMINDER


def test_no_reminder_is_caught_up_beyond_the_catch_up_days_or_after_its_event(rule, amsterdam, settings):
    settings.REMINDER_CATCH_UP_DAYS = 3
    assert tick(at(2026, 12, 5, 12)) == 0  # four days late
    on_the_day = ReminderRuleFactory.create(event=ReminderRule.Event.RENEWAL, days_before=0)
    assert tick(at(2027, 1, 1, 12)) == 0  # the renewal itself was yesterday
    assert not Delivery.objects.filter(idempotency_key__contains=f":{on_the_day.pk}:").exists()
