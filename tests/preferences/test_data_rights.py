from __future__ import annotations

import base64
import json
from datetime import date

import pytest
from django.apps import apps
from django.core import mail
from django.db import models

from cadence.batch import batch_send
from cadence.kinds import Kind
from cadence.models import Schedule
from messaging.intake import event_posts_process
from messaging.models import Delivery, DeliveryEvent
from preferences.data_rights import contact_erase
from preferences.models import ConsentEvent, Contact, ImportJob, SuppressionEntry, address_hash
from preferences.services import Evidence, contact_confirm, contact_subscribe
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory, DeliveryFactory, ProductFactory
from tests.messaging import esp_payloads

pytestmark = pytest.mark.django_db

EMAIL = "wilhelmina.verhoeven@example.nl"
NAME = "Wilhelmina"
IP = "203.0.113.77"
BROWSER = "Mozilla/5.0 (Wilhelmina's laptop)"


@pytest.fixture
def person(topics, django_capture_on_commit_callbacks) -> Contact:
    """A contact with everything: choices, a ledger with evidence, products, deliveries and a schedule."""
    evidence = Evidence(ip_address=IP, user_agent=BROWSER, source="signup-form", extra={"referrer": EMAIL})
    with django_capture_on_commit_callbacks(execute=False):
        contact = contact_subscribe(
            email=EMAIL, first_name=NAME, locale="nl", topics=topics[:2], frequency="monthly", evidence=evidence
        )
        contact_confirm(contact=contact, evidence=evidence)
    Contact.objects.filter(pk=contact.pk).update(external_id="CRM-WV-1", share_of_customer=35, time_zone="Europe/Paris")
    ProductFactory(contact=contact, name="Woonverzekering Wilhelmina", renews_on=date(2027, 3, 1), external_id="P-WV")
    Delivery.objects.filter(contact=contact).update(error=f"recipient refused: {EMAIL}", esp_message_id="esp-123")
    return Contact.objects.get(pk=contact.pk)


def preferences_url(contact: Contact) -> str:
    return f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/"


def dossier_url(contact: Contact) -> str:
    """The one-time link the dossier mail carries (tests/preferences/test_links.py follows the mail itself)."""
    return f"/dossier/{make_token(contact, Purpose.DOSSIER)}/"


