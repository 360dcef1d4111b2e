from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from preferences.models import Contact, Conversion
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def crm() -> APIClient:
    user = User.objects.create_user("crm")
    user.groups.add(Group.objects.create(name="crm-sync"))
    return client_for(user)


def test_calls_without_a_token_are_refused():
    response = client_for(None).get("/api/v1/contacts/x/")
    assert response.status_code == 401


def test_a_token_without_the_sync_scope_is_refused_even_for_staff():
    user = User.objects.create_user("staff", is_staff=True)
    ContactFactory(external_id="x")
    assert client_for(user).get("/api/v1/contacts/x/").status_code == 403
    assert client_for(user).post("/api/v1/contacts/", {"external_id": "y", "email": "y@example.com"}).status_code == 403


def test_a_session_login_is_not_enough():
    user = User.objects.create_superuser("admin", password="pw")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/contacts/x/").status_code in (401, 403)


def test_the_sync_permission_alone_grants_access():
    user = User.objects.create_user("perm")
    user.user_permissions.add(Permission.objects.get(codename="sync_contacts"))
    ContactFactory(external_id="x")
    assert client_for(user).get("/api/v1/contacts/x/").status_code == 200


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
    assert "/api/v1/contacts/bulk/" in schema and "ContactBulkResult" in schema and "tokenAuth" in schema
