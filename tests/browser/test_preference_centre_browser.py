"""A person on a phone changes topics and frequency in Debian's chromium; axe-core finds nothing serious."""

from __future__ import annotations

import pytest

from preferences.models import ConsentEvent
from preferences.tokens import Purpose, make_token
from tests.browser.conftest import serious_violations
from tests.factories import ContactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_on_a_phone_changes_topics_and_frequency(live_server, phone, topics):
    contact = ContactFactory(locale="en", frequency="monthly", topics=[topics[0]])
    phone.goto(f"{live_server.url}/preferences/{make_token(contact, Purpose.PREFERENCES)}/")

    assert phone.get_by_role("heading", name="Your email preferences").is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"
    phone.get_by_label("Saving").uncheck()
    phone.get_by_label("Mortgages").check()
    phone.get_by_label("Pension").check()
    phone.get_by_label("Quarterly").check()
    phone.get_by_role("button", name="Save my choices").click()

    status = phone.get_by_role("status")
    assert "Mortgages, Pension" in status.inner_text()
    contact.refresh_from_db()
    assert contact.frequency == "quarterly"
    assert sorted(contact.topics.values_list("slug", flat=True)) == ["mortgage", "pension"]
    assert contact.consent_events.get().kind == ConsentEvent.Kind.PREFERENCES
    assert phone.get_by_label("Quarterly").is_checked()


def test_the_keyboard_alone_reaches_and_saves_the_choices(live_server, phone, topics):
    contact = ContactFactory(locale="nl", frequency="monthly", topics=[topics[0]])
    phone.goto(f"{live_server.url}/preferences/{make_token(contact, Purpose.PREFERENCES)}/")

    phone.get_by_label("Per kwartaal").focus()
    phone.keyboard.press("Space")
    phone.get_by_role("button", name="Mijn keuzes opslaan").focus()
    phone.keyboard.press("Enter")
    phone.get_by_role("status").wait_for()

    contact.refresh_from_db()
    assert contact.frequency == "quarterly"


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_axe_finds_no_serious_or_critical_violations(live_server, phone, topics, lang):
    contact = ContactFactory(topics=[topics[0]])
    base = f"{live_server.url}/preferences/{make_token(contact, Purpose.PREFERENCES)}/?lang={lang}"
    phone.goto(base)
    assert serious_violations(phone) == []
    phone.get_by_role("button", name="Save my choices" if lang == "en" else "Mijn keuzes opslaan").click()
    phone.get_by_role("status").wait_for()
    assert serious_violations(phone) == []


def test_axe_passes_the_signup_and_unsubscribe_pages(live_server, phone, topics):
    contact = ContactFactory()
    for path in ("/subscribe/", f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/"):
        phone.goto(live_server.url + path)
        assert serious_violations(phone) == [], path


def test_the_accessibility_scan_does_catch_a_violation(phone):
    phone.set_content('<html lang="en"><title>t</title><main><input type="checkbox"><img src="x.png"></main></html>')
    assert serious_violations(phone), "axe must report an unlabelled control and an image without text"
