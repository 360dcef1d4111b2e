from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from cadence.guard import silence_count
from cadence.models import Schedule
from messaging.models import Delivery, DeliveryEvent, DeliveryMonthlyCount
from messaging.retention import deliveries_monthly_totals, deliveries_prune
from tests.factories import ContactFactory, DeliveryEventFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


def make_delivery(contact, n: int, age_days: int, status: str = Delivery.Status.SENT) -> Delivery:
    created = timezone.now() - timedelta(days=age_days)
    delivery = DeliveryFactory.create(
        contact=contact,
        idempotency_key=f"nurture:{contact.id}:{n}",
        status=status,
        created_at=created,
        sent_at=created if status == Delivery.Status.SENT else None,
    )
    DeliveryEventFactory.create(delivery=delivery, esp_name="test", occurred_at=created)
    return delivery


@pytest.fixture
def history(settings):
    """Two contacts with deliveries over two years; the second was last mailed long ago (silent)."""
    settings.DELIVERY_RETENTION_DAYS = 400
    recent, old = ContactFactory(), ContactFactory()
    for n, age in enumerate([10, 40, 380, 420, 450, 700]):
        make_delivery(recent, n, age)
    make_delivery(old, 100, 500)
    make_delivery(old, 101, 600, status=Delivery.Status.CANCELLED)
    make_delivery(old, 102, 650, status=Delivery.Status.QUEUED)  # stuck for ages: left for the guard
    now = timezone.now()
    Schedule.objects.create(contact=recent, next_due_at=now + timedelta(days=20), last_sent_at=now - timedelta(days=10))
    Schedule.objects.create(contact=old, next_due_at=now, last_sent_at=now - timedelta(days=500))
    return recent, old


def test_pruning_removes_old_deliveries_and_events_in_batches_and_keeps_the_monthly_totals(history):
    totals_before = deliveries_monthly_totals()
    silence_before = silence_count()

    result = deliveries_prune(batch_size=2)

    assert result.done and result.deliveries == 5 and result.events == 5 and result.batches == 3
    ages = sorted((timezone.now() - d.created_at).days for d in Delivery.objects.all())
    assert ages == [10, 40, 380, 650]  # the queued one is not finished: never pruned
    assert DeliveryEvent.objects.count() == 4
    assert sum(DeliveryMonthlyCount.objects.values_list("count", flat=True)) == 5
    assert deliveries_monthly_totals() == totals_before
    assert silence_count() == silence_before and silence_before.silent == 1
    # A second run finds nothing and changes nothing.
    assert deliveries_prune().deliveries == 0 and deliveries_monthly_totals() == totals_before


def test_a_run_stops_when_its_time_is_up(history):
    result = deliveries_prune(batch_size=1, max_seconds=0)
    assert result.deliveries == 0 and not result.done
    assert Delivery.objects.count() == 9


def test_the_command_prunes(history, capsys):
    call_command("prune_deliveries", "--batch-size", "100")
    assert "5 deliveries and 5 events pruned in 1 batches" in capsys.readouterr().out


def test_processed_webhook_posts_are_pruned_and_quarantined_ones_kept(settings):
    """The nightly job deletes posts processed EVENT_POST_RETENTION_DAYS ago; new and quarantined posts stay."""
    from messaging.models import EventPost
    from messaging.tasks import deliveries_prune as nightly

    settings.EVENT_POST_RETENTION_DAYS = 14
    now = timezone.now()

    def stored(state: str, processed_days_ago: int | None) -> EventPost:
        processed_at = None if processed_days_ago is None else now - timedelta(days=processed_days_ago)
        return EventPost.objects.create(esp="postmark", body=b"{}", state=state, processed_at=processed_at)

    old = stored(EventPost.State.PROCESSED, 15)
    recent = stored(EventPost.State.PROCESSED, 13)
    quarantined = stored(EventPost.State.QUARANTINED, 400)
    waiting = stored(EventPost.State.NEW, None)
    assert nightly()["event_posts"] == 1
    assert set(EventPost.objects.values_list("id", flat=True)) == {recent.id, quarantined.id, waiting.id}
    assert not EventPost.objects.filter(id=old.id).exists()
