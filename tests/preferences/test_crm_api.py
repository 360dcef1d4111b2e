from __future__ import annotations

import time

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from preferences.api_keys import crm_key_create
from preferences.models import Contact, Conversion
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def client_for(key: str | None) -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def crm() -> APIClient:
    return client_for(crm_key_create(name="crm", expires_in_days=30)[1])


def test_calls_without_a_key_are_refused():
    response = client_for(None).get("/api/v1/contacts/x/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_an_unknown_or_revoked_key_is_refused():
    ContactFactory(external_id="x")
    api_key, key = crm_key_create(name="crm", expires_in_days=30)
    assert client_for(key).get("/api/v1/contacts/x/").status_code == 200
    assert client_for(key[:-1] + ("a" if key[-1] != "a" else "b")).get("/api/v1/contacts/x/").status_code == 401

    api_key.revoked = True
    api_key.save()
    assert client_for(key).get("/api/v1/contacts/x/").status_code == 401


def test_a_key_is_refused_after_its_expiry():
    ContactFactory(external_id="x")
    _api_key, key = crm_key_create(name="crm", expires_in_days=2)
    assert client_for(key).get("/api/v1/contacts/x/").status_code == 200

    with time_machine.travel(time.time() + 2 * 86400 + 60):
        response = client_for(key).get("/api/v1/contacts/x/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_key_without_an_expiry_is_refused():
    ContactFactory(external_id="x")
    _api_key, key = APIKey.objects.create_key(name="forever")
    assert client_for(key).get("/api/v1/contacts/x/").status_code == 401


def test_the_database_holds_no_clear_key(capsys):
    call_command("crm_key", "create", "--name", "crm-eu", "--expires-in-days", "90")
    key = capsys.readouterr().out.split()[-1]
    prefix, _, secret = key.partition(".")
    assert len(secret) >= 32 and client_for(key).get("/api/v1/contacts/nobody/").status_code == 404

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM rest_framework_api_key_apikey")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert secret not in stored and key not in stored
    api_key = APIKey.objects.get(prefix=prefix)
    assert api_key.name == "crm-eu" and api_key.hashed_key.startswith("sha512$$")


def test_a_staff_users_session_is_not_enough():
    user = User.objects.create_superuser("admin", password="pw")
    ContactFactory(external_id="x")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/contacts/x/").status_code in (401, 403)


def test_a_drf_user_token_is_not_a_key():
    ContactFactory(external_id="x")
    assert APIClient().get("/api/v1/contacts/x/", HTTP_AUTHORIZATION="Token " + "a" * 40).status_code == 401


def test_create_read_and_update_by_crm_id(crm):
    response = crm.post(
        "/api/v1/contacts/", {"external_id": "c-1", "email": "Anna@Example.com", "potential": "high"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["email"] == "anna@example.com" and response.json()["lifecycle"] == "prospect"

    assert crm.get("/api/v1/contacts/c-1/").json()["potential"] == "high"
    response = crm.patch("/api/v1/contacts/c-1/", {"share_of_customer": 60}, format="json")
    assert response.status_code == 200 and response.json()["lifecycle"] == "customer"
    assert Conversion.objects.get(contact__external_id="c-1").source == "crm-api"
    assert crm.get("/api/v1/contacts/unknown/").status_code == 404


def test_field_level_errors(crm):
    response = crm.post(
        "/api/v1/contacts/", {"external_id": "c-1", "email": "nope", "share_of_customer": 101}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"email", "share_of_customer"}


def test_bulk_upsert_reports_each_row_and_applies_the_good_ones(crm):
    ContactFactory(external_id="c-2", email="bram@example.com", potential="low")
    rows = [
        {"external_id": "c-1", "email": "anna@example.com"},
        {"external_id": "c-2", "potential": "high"},
        {"external_id": "c-3", "email": "broken"},
        {"email": "no-id@example.com"},
        {"external_id": "c-1", "email": "anna2@example.com"},
    ]
    response = crm.post("/api/v1/contacts/bulk/", {"contacts": rows}, format="json")
    body = response.json()
    assert response.status_code == 200
    assert [r["status"] for r in body["results"]] == ["created", "updated", "error", "error", "error"]
    assert "email" in body["results"][2]["errors"]
    assert "external_id" in body["results"][3]["errors"]
    assert "Duplicate" in body["results"][4]["errors"]["email"][0]
    assert (body["created"], body["updated"], body["errors"]) == (1, 1, 3)
    assert Contact.objects.get(external_id="c-2").potential == "high"
    assert Contact.objects.get(external_id="c-1").email == "anna@example.com"


def test_bulk_upsert_refuses_more_than_1000_rows(crm):
    rows = [{"external_id": f"c-{i}", "email": f"p{i}@example.com"} for i in range(1001)]
    assert crm.post("/api/v1/contacts/bulk/", {"contacts": rows}, format="json").status_code == 400


def test_the_schema_documents_the_crm_api(client):
    schema = client.get("/api/schema/").content.decode()
    assert (
        "/api/v1/contacts/bulk/" in schema
        and "ContactBulkResult" in schema
        and "crmApiKey" in schema
        and "Api-Key" in schema
    )


def test_the_admin_shows_a_new_key_once_and_requires_an_expiry(client):
    client.force_login(User.objects.create_superuser("admin", password="pw"))
    url = "/admin/rest_framework_api_key/apikey/add/"

    refused = client.post(url, {"name": "crm-no-expiry"})
    assert refused.status_code == 200 and not APIKey.objects.exists()

    response = client.post(
        url, {"name": "crm-eu", "expiry_date_0": "2099-01-01", "expiry_date_1": "00:00:00"}, follow=True
    )
    shown = [str(message) for message in response.context["messages"]]
    key = shown[0].split("is: ")[1].split(". ")[0]
    assert client_for(None).get("/api/v1/contacts/nobody/", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 404
    assert (
        key
        not in client.get(f"/admin/rest_framework_api_key/apikey/{APIKey.objects.get().pk}/change/").content.decode()
    )
