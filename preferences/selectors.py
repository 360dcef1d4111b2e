"""Reads about who a contact is to the business (customer or prospect, reachable, open to marketing)."""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Exists, OuterRef, Q

from preferences.models import Contact, Product


def holds_product_q(on: date) -> Q:
    """Return a filter for contacts holding a product that had not ended before `on`."""
    held = Product.objects.filter(contact=OuterRef("pk")).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on))
    return Q(Exists(held))


def customers_q(on: date) -> Q:
    """Return a filter for customers: a share of customer above 0, or a product still held on `on`."""
    return Q(share_of_customer__gt=0) | holds_product_q(on)


def reachable_q() -> Q:
    """Return a filter for contacts with a valid address: not suppressed (bounced, complained, erased)."""
    return Q(suppressed_at__isnull=True)


def marketing_allowed_q(now: datetime) -> Q:
    """Return the filter that matches Contact.may_receive_marketing(now)."""
    return Q(status=Contact.Status.CONFIRMED, suppressed_at__isnull=True) & (
        Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    )
