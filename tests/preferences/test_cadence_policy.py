from __future__ import annotations

import pytest
from django.utils import timezone

from cadence.models import Schedule
from cadence.schedules import nurture_due, schedule_start
from cadence.tick import schedules_claim_due
from preferences.models import CadencePolicy, Contact
from preferences.policy import allowed_frequencies, effective_frequency
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("potential", "max_frequency", "welcome_only", "chosen", "allowed", "effective"),
    [
        ("high", "", False, "biweekly", ["biweekly", "monthly", "quarterly"], "biweekly"),
        ("low", "monthly", False, "biweekly", ["monthly", "quarterly"], "monthly"),
        ("low", "monthly", False, "quarterly", ["monthly", "quarterly"], "quarterly"),
        ("none", "quarterly", False, "biweekly", ["quarterly"], "quarterly"),
        ("none", "", True, "monthly", ["quarterly"], "quarterly"),
    ],
)
def test_the_policy_caps_the_cadence_but_never_silences(
    potential, max_frequency, welcome_only, chosen, allowed, effective
):
    CadencePolicy.objects.update_or_create(
        potential=potential, defaults={"max_frequency": max_frequency, "welcome_only": welcome_only}
    )
    contact = ContactFactory(potential=potential, frequency=chosen)
    assert [f.key for f in allowed_frequencies(contact)] == allowed
    assert effective_frequency(contact).key == effective


def test_the_default_policies_slow_down_contacts_without_potential():
    assert effective_frequency(ContactFactory(potential="none", frequency="biweekly")).key == "quarterly"
    assert effective_frequency(ContactFactory(potential="low", frequency="biweekly")).key == "monthly"
    assert effective_frequency(ContactFactory(potential="high", frequency="biweekly")).key == "biweekly"


@pytest.mark.parametrize(("potential", "least_days"), [(Contact.Potential.NONE, 90), (Contact.Potential.HIGH, 13)])
def test_the_cadence_engine_schedules_by_the_policy(django_capture_on_commit_callbacks, potential, least_days):
    """A biweekly choice is capped to quarterly for potential "none" (the seeded policy), not for "high"."""
    contact = ContactFactory(potential=potential, frequency="biweekly")
    now = timezone.now()
    schedule_start(contact=contact)
    # Past the welcome series, last mailed long ago: the tick claims a nurture mail and moves the schedule.
    Schedule.objects.filter(contact=contact).update(
        welcome_step=10, next_due_at=now, last_sent_at=now - timezone.timedelta(days=200)
    )
    with django_capture_on_commit_callbacks():
        assert schedules_claim_due(now=now).claimed == 1
    moved = Schedule.objects.get(contact=contact).next_due_at
    assert least_days <= (moved - now).days <= least_days + 2
    exact = nurture_due(contact=contact, last_sent_at=now, now=now)
    assert (exact - now).days >= least_days
    if potential == Contact.Potential.HIGH:
        assert (exact - now).days < 30


def test_the_preference_centre_offers_only_allowed_frequencies(client, topics):
    contact = ContactFactory(potential="low", frequency="biweekly", topics=topics[:1])
    url = f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/"
    body = client.get(url).content.decode()
    assert 'value="monthly"' in body and 'value="biweekly"' not in body

    response = client.post(url, {"action": "save", "topics": ["saving"], "frequency": "biweekly", "locale": "en"})
    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.frequency == "biweekly"  # unchanged; the engine applies monthly anyway


def test_a_policy_capped_contact_is_told_what_is_offered_and_why(client, topics):
    contact = ContactFactory(potential="low", frequency="biweekly", topics=topics[:1], locale="en")
    body = client.get(f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/").content.decode()
    assert "You chose: every 2 weeks. For now we email you monthly." in body
    assert "At the moment we offer you these emails at most monthly" in body
    assert "not something you did" in body


def test_a_contact_without_a_cap_reads_no_policy_note(client, topics):
    contact = ContactFactory(potential="high", frequency="biweekly", topics=topics[:1], locale="en")
    body = client.get(f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/").content.decode()
    assert "At the moment we offer you" not in body


def test_a_capped_contacts_mail_states_the_frequency_really_applied(topics):
    from django.core import mail

    from cadence.batch import batch_send

    contact = ContactFactory(potential="low", frequency="biweekly", topics=topics[:1], locale="en")
    delivery = DeliveryFactory.create(contact=contact, kind="welcome")
    batch_send(delivery_ids=[delivery.id])
    body = mail.outbox[0].body
    assert "We email you monthly" in body and "every 2 weeks" not in body
