from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cadence.announcements import (
    announcement_audience,
    announcement_confirm,
    announcement_expand,
    announcement_progress,
    announcement_resume,
)
from cadence.batch import batch_send
from cadence.kinds import Kind
from cadence.models import Announcement
from messaging.models import Delivery
from preferences.models import Contact
from tests.factories import AnnouncementFactory, ContactFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def population() -> dict[str, Contact]:
    """Customers of every value, with and without marketing consent, and people who must not be reached."""
    people = {
        "low_value": ContactFactory.create(
            share_of_customer=3, potential=Contact.Potential.NONE, frequency="quarterly"
        ),
        "high_value": ContactFactory.create(share_of_customer=90, potential=Contact.Potential.HIGH),
        "unsubscribed_customer": ContactFactory.create(share_of_customer=40, status=Contact.Status.UNSUBSCRIBED),
        "paused_customer": ContactFactory.create(
            share_of_customer=20, paused_until=timezone.now() + timedelta(days=60)
        ),
        "product_holder": ContactFactory.create(share_of_customer=0, status=Contact.Status.PENDING, confirmed_at=None),
        "suppressed_customer": ContactFactory.create(share_of_customer=60, suppressed_at=timezone.now()),
        "prospect": ContactFactory.create(share_of_customer=0, potential=Contact.Potential.HIGH),
        "former_customer": ContactFactory.create(share_of_customer=0, status=Contact.Status.UNSUBSCRIBED),
    }
    ProductFactory.create(contact=people["product_holder"], name="Savings account")
    ProductFactory.create(contact=people["former_customer"], ends_on=date(2020, 1, 1))
    return people


def emails(people: dict[str, Contact], *names: str) -> set[str]:
    return {people[name].email for name in names}


def sent_to() -> set[str]:
    """Every recipient handed to the ESP (a batch send carries several in one message)."""
    return {address for message in mail.outbox for address in message.to}


def recipients_count() -> int:
    return sum(len(message.to) for message in mail.outbox)


def change_page(admin_client, announcement: Announcement) -> str:
    return admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/change/").content.decode()


def test_a_service_announcement_reaches_every_customer_whatever_their_value_and_no_suppressed_one(
    admin_client, population, celery_eager, django_capture_on_commit_callbacks
):
    announcement = AnnouncementFactory.create(
        kind=Announcement.Kind.SERVICE, audience=Announcement.Audience.ALL_CUSTOMERS
    )
    expected = emails(
        population, "low_value", "high_value", "unsubscribed_customer", "paused_customer", "product_holder"
    )

    confirm_page = admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/confirm/").content.decode()
    assert "will go to <strong>5</strong> recipients" in confirm_page
    assert mail.outbox == []
    # Confirming runs the expansion and every send through the real task functions (eagerly).
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/cadence/announcement/{announcement.pk}/confirm/", {"confirm": "yes"})
    assert response.status_code == 302

    assert sent_to() == expected
    assert recipients_count() == 5
    message = mail.outbox[0]
    assert message.subject == "Our app was down" and "List-Unsubscribe" not in message.extra_headers
    page = change_page(admin_client, announcement)
    announcement.refresh_from_db()
    assert announcement.audience_count == 5 and announcement.created_count == 5
    assert "queued 0 · sending 0 · sent 5 · failed 0 · skipped 0" in page
    assert announcement.status == Announcement.Status.DONE
    assert Delivery.objects.filter(kind=Kind.ANNOUNCEMENT, status=Delivery.Status.SENT).count() == 5


def test_a_marketing_announcement_needs_consent_and_carries_list_unsubscribe(population):
    announcement = AnnouncementFactory.create(
        kind=Announcement.Kind.MARKETING, audience=Announcement.Audience.ALL_CONTACTS
    )
    assert announcement_confirm(announcement=announcement, confirmed_by="marketer")
    announcement_expand(announcement_id=announcement.pk, enqueue_sends=lambda ids: None)
    # The high-value customer unsubscribes after the expansion: consent is checked again at send time.
    Contact.objects.filter(pk=population["high_value"].pk).update(status=Contact.Status.UNSUBSCRIBED)
    for delivery in Delivery.objects.all():
        batch_send(delivery_ids=[delivery.id])

    assert sent_to() == emails(population, "low_value", "prospect")
    assert all("List-Unsubscribe" in m.extra_headers for m in mail.outbox)
    assert all(m.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in mail.outbox)
    skipped = Delivery.objects.get(contact=population["high_value"])
    assert skipped.status == Delivery.Status.CANCELLED and skipped.error.startswith("no consent")


