from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cadence.kinds import Kind
from cadence.models import ContactHealth, Schedule
from messaging.models import Delivery
from preferences.models import ConsentEvent, Contact, Conversion
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db
SIZE = 3000


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


@pytest.fixture
def many_contacts(db) -> list[Contact]:
    """SIZE contacts with health rows, schedules, a few conversions and deliveries."""
    now = timezone.now()
    potentials = ["high", "medium", "low", "none"]
    contacts = [
        Contact(
            email=f"p{i}@example.com",
            external_id=f"crm-{i}",
            potential=potentials[i % 4],
            share_of_customer=10 if i % 10 == 0 else 0,
            status=Contact.Status.CONFIRMED,
            confirmed_at=now - timedelta(days=i % 400),
            created_at=now - timedelta(days=i % 400),
            source=["website", "branch", "app"][i % 3],
        )
        for i in range(SIZE)
    ]
    Contact.objects.bulk_create(contacts, batch_size=1000)
    ContactHealth.objects.bulk_create(
        [
            ContactHealth(contact=c, state=["healthy", "cooling", "at_risk", "lost"][i % 4])
            for i, c in enumerate(contacts)
        ]
    )
    Schedule.objects.bulk_create(
        [Schedule(contact=c, next_due_at=now - timedelta(days=i % 30)) for i, c in enumerate(contacts)]
    )
    Conversion.objects.bulk_create(
        [
            Conversion(
                contact=c,
                potential=c.potential,
                contact_source=c.source,
                signed_up_at=c.created_at,
                days_as_prospect=5,
                converted_at=now - timedelta(days=i % 300),
            )
            for i, c in enumerate(contacts)
            if i % 10 == 0
        ]
    )
    return contacts


