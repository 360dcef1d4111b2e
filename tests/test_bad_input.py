"""What clients really send gets a clear 4xx, never a 500, and nothing is half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from preferences.api_keys import crm_key_create
from preferences.models import ConsentEvent, Contact
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def crm(db) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {crm_key_create(name='crm', expires_in_days=30)[1]}")
    return client


@pytest.mark.parametrize("bad_id", [["c-1", "c-2"], {"id": "c-1"}, 17, True])
def test_a_crm_bulk_row_whose_external_id_is_not_a_string_gets_a_row_error(crm, bad_id):
    rows = [{"external_id": bad_id, "email": "bad@example.com"}, {"external_id": "c-9", "email": "good@example.com"}]

    response = crm.post("/api/v1/contacts/bulk/", {"contacts": rows}, format="json")

    assert response.status_code == 200
    body = response.json()
    if isinstance(bad_id, list | dict):
        assert body["results"][0]["status"] == "error" and "external_id" in body["results"][0]["errors"]
        assert not Contact.objects.filter(email="bad@example.com").exists()
    assert body["results"][1]["status"] == "created"


@pytest.mark.parametrize("bad_id", [["c-1"], {"id": "c-1"}])
def test_a_single_upsert_with_a_list_or_object_as_crm_id_gets_400(crm, bad_id):
    response = crm.post("/api/v1/contacts/", {"external_id": bad_id, "email": "x@example.com"}, format="json")
    assert response.status_code == 400 and "external_id" in response.json()
    assert not Contact.objects.exists()


@pytest.mark.parametrize("field", ["external_id", "first_name", "source"])
def test_a_nul_character_in_a_crm_text_field_gets_a_400_field_error(crm, field):
    row = {"external_id": "c-1", "email": "nul@example.com", field: "a\x00b"}

    single = crm.post("/api/v1/contacts/", row, format="json")
    bulk = crm.post("/api/v1/contacts/bulk/", {"contacts": [row]}, format="json")

    assert single.status_code == 400 and field in single.json()
    assert bulk.status_code == 200 and field in bulk.json()["results"][0]["errors"]
    assert not Contact.objects.exists()


def test_a_crm_id_with_a_nul_character_in_the_path_is_not_found(crm):
    assert crm.get("/api/v1/contacts/c%001/").status_code == 404
    assert crm.patch("/api/v1/contacts/c%001/", {"first_name": "X"}, format="json").status_code == 404


@pytest.mark.django_db
def test_a_one_click_post_without_the_trailing_slash_unsubscribes_without_a_redirect(client):
    contact = ContactFactory()
    url = f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}"

    response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    assert ConsentEvent.objects.get(contact=contact, kind=ConsentEvent.Kind.UNSUBSCRIBED).source == "one-click"


CONCURRENT_SIGNUPS = """
import os, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.test import Client
call_command("migrate", verbosity=0)
from preferences.models import Contact, Topic
Topic.objects.create(slug="saving", name_en="Saving", name_nl="Sparen")
connection.close()
errors, answers = [], []
barrier = threading.Barrier(8)

def sign_up(n):
    try:
        barrier.wait()
        client = Client(raise_request_exception=True)
        for i in range(5):
            response = client.post("/api/v1/subscribe/", {"email": f"p{n}-{i}@example.com", "topics": ["saving"]},
                                   content_type="application/json", REMOTE_ADDR=f"192.0.2.{n}")
            answers.append(response.status_code)
    except Exception as error:
        errors.append(repr(error))
    finally:
        connection.close()

threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("answers", sorted(set(answers)), "contacts", Contact.objects.count(), "errors", errors[:3])
"""


def test_concurrent_signups_on_sqlite_do_not_fail_with_database_is_locked(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", CONCURRENT_SIGNUPS], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "answers [202] contacts 40 errors []" in result.stdout, result.stdout + result.stderr[-3000:]
