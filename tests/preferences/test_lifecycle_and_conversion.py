from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction

from messaging.models import Delivery
from preferences.models import Contact, Conversion, Lifecycle
from preferences.services import contact_set_share
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db
SIGNUP = datetime(2026, 1, 10, 9, tzinfo=UTC)


def sent(contact: Contact, n: int, at: datetime) -> None:
    DeliveryFactory.create_batch(n, contact=contact, template="x", status=Delivery.Status.SENT, sent_at=at)


def test_lifecycle_follows_the_share_of_customer():
    contact = ContactFactory(created_at=SIGNUP)
    assert contact.lifecycle == Lifecycle.PROSPECT
    contact_set_share(contact=contact, share=30, source="crm")
    contact.refresh_from_db()
    assert contact.lifecycle == Lifecycle.CUSTOMER
    contact_set_share(contact=contact, share=0, source="crm")
    contact.refresh_from_db()
    assert contact.lifecycle == Lifecycle.FORMER_CUSTOMER and contact.former_customer_at is not None
    assert list(Contact.objects.filter(Lifecycle.q(Lifecycle.FORMER_CUSTOMER))) == [contact]


def test_a_conversion_is_recorded_once_with_its_facts():
    contact = ContactFactory(created_at=SIGNUP, source="website", potential="high")
    sent(contact, 3, SIGNUP + timedelta(days=5))
    with time_machine.travel(SIGNUP + timedelta(days=40), tick=False):
        conversion = contact_set_share(contact=contact, share=20, source="crm")
    assert conversion is not None
    conversion.refresh_from_db()
    assert conversion.days_as_prospect == 40
    assert conversion.mails_before == 3
    assert conversion.contact_source == "website" and conversion.potential == "high" and conversion.source == "crm"

    assert contact_set_share(contact=contact, share=50, source="crm") is None
    contact_set_share(contact=contact, share=0, source="crm")
    assert contact_set_share(contact=contact, share=10, source="crm") is None
    assert Conversion.objects.filter(contact=contact).count() == 1


def test_the_database_refuses_a_second_conversion_for_one_contact():
    contact = ContactFactory()
    contact_set_share(contact=contact, share=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversion.objects.create(contact=contact, potential="low", signed_up_at=SIGNUP, days_as_prospect=1)


def test_a_share_outside_0_to_100_is_refused():
    contact = ContactFactory()
    with pytest.raises(ValueError):
        contact_set_share(contact=contact, share=101)
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.filter(pk=contact.pk).update(share_of_customer=101)
