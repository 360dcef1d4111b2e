"""The marketers' admin names contacts by address, finds them by the start of a name, and shows their cadence."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from cadence.models import ContactHealth, Schedule, WelcomeStep
from preferences.models import CadencePolicy, ConsentEvent, Contact
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/preferences/contact/"


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


def test_a_contact_is_named_by_address_on_its_page_and_in_every_list_about_contacts(staff):
    contact = ContactFactory(email="noor@example.com")
    Schedule.objects.create(contact=contact, next_due_at=timezone.now())
    ContactHealth.objects.create(contact=contact, state="cooling")
    ConsentEvent.objects.create(contact=contact, kind=ConsentEvent.Kind.CONFIRMED)
    DeliveryFactory.create(contact=contact)
    page = staff.get(f"/admin/preferences/contact/{contact.pk}/change/").content.decode()
    assert "<title>noor@example.com |" in page
    for url in [
        "/admin/cadence/schedule/",
        "/admin/cadence/contacthealth/",
        "/admin/preferences/consentevent/",
        "/admin/messaging/delivery/",
    ]:
        visible_text = re.sub(r"<[^>]*>", " ", staff.get(url).content.decode())
        assert "noor@example.com" in visible_text, url
        assert str(contact.pk) not in visible_text, url


def test_search_finds_contacts_by_the_start_of_an_address_or_a_first_name(staff):
    anna = ContactFactory(email="anna.jansen@example.com", first_name="Anna")
    bram = ContactFactory(email="bram@example.org", first_name="Bram")
    ContactFactory(email="joanna@example.com", first_name="Joanna")
    for contact in (anna, bram):
        ConsentEvent.objects.create(contact=contact, kind=ConsentEvent.Kind.CONFIRMED)
    by_address = staff.get(CHANGELIST, {"q": "Anna.J"}).content.decode()
    assert "anna.jansen@example.com" in by_address and "joanna@" not in by_address
    by_name = staff.get(CHANGELIST, {"q": "bra"}).content.decode()
    assert "bram@example.org" in by_name and "anna.jansen@" not in by_name
    ledger = staff.get("/admin/preferences/consentevent/", {"q": "BRAM@"}).content.decode()
    assert "bram@example.org" in ledger and "anna.jansen@" not in ledger


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the prefix indexes are PostgreSQL's")
def test_the_prefix_searches_are_served_by_indexes(staff):
    ContactFactory(email="anna@example.com", first_name="Anna")
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    request = RequestFactory().get(CHANGELIST)
    request.user = User.objects.get(username="marketer")
    admin = site._registry[Contact]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        for term in ["ann", "anna@exa"]:
            queryset, _distinct = admin.get_search_results(request, Contact.objects.order_by(), term)
            plan = queryset.only("pk").explain()
            assert "Seq Scan" not in plan, plan
        cursor.execute("SET enable_seqscan = on")


def test_the_contact_list_shows_frequency_in_effect_last_mail_next_due_and_silence(staff):
    now = timezone.now()
    CadencePolicy.objects.update_or_create(
        potential="low", defaults={"max_frequency": "quarterly", "welcome_only": False}
    )
    capped = ContactFactory(email="capped@example.com", potential="low", frequency="biweekly")
    Schedule.objects.create(contact=capped, next_due_at=now + timedelta(days=3), last_sent_at=now - timedelta(days=5))
    silent = ContactFactory(email="silent@example.com", frequency="monthly")
    Schedule.objects.create(contact=silent, next_due_at=now - timedelta(days=20), last_sent_at=now - timedelta(days=90))
    body = staff.get(CHANGELIST).content.decode()
    assert "Quarterly <small>(chose every 2 weeks; policy)</small>" in body
    assert "column-last_marketing_mail" in body and "column-next_due" in body
    silent_rows = staff.get(CHANGELIST, {"silence": "silent"}).content.decode()
    assert "silent@example.com" in silent_rows and "capped@example.com" not in silent_rows


def test_the_contact_page_never_says_no_mail_yet_beside_a_last_marketing_mail(staff):
    contact = ContactFactory()
    Schedule.objects.create(
        contact=contact, next_due_at=timezone.now(), last_sent_at=timezone.now() - timedelta(days=3)
    )
    body = staff.get(f"/admin/preferences/contact/{contact.pk}/change/").content.decode()
    assert "No mail yet." not in body
    assert "No delivery on record here" in body


def test_a_frequency_that_is_not_offered_is_refused_on_the_contact_page(staff):
    contact = ContactFactory()
    data = {
        "email": contact.email,
        "first_name": "Sam",
        "locale": "en",
        "time_zone": "Europe/Amsterdam",
        "status": "confirmed",
        "frequency": "montly",
        "share_of_customer": "0",
        "potential": "medium",
        "products-TOTAL_FORMS": "0",
        "products-INITIAL_FORMS": "0",
    }
    response = staff.post(f"/admin/preferences/contact/{contact.pk}/change/", data)
    assert response.status_code == 200
    assert "Select a valid choice. montly is not one of the available choices." in response.content.decode()
    contact.refresh_from_db()
    assert contact.frequency == "monthly"


def test_a_welcome_step_with_a_template_that_does_not_exist_is_refused_with_the_list_of_messages(staff):
    response = staff.post(
        "/admin/cadence/welcomestep/add/",
        {"position": "7", "delay": "1 00:00:00", "template": "welcom_typo", "is_active": "on"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "“welcom_typo” is not a message. The messages that exist: welcome, welcome_expect, welcome_picks." in body
    assert not WelcomeStep.objects.filter(position=7).exists()
    accepted = staff.post(
        "/admin/cadence/welcomestep/add/",
        {"position": "7", "delay": "1 00:00:00", "template": "welcome_picks", "is_active": "on"},
    )
    assert accepted.status_code == 302 and WelcomeStep.objects.get(position=7).template == "welcome_picks"


def test_a_policy_cap_is_a_choice_of_the_configured_frequencies(staff):
    response = staff.post("/admin/preferences/cadencepolicy/add/", {"potential": "none", "max_frequency": "mothly"})
    assert "Select a valid choice. mothly is not one of the available choices." in response.content.decode()


def test_the_capped_count_of_the_contact_list_does_not_compute_the_display_columns(staff):
    from django.test.utils import CaptureQueriesContext

    ContactFactory()
    with CaptureQueriesContext(connection) as queries:
        staff.get(CHANGELIST)
    counts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    assert counts and all("cadence_schedule" not in sql and "cadencepolicy" not in sql for sql in counts)
