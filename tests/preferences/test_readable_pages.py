"""Pages a person can read: marked errors, and their data in plain words next to the JSON."""

from __future__ import annotations

import re

import pytest

from cadence.models import ContactHealth
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_a_signup_error_marks_the_field_and_points_at_its_message(client, topics):
    body = client.post("/subscribe/?lang=en", {"email": "not-an-address", "topics": ["saving"]}).content.decode()
    email_input = re.search(r'<input type="email" name="email"[^>]*>', body).group(0)
    assert 'aria-invalid="true"' in email_input and 'aria-describedby="id_email_errors"' in email_input
    assert 'id="id_email_errors"' in body
    consent = re.search(r'<input type="checkbox" name="consent"[^>]*>', body).group(0)
    assert 'aria-describedby="id_consent_errors"' in consent and 'id="id_consent_errors"' in body


def test_the_data_page_explains_codes_and_writes_dates_out(client, topics):
    contact = ContactFactory(locale="en", potential="low", share_of_customer=40, topics=[topics[0]])
    ProductFactory(contact=contact, name="Home insurance", renews_on="2027-03-01")
    ContactHealth.objects.create(contact=contact, state="at_risk", reasons=["bounces", "topics_dropped"])
    url = f"/dossier/{make_token(contact, Purpose.DOSSIER)}/"
    response = client.post(url, {"action": "show"})
    body = response.content.decode()

    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert "Our own estimate of how well our products may suit you" in body and "<dd>low" in body
    assert "how much of your business in our kind of products you do with us" in body and "40%" in body
    assert "at risk: several signs that our emails do not fit you" in body
    assert "emails to your address came back, you chose fewer topics" in body
    assert "1 March 2027" in body and "2027-03-01" not in body
    assert "at_risk" not in body and "topics_dropped" not in body
    assert "This link has now been used" in body  # the one-time link is spent