def test_an_announcement_speaks_each_contacts_language(population):
    Contact.objects.filter(pk=population["high_value"].pk).update(locale="nl")
    announcement = AnnouncementFactory.create(audience=Announcement.Audience.ALL_CUSTOMERS)
    announcement_confirm(announcement=announcement, confirmed_by="marketer")
    announcement_expand(announcement_id=announcement.pk, enqueue_sends=lambda ids: None)
    batch_send(delivery_ids=[Delivery.objects.get(contact=population["high_value"]).id])
    assert mail.outbox[0].subject == "Onze app was onbereikbaar"
    assert "Uw geld was altijd veilig." in mail.outbox[0].body


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"segment_potential": Contact.Potential.HIGH}, {"high_value", "prospect"}),
        ({"segment_lifecycle": Announcement.Lifecycle.PROSPECT}, {"prospect"}),
        (
            {"segment_lifecycle": Announcement.Lifecycle.CUSTOMER},
            {"low_value", "high_value", "unsubscribed_customer", "paused_customer", "product_holder"},
        ),
    ],
)
def test_segments_filter_by_potential_and_lifecycle(population, filters, expected):
    announcement = AnnouncementFactory.create(audience=Announcement.Audience.SEGMENT, **filters)
    assert set(announcement_audience(announcement)) == {population[name] for name in expected}


def test_a_segment_can_be_one_topic(population, topics):
    population["prospect"].topics.set([topics[1]])
    announcement = AnnouncementFactory.create(audience=Announcement.Audience.SEGMENT, segment_topic=topics[1])
    assert list(announcement_audience(announcement)) == [population["prospect"]]


def test_the_expansion_walks_the_audience_in_batches_and_resumes_without_duplicates(population):
    announcement = AnnouncementFactory.create(audience=Announcement.Audience.ALL_CUSTOMERS)
    announcement_confirm(announcement=announcement, confirmed_by="marketer")
    enqueued: list[list[str]] = []

    # A zero time budget stops after every batch, as a worker restart would.
    rounds = 0
    while not announcement_expand(
        announcement_id=announcement.pk, enqueue_sends=enqueued.append, batch_size=2, time_budget=0
    ):
        rounds += 1
    assert rounds == 3  # 5 contacts in batches of 2, then one empty read that finishes
    assert announcement_expand(announcement_id=announcement.pk, enqueue_sends=enqueued.append)

    announcement.refresh_from_db()
    assert announcement.created_count == 5 and announcement.expanded_at is not None
    keys = list(Delivery.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 5
    assert all(re.fullmatch(rf"announcement:{announcement.pk}:[0-9a-f-]{{36}}", key) for key in keys)


def test_an_announcement_is_confirmed_once_and_then_locked(admin_client, population):
    announcement = AnnouncementFactory.create()
    assert announcement_confirm(announcement=announcement, confirmed_by="one")
    assert not announcement_confirm(announcement=announcement, confirmed_by="two")
    response = admin_client.post(f"/admin/cadence/announcement/{announcement.pk}/confirm/", {"confirm": "yes"})
    assert response.status_code == 302
    announcement.refresh_from_db()
    assert announcement.confirmed_by == "one"
    assert 'name="subject_en"' not in change_page(admin_client, announcement)


def test_the_draft_page_shows_how_many_will_receive_it(admin_client, population):
    announcement = AnnouncementFactory.create(audience=Announcement.Audience.ALL_CUSTOMERS)
    page = change_page(admin_client, announcement)
    assert re.search(r"5 <a class=\"button\" href=\"/admin/cadence/announcement/\d+/confirm/\"", page)


def test_the_admin_pages_for_announcements_rules_products_and_erased_addresses_open(admin_client, population):
    contact = population["product_holder"]
    for url in [
        "/admin/cadence/announcement/add/",
        "/admin/cadence/announcement/",
        "/admin/cadence/reminderrule/add/",
        "/admin/preferences/suppressionentry/",
        "/admin/preferences/product/",
        f"/admin/preferences/contact/{contact.pk}/change/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert "Savings account" in admin_client.get(f"/admin/preferences/contact/{contact.pk}/change/").content.decode()


def test_resuming_after_a_lost_broker_sends_what_is_still_queued_once(population):
    announcement = AnnouncementFactory.create(audience=Announcement.Audience.ALL_CUSTOMERS)
    announcement_confirm(announcement=announcement, confirmed_by="marketer")
    announcement_expand(announcement_id=announcement.pk, enqueue_sends=lambda ids: None)  # the sends are lost
    first = Delivery.objects.order_by("id").first()
    batch_send(delivery_ids=[first.id])
    announcement.refresh_from_db()

    resent: list[str] = []
    expansions: list[int] = []
    assert (
        announcement_resume(
            announcement=announcement, enqueue_expand=expansions.append, enqueue_sends=resent.extend, batch_size=2
        )
        == 4
    )
    assert expansions == [] and str(first.id) not in resent
    for delivery_id in resent + resent:  # a duplicate enqueue is harmless
        batch_send(delivery_ids=[delivery_id])
    assert recipients_count() == 5
    assert announcement_progress(announcement)["sent"] == 5
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.DONE
