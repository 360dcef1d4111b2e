"""The nurture digest with an announcement as its lead block, in both languages, HTML and text."""

from __future__ import annotations

import pytest

from messaging.rendering import render_message

pytestmark = pytest.mark.django_db

BLOCK = {
    "en": {"subject": "Our new savings account", "body": "Open one today & earn more."},
    "nl": {"subject": "Onze nieuwe spaarrekening", "body": "Open er vandaag een & verdien meer."},
}
HEADINGS = {
    "en": ("Announcement", "Here is what is new on your topics:"),
    "nl": ("Aankondiging", "Hier is het nieuws over uw onderwerpen:"),
}


@pytest.mark.parametrize("locale", ["en", "nl"])
def test_the_digest_leads_with_the_announcement_in_the_persons_language(locale):
    context = {
        "first_name": "Sam",
        "items": [{"title": "Article one", "summary": "Short.", "url": "https://example.com/1", "body": ""}],
        "announcements": [BLOCK[locale]],
        "lead_subject": "",
        "is_marketing": True,
        "frequency_label": "monthly",
        "preferences_url": "https://example.com/p/",
        "unsubscribe_url": "https://example.com/u/",
    }
    rendered = render_message("nurture", context, locale)
    label, digest_heading = HEADINGS[locale]
    subject, body = BLOCK[locale]["subject"], BLOCK[locale]["body"]
    for text, escaped_body in ((rendered.text, body), (rendered.html, body.replace("&", "&amp;"))):
        assert label in text and subject in text and escaped_body in text
        assert text.index(subject) < text.index(digest_heading) < text.index("Article one")
    assert rendered.subject == "Article one"  # in the next mail it leads, it does not take the subject

    rendered = render_message("nurture", {**context, "lead_subject": subject}, locale)
    assert rendered.subject == subject  # as soon as the cadence allows, the slot's mail is the announcement's


def test_without_an_announcement_the_digest_has_no_block():
    rendered = render_message("nurture", {"items": [], "is_marketing": True}, "en")
    assert "Announcement" not in rendered.text and "Announcement" not in rendered.html
