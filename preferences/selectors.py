"""Reads about who a contact is to the business (customer or prospect, reachable, open to marketing)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.db.models import Exists, OuterRef, Q

from preferences.models import Contact, Product, Topic


def holds_product_q(on: date) -> Q:
    """Return a filter for contacts holding a product that had not ended before `on`."""
    held = Product.objects.filter(contact=OuterRef("pk")).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on))
    return Q(Exists(held))


def customers_q(on: date) -> Q:
    """Return a filter for customers: a share of customer above 0, or a product still held on `on`."""
    return Q(share_of_customer__gt=0) | holds_product_q(on)


def contacts_attach_topics(contacts: Iterable[Contact]) -> None:
    """Read the topics of many contacts in one query on the link table, for `Contact.topic_list`.

    Each topic is one object shared by the contacts that chose it; cheaper than prefetching, which
    builds a related manager and a queryset for every contact.
    """
    by_id = {contact.pk: contact for contact in contacts}
    attached: dict[object, list[Topic]] = {contact_id: [] for contact_id in by_id}
    names = [field.attname for field in Topic._meta.concrete_fields]
    pk_index = names.index(Topic._meta.pk.attname)
    rows = (
        Contact.topics.through.objects.filter(contact_id__in=list(by_id))
        .order_by("topic__position", "topic__slug", "topic_id")  # Topic.Meta.ordering
        .values_list("contact_id", *(f"topic__{name}" for name in names))
    )
    topics: dict[object, Topic] = {}
    for contact_id, *values in rows:
        topic = topics.get(values[pk_index])
        if topic is None:
            topic = topics[values[pk_index]] = Topic.from_db(Topic.objects.db, names, values)
        attached[contact_id].append(topic)
    for contact_id, contact in by_id.items():
        contact.__dict__["_attached_topics"] = attached[contact_id]
