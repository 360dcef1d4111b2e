"""Render a message for a chosen contact without storing anything (admin preview and test sends)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation
from django.utils.translation import gettext

from messaging.models import Announcement, Delivery
from messaging.rendering import RenderedMessage, render_message
from messaging.services import message_context
from preferences.frequencies import get_frequency
from preferences.models import Contact, Topic
from preferences.services import normalize_email

# Messages that can be previewed; the content templates of the cadence engine join this list.
PREVIEW_TEMPLATES = ["welcome", "reengagement"]


def find_contact(term: str) -> Contact | None:
    """Return the contact with this exact email, CRM id or id, or None."""
    term = term.strip()
    if "@" in term:
        return Contact.objects.filter(email=normalize_email(term)).first()
    try:
        return Contact.objects.filter(pk=uuid.UUID(term)).first()
    except ValueError:
        return Contact.objects.filter(external_id=term).first()


def preview_message(*, contact: Contact, template: str, topic: Topic | None = None) -> RenderedMessage:
    """Return `template` rendered for `contact` in its language; with `topic`, about that topic only."""
    kind = Delivery.Kind.REENGAGEMENT if template == "reengagement" else Delivery.Kind.WELCOME
    delivery = Delivery(contact=contact, kind=kind, template=template, idempotency_key="preview")
    context = message_context(delivery)
    if topic is not None:
        context["topics"] = [topic.name(contact.locale)]
        context["topic"] = topic
    with translation.override(contact.locale):
        return render_message(template, context, contact.locale)


def announcement_preview(*, announcement: Announcement, locale: str, contact: Contact | None = None) -> RenderedMessage:
    """Return the announcement rendered in `locale`: for `contact` when given, else for a sample reader."""
    if contact is not None and contact.pk is not None:
        delivery = Delivery(
            contact=contact,
            kind=Delivery.Kind.ANNOUNCEMENT,
            template="announcement",
            idempotency_key="preview",
            context={"announcement_id": announcement.pk, "marketing": announcement.is_marketing},
        )
        context = message_context(delivery)
    else:
        with translation.override(locale):
            context = {
                "first_name": gettext("Sam"),
                "topics": [],
                "frequency_label": get_frequency(settings.CADENCE_DEFAULT_FREQUENCY).label,
                "site_url": settings.SITE_URL,
                "preferences_url": f"{settings.SITE_URL}/preferences/…/",
                "unsubscribe_url": f"{settings.SITE_URL}/unsubscribe/…/",
                "is_marketing": announcement.is_marketing,
            }
    context.update(subject=announcement.subject(locale), body=announcement.body(locale))
    return render_message("announcement", context, locale)


def announcement_send_test(*, announcement: Announcement, address: str, locale: str) -> RenderedMessage:
    """Send the announcement in `locale` to `address` as a test (subject marked, no delivery recorded)."""
    contact = Contact.objects.filter(email=normalize_email(address)).first()
    rendered = announcement_preview(announcement=announcement, locale=locale, contact=contact)
    with translation.override(locale):
        subject = gettext("[Test] %(subject)s") % {"subject": rendered.subject}
    message = EmailMultiAlternatives(subject=subject, body=rendered.text, to=[address])
    message.attach_alternative(rendered.html, "text/html")
    message.send()
    return rendered
