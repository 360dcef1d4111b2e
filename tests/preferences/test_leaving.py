"""The way out: only less frequent options, a pause, per-topic stops, and an optional one-tap reason."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from preferences.models import Contact, LeaveFeedback
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def url(contact: Contact) -> str:
    return f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/"


def offered_frequencies(body: str) -> list[str]:
    return re.findall(r'name="frequency" value="(\w+)"', body)


@pytest.mark.parametrize(
    ("potential", "chosen", "offered"),
    [
        ("high", "biweekly", ["monthly", "quarterly"]),
        ("high", "monthly", ["quarterly"]),
        ("high", "quarterly", []),
        # A policy applies monthly to a low-potential contact who chose every 2 weeks: less than that is quarterly.
        ("low", "biweekly", ["quarterly"]),
    ],
)
def test_less_often_offers_only_less_frequent_options_than_the_one_applied(client, potential, chosen, offered):
    contact = ContactFactory(potential=potential, frequency=chosen)
    body = client.get(url(contact)).content.decode()
    assert offered_frequencies(body) == offered
    assert "Pause for 3 months" in body


def test_someone_on_the_least_frequent_cadence_is_not_offered_the_same_again(client):
    contact = ContactFactory(frequency="quarterly")
    body = client.get(url(contact)).content.decode()
    assert "Hear from us less often" not in body
    response = client.post(url(contact), {"action": "less_often", "frequency": "quarterly"})
    assert response.status_code == 400
    assert not LeaveFeedback.objects.exists()


def test_choosing_less_often_is_recorded_as_a_save(client):
    contact = ContactFactory(frequency="biweekly", source="homepage")
    body = client.post(url(contact), {"action": "less_often", "frequency": "monthly"}).content.decode()
    contact.refresh_from_db()
    assert contact.frequency == "monthly" and contact.status == Contact.Status.CONFIRMED
    assert "From now on we will email you: monthly." in body
    feedback = LeaveFeedback.objects.get()
    assert feedback.outcome == LeaveFeedback.Outcome.LESS_OFTEN and feedback.is_save
    assert feedback.contact_source == "homepage" and feedback.reason == ""


def test_a_pause_on_the_way_out_keeps_the_subscription(client):
    contact = ContactFactory()
    with time_machine.travel("2026-01-31 10:00Z", tick=False):
        body = client.post(url(contact), {"action": "pause", "months": "3"}).content.decode()
    contact.refresh_from_db()
    assert contact.paused_until.date().isoformat() == "2026-04-30"
    assert "30 April 2026" in body
    assert LeaveFeedback.objects.get().outcome == LeaveFeedback.Outcome.PAUSE


def test_stopping_one_topic_keeps_the_others(client, topics):
    contact = ContactFactory(topics=topics[:2])
    body = client.get(url(contact)).content.decode()
    assert 'name="drop" value="saving"' in body and 'name="drop" value="mortgage"' in body

    body = client.post(url(contact), {"action": "fewer_topics", "drop": ["saving"]}).content.decode()
    assert list(contact.topics.values_list("slug", flat=True)) == ["mortgage"]
    assert "You will only hear about: Mortgages." in body
    assert LeaveFeedback.objects.get().outcome == LeaveFeedback.Outcome.FEWER_TOPICS


def test_stopping_every_topic_is_not_mistaken_for_leaving(client, topics):
    contact = ContactFactory(topics=topics[:2])
    response = client.post(url(contact), {"action": "fewer_topics", "drop": ["saving", "mortgage"]})
    assert response.status_code == 400
    assert "To stop all our emails" in response.content.decode()
    assert contact.topics.count() == 2 and not LeaveFeedback.objects.exists()


def test_leaving_then_giving_a_reason_in_one_tap(client):
    contact = ContactFactory(source="partner-site")
    body = client.post(url(contact), {"action": "unsubscribe"}).content.decode()
    assert 'name="reason" value="too_often"' in body and 'name="reason" value="never_signed_up"' in body

    body = client.post(url(contact), {"action": "reason", "reason": "too_often"}).content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    assert "Thank you for telling us." in body
    feedback = LeaveFeedback.objects.get()
    assert (feedback.outcome, feedback.reason, feedback.contact_source) == ("left", "too_often", "partner-site")


def test_a_reason_post_never_unsubscribes(client):
    contact = ContactFactory()
    client.post(url(contact), {"action": "reason", "reason": "other"})
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED
    assert not LeaveFeedback.objects.exists()


def test_a_late_reason_does_not_rewrite_an_old_choice(client):
    contact = ContactFactory()
    client.post(url(contact), {"action": "unsubscribe"})
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        client.post(url(contact), {"action": "reason", "reason": "other"})
    assert LeaveFeedback.objects.get().reason == ""


def test_one_click_unsubscribe_is_recorded_as_leaving_without_a_reason(client):
    contact = ContactFactory()
    client.post(url(contact), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    feedback = LeaveFeedback.objects.get()
    assert feedback.outcome == LeaveFeedback.Outcome.LEFT and feedback.reason == ""


def test_leaving_from_the_preference_centre_asks_the_reason_too(client):
    contact = ContactFactory()
    page = f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/"
    body = client.post(page, {"action": "unsubscribe"}).content.decode()
    assert 'name="reason" value="not_relevant"' in body
    client.post(page, {"action": "reason", "reason": "not_relevant"})
    assert LeaveFeedback.objects.get().reason == "not_relevant"