def test_the_export_from_the_preference_centre_holds_everything_about_the_contact(client, person):
    response = client.post(dossier_url(person), {"action": "export"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["profile"]["email"] == EMAIL and data["profile"]["first_name"] == NAME
    assert data["profile"]["external_id"] == "CRM-WV-1" and data["profile"]["share_of_customer"] == 35
    assert data["profile"]["time_zone"] == "Europe/Paris" and data["profile"]["service_reminders"] is True
    assert "token_secret" not in data["profile"]
    assert [t["slug"] for t in data["choices"]["topics"]] == ["mortgage", "saving"]
    assert data["choices"]["frequency"] == "monthly" and data["choices"]["locale"] == "nl"
    assert [e["kind"] for e in data["consent_ledger"]] == ["signup", "confirmed"]
    assert data["consent_ledger"][0]["ip_address"] == IP and data["consent_ledger"][0]["user_agent"] == BROWSER
    assert data["products"][0]["name"] == "Woonverzekering Wilhelmina"
    assert data["products"][0]["renews_on"] == "2027-03-01"
    assert sorted(d["kind"] for d in data["deliveries"]) == ["confirmation", "welcome"]
    assert data["schedule"]["is_active"] is True
    # Every field of the contact row is in the export, apart from the link secret.
    # The link secret and versions are keys, not data about the person (docs/security.md).
    exported = set(data["profile"]) | {"topics", "token_secret", "token_version", "dossier_version"}
    assert {f.name for f in Contact._meta.concrete_fields} | {"topics"} <= exported
    # The export itself is logged, with no personal data in the entry.
    logged = ConsentEvent.objects.filter(contact=person, kind=ConsentEvent.Kind.DATA_EXPORTED).get()
    assert logged.source == "dossier-link" and logged.ip_address is None and logged.user_agent == ""


def test_the_admin_exports_one_contact(admin_client, person):
    response = admin_client.post(
        "/admin/preferences/contact/", {"action": "export_data", "_selected_action": [str(person.pk)]}
    )
    assert json.loads(response.content)["profile"]["email"] == EMAIL
    assert ConsentEvent.objects.get(contact=person, kind=ConsentEvent.Kind.DATA_EXPORTED).source.startswith("admin:")


def _text_values(row: models.Model) -> list[str]:
    values = []
    for field in row._meta.concrete_fields:
        if isinstance(field, models.CharField | models.TextField | models.JSONField | models.GenericIPAddressField):
            value = getattr(row, field.attname)
            values.append(json.dumps(value, default=str) if isinstance(value, dict | list) else str(value))
    return values


def rows_of(contact: Contact) -> list[models.Model]:
    """Every row in every model that points at the contact, and the contact itself."""
    rows: list[models.Model] = [Contact.objects.get(pk=contact.pk)]
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey) and field.related_model is Contact:
                rows += list(model._default_manager.filter(**{field.name: contact.pk}))
    return rows


def test_erasure_leaves_no_personal_data_and_keeps_the_address_suppressed(admin_client, person, client):
    before = rows_of(person)
    assert any(EMAIL in value for row in before for value in _text_values(row))  # the search can find it
    delivery_count = Delivery.objects.filter(contact=person).count()

    page = admin_client.post("/admin/preferences/contact/", {"action": "erase_data", "_selected_action": [person.pk]})
    assert b"cannot be undone" in page.content and Contact.objects.get(pk=person.pk).email == EMAIL
    admin_client.post(
        "/admin/preferences/contact/",
        {"action": "erase_data", "_selected_action": [person.pk], "confirm": "yes"},
    )

    personal = [EMAIL, "wilhelmina", NAME, IP, BROWSER, "CRM-WV-1", "P-WV", "esp-123", "Europe/Paris"]
    for row in rows_of(person):
        for value in _text_values(row):
            for secret in personal:
                assert secret.lower() not in value.lower(), (type(row).__name__, value)
    erased = Contact.objects.get(pk=person.pk)
    assert erased.email.endswith("@erased.invalid") and erased.suppressed_at is not None
    assert not erased.topics.exists() and not erased.products.exists()
    # Ledger rows keep kind and time; deliveries keep kind, status and dates (anonymous counts).
    kinds = list(ConsentEvent.objects.filter(contact=erased).values_list("kind", flat=True))
    assert kinds == ["signup", "confirmed", "erased"]
    assert Delivery.objects.filter(contact=erased).count() == delivery_count
    assert not Schedule.objects.get(contact=erased).is_active
    assert SuppressionEntry.objects.filter(address_hash=address_hash(EMAIL), reason="erased").exists()
    assert SuppressionEntry.objects.count() == 1
    # Old links stop working.
    assert client.get(preferences_url(person)).status_code == 404

    # A new signup with the same address is answered as always, and gets no mail at all.
    mail.outbox.clear()
    response = client.post(
        "/api/v1/subscribe/",
        {"email": EMAIL.upper(), "topics": ["saving"], "locale": "nl"},
        content_type="application/json",
    )
    assert response.status_code == 202
    newcomer = Contact.objects.get(email=EMAIL)
    assert newcomer.suppressed_at is not None
    assert newcomer.suppression_reason == "erased"
    # The suppression list stops the confirmation before it is even queued.
    assert not Delivery.objects.filter(contact=newcomer).exists()
    assert mail.outbox == []


def test_an_erased_address_that_comes_back_through_an_import_gets_no_mail(person):
    contact_erase(contact=person, source="test")
    reimported = ContactFactory(email=EMAIL)  # as a CRM sync or CSV import would create it
    delivery = DeliveryFactory.create(contact=reimported, kind=Kind.ANNOUNCEMENT)
    batch_send(delivery_ids=[delivery.id])
    delivery.refresh_from_db()
    assert mail.outbox == [] and delivery.error == "suppressed address"


def test_erasing_twice_is_harmless(person):
    first = contact_erase(contact=person, source="test")
    second = contact_erase(contact=first, source="test")
    assert first.email == second.email
    assert ConsentEvent.objects.filter(contact=person, kind=ConsentEvent.Kind.ERASED).count() == 1


WEBHOOK_SECRET = "hook:s3cret-pass"
WEBHOOK_AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
EVENT_IP = "198.51.100.23"
EVENT_BROWSER = "Mozilla/5.0 (Wilhelmina's phone) Gecko/20100101"


def _post_event(client, esp: str, event: str, delivery: Delivery, n: int) -> None:
    request = esp_payloads.BUILDERS[esp](event, delivery, n)
    request["data"] = request["data"].replace("255.255.255.255", EVENT_IP).replace("Mozilla/4.0", EVENT_BROWSER)
    response = client.post(f"/anymail/{esp}/tracking/", HTTP_AUTHORIZATION=WEBHOOK_AUTH, **request)
    assert response.status_code == 200
    event_posts_process()


@pytest.fixture
def history(person, client, settings) -> Contact:
    """The person with mail sent, opened and clicked (IP, user agent), a hard bounce and an import report."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    settings.WEBHOOK_ESPS = ["sendgrid"]
    welcome = Delivery.objects.get(contact=person, kind=Kind.WELCOME)
    Delivery.objects.filter(pk=welcome.pk).update(
        status=Delivery.Status.SENT, esp_name="sendgrid", context={"first_name": NAME, "email": EMAIL}
    )
    welcome.refresh_from_db()
    _post_event(client, "sendgrid", "opened", welcome, 1)
    _post_event(client, "sendgrid", "clicked", welcome, 2)
    _post_event(client, "sendgrid", "hard_bounce", welcome, 3)
    ImportJob.objects.create(
        file_path="/tmp/gone.csv",
        original_name="crm.csv",
        bad_rows=[[2, f"email: duplicate of line 1 ({EMAIL})"], [3, "locale: not a language"]],
        bad_count=2,
    )
    return Contact.objects.get(pk=person.pk)


def every_text_value() -> list[tuple[str, str]]:
    """(model, value) for every text, char, IP and JSON column of every row of every installed model."""
    found = []
    for model in apps.get_models():
        for row in model._default_manager.all():
            found += [(model.__name__, value) for value in _text_values(row)]
    return found


def test_after_erasure_no_column_of_any_table_holds_the_address_name_ip_or_user_agent(history):
    values = every_text_value()
    personal = [EMAIL, NAME, IP, BROWSER, EVENT_IP, EVENT_BROWSER]
    for secret in personal:  # the scan can find each of them before
        assert any(secret.lower() in value.lower() for _model, value in values), secret
    assert DeliveryEvent.objects.filter(contact=history).count() == 3

    contact_erase(contact=history, source="test")

    leaks = [
        (model, secret, value)
        for model, value in every_text_value()
        for secret in personal
        if secret.lower() in value.lower()
    ]
    assert leaks == []
    # The events stay, anonymous, so counts of opens, clicks and bounces stay right.
    kinds = sorted(DeliveryEvent.objects.filter(contact=history).values_list("type", flat=True))
    assert kinds == ["bounced", "clicked", "opened"]
    entry = SuppressionEntry.objects.get(address_hash=address_hash(EMAIL))
    assert entry.reason == SuppressionEntry.Reason.HARD_BOUNCE and entry.evidence["esp"] == "SendGrid"
    assert ImportJob.objects.get().bad_rows == [[3, "locale: not a language"]]


def test_the_export_holds_the_delivery_events_with_their_ip_and_user_agent(history, client):
    response = client.post(dossier_url(history), {"action": "export"})

    events = json.loads(response.content)["delivery_events"]
    assert [e["type"] for e in events] == ["opened", "clicked", "bounced"]
    opened, clicked, _bounced = events
    assert opened["detail"]["ip"] == EVENT_IP and opened["detail"]["useragent"] == EVENT_BROWSER
    assert clicked["click_url"] == esp_payloads.CLICKED_URL and clicked["esp_name"] == "SendGrid"
    assert opened["delivery_id"] == str(Delivery.objects.get(contact=history, kind="welcome").id)
