"""`field__any=values`: one array parameter on PostgreSQL, an IN list elsewhere; the same rows either way."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Delivery
from messaging.services import deliveries_send
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_any_finds_what_in_finds():
    contacts = ContactFactory.create_batch(3)
    deliveries = Delivery.objects.bulk_create(
        Delivery(contact=c, kind="nurture", template="nurture", idempotency_key=f"k:{c.id}", marketing=True)
        for c in contacts
    )
    wanted = [str(deliveries[0].id), deliveries[2].id, uuid.uuid4()]

    assert set(Delivery.objects.filter(id__any=wanted)) == set(Delivery.objects.filter(id__in=wanted))
    assert list(Delivery.objects.filter(id__any=[])) == []


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="arrays are PostgreSQL's")
def test_the_claim_sends_its_ids_as_one_array(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    ids = [uuid.uuid4() for _ in range(200)]
    with CaptureQueriesContext(connection) as queries:
        deliveries_send(delivery_ids=ids)

    claim = queries.captured_queries[0]["sql"]
    assert "= ANY(" in claim
    assert claim.count("::uuid") <= 2  # one array, not 200 quoted values