CHANGELIST = "/admin/preferences/contact/"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=confirmed",
        "?lifecycle=prospect",
        "?lifecycle=customer",
        "?potential__exact=high",
        "?frequency=monthly",
        "?locale__exact=en",
        "?health=cooling",
        "?potential__exact=none&health=lost&lifecycle=prospect",
        "?q=p17%40example.com",
        "?q=crm-17",
        "?p=3",
    ],
)
def test_the_contact_list_needs_a_bounded_number_of_queries(staff, many_contacts, query, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        response = staff.get(CHANGELIST + query)
    assert response.status_code == 200


def test_the_list_count_is_capped_and_search_is_exact(staff, many_contacts, settings):
    settings.ADMIN_COUNT_CAP = 1000
    body = staff.get(CHANGELIST).content.decode()
    assert "more than 1000 contacts" in body
    body = staff.get(CHANGELIST + "?q=P17%40Example.com").content.decode()
    assert "p17@example.com" in body and "p170@example.com" not in body
    assert "1 contact" in body
    contact = many_contacts[5]
    assert str(contact.email) in staff.get(CHANGELIST + f"?q={contact.pk}").content.decode()


def test_the_contact_page_shows_ledger_deliveries_schedule_and_health_bounded(staff, django_assert_max_num_queries):
    contact = ContactFactory()
    for i in range(80):
        ConsentEvent.objects.create(contact=contact, kind=ConsentEvent.Kind.PREFERENCES, source=f"s{i}")
        DeliveryFactory.create(contact=contact, template="x")
    Schedule.objects.create(contact=contact, next_due_at=timezone.now())
    ContactHealth.objects.create(contact=contact, state="cooling", reasons=["no_engagement"])
    with django_assert_max_num_queries(25):
        response = staff.get(f"/admin/preferences/contact/{contact.pk}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<td>s79</td>" in body and "<td>s10</td>" not in body  # the latest 50 ledger entries
    assert body.count("/admin/messaging/delivery/") >= 20
    assert "no opens or clicks for a long time" in body


def test_the_dashboard_shows_counts_and_charts_with_few_queries(staff, many_contacts, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        response = staff.get("/admin/dashboard/?refresh=1")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('<svg role="img"') == 3  # prospects, conversions, rate by source
    assert 'src="http' not in body and 'href="http' not in body  # nothing from a CDN
    assert ">2700</a>" in body and ">300</a>" in body  # prospects and customers
    assert ">750</a>" in body  # each potential and health state
    assert "Marketing dashboard" in staff.get("/admin/").content.decode()


def test_bulk_actions_set_potential_pause_and_resend_welcome(staff, django_capture_on_commit_callbacks):
    contacts = [ContactFactory(potential="medium") for _ in range(3)]
    ids = [str(c.pk) for c in contacts]
    staff.post(CHANGELIST, {"action": "set_potential_none", "_selected_action": ids})
    assert set(Contact.objects.values_list("potential", flat=True)) == {"none"}

    staff.post(CHANGELIST, {"action": "pause", "_selected_action": ids[:2]})
    assert Contact.objects.filter(paused_until__isnull=False).count() == 2
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.PAUSED, source="admin").count() == 2

    staff.post(CHANGELIST, {"action": "resend_welcome", "_selected_action": ids})
    assert Delivery.objects.filter(kind=Kind.WELCOME).count() == 3


def test_changing_the_share_in_the_admin_records_a_conversion(staff):
    contact = ContactFactory()
    data = {
        "email": contact.email,
        "first_name": "Sam",
        "locale": "en",
        "time_zone": "Europe/Amsterdam",
        "status": "confirmed",
        "frequency": "monthly",
        "source": "",
        "external_id": "",
        "share_of_customer": "40",
        "potential": "medium",
        "service_reminders": "on",
        "products-TOTAL_FORMS": "0",
        "products-INITIAL_FORMS": "0",
    }
    response = staff.post(f"/admin/preferences/contact/{contact.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Conversion.objects.get(contact=contact).source == "admin:marketer"


def test_a_topic_preview_renders_a_mail_for_a_chosen_contact(staff, topics):
    contact = ContactFactory(locale="nl", first_name="Noor", external_id="crm-9")
    response = staff.get(
        f"/admin/preferences/topic/{topics[0].pk}/preview/", {"contact": "crm-9", "template": "reengagement"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Sparen" in body and "Noor" in body
    missing = staff.get(
        f"/admin/preferences/topic/{topics[0].pk}/preview/", {"contact": str(uuid.uuid4()), "template": "welcome"}
    )
    assert "No contact with this address or id." in missing.content.decode()
    assert contact.deliveries.count() == 0


IMPORT_BAD = (
    "external_id,email,first_name,locale,share_of_customer,potential,source\n"
    "crm-1,anna@example.com,Anna,nl,0,high,branch\n"
    "crm-2,not-an-address,Bram,en,25,low,website\n"
)


def test_the_admin_import_reports_bad_rows_and_offers_no_confirmation(staff):
    upload = SimpleUploadedFile("contacts.csv", IMPORT_BAD.encode(), content_type="text/csv")
    response = staff.post("/admin/preferences/contact/import/", {"import_file": upload, "format": "0"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid email address." in body and "process_import" not in body
    assert not Contact.objects.exists()


def test_the_admin_import_can_skip_bad_rows_after_a_dry_run(staff):
    upload = SimpleUploadedFile("contacts.csv", IMPORT_BAD.encode(), content_type="text/csv")
    response = staff.post(
        "/admin/preferences/contact/import/", {"import_file": upload, "format": "0", "skip_bad_rows": "on"}
    )
    body = response.content.decode()
    assert "Bad rows that will be skipped" in body and "Line 3" in body
    assert not Contact.objects.exists()  # a dry run so far
    confirm = response.context["confirm_form"]
    data = {name: confirm[name].value() for name in confirm.fields}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v not in (None, False)}
    response = staff.post("/admin/preferences/contact/process_import/", data, follow=True)
    assert list(Contact.objects.values_list("external_id", flat=True)) == ["crm-1"]
    assert "Line 3 skipped" in response.content.decode()


def test_export_follows_the_filters_of_the_list(staff):
    ContactFactory(email="high@example.com", potential="high")
    ContactFactory(email="low@example.com", potential="low")
    response = staff.post(
        "/admin/preferences/contact/export/?potential__exact=high",
        {"format": "0", "resource": "0", **{f"contactresource_{f}": "on" for f in ["email", "potential", "lifecycle"]}},
    )
    body = response.content.decode()
    assert response.status_code == 200, body[:3000]
    assert "high@example.com" in body and "low@example.com" not in body and "prospect" in body


def test_the_refresh_task_fills_the_dashboard_cache(staff, django_assert_max_num_queries):
    from cadence.insights.tasks import dashboard_refresh

    ContactFactory()
    dashboard_refresh()
    with django_assert_max_num_queries(4):  # session and user only: the figures come from the cache
        response = staff.get("/admin/dashboard/")
    assert response.status_code == 200
