"""Render a message for a chosen contact without storing anything (admin preview and test sends)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils import translation

from messaging.rendering import RenderedMessage, render_message
from messaging.services import person_context
from preferences.models import Contact, Topic
from preferences.services import normalize_email

# Messages that can be previewed (marketing mails about a topic).
PREVIEW_TEMPLATES = ["welcome", "reengagement"]
SAMPLE_TOKEN = "sample-link-in-a-preview"


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
    context: dict[str, Any] = person_context(contact, marketing=True)
    # Sample links that open nothing: a preview must not hand staff the contact's live tokens.
    for name in ("preferences_url", "unsubscribe_url", "confirm_url"):
        if name in context:
            context[name] = f"{settings.SITE_URL}/{name.removesuffix('_url')}/{SAMPLE_TOKEN}/"
    if topic is not None:
        context["topics"] = [topic.name(contact.locale)]
        context["topic"] = topic
    with translation.override(contact.locale):
        return render_message(template, context, contact.locale)
