"""What people chose is what they get, seen in a real browser on a phone: the one form, the way out,
a policy explained, no topics meaning what the page said; axe-core on every public page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preferences.models import CadencePolicy, Contact, LeaveFeedback
from preferences.tokens import Purpose, make_token
from tests.browser.conftest import PHONE, serious_violations
from tests.factories import ContactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def preferences_url(live_server, contact: Contact, lang: str = "") -> str:
    query = f"?lang={lang}" if lang else ""
    return f"{live_server.url}/preferences/{make_token(contact, Purpose.PREFERENCES)}/{query}"


def unsubscribe_url(live_server, contact: Contact) -> str:
    return f"{live_server.url}/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/"


def test_one_save_keeps_a_new_topic_and_a_pause_together(live_server, phone, topics):
    contact = ContactFactory(locale="en", email="eva@example.com", topics=[topics[0]])
    phone.goto(preferences_url(live_server, contact))

    assert phone.get_by_text("eva@example.com").is_visible()
    phone.get_by_label("Pension").check()
    phone.get_by_label("Pause for 3 months").check()
    phone.get_by_role("button", name="Save my choices").click()

    status = phone.get_by_role("status").inner_text()
    assert "Pension, Saving" in status and "Paused until" in status
    contact.refresh_from_db()
    assert sorted(contact.topics.values_list("slug", flat=True)) == ["pension", "saving"]
    assert contact.is_paused()


def test_checkboxes_sit_beside_their_labels_and_the_heading_stays_whole(live_server, phone, topics):
    contact = ContactFactory(locale="nl", topics=[topics[0]])
    phone.goto(preferences_url(live_server, contact))

    beside = phone.evaluate(
        """() => [...document.querySelectorAll('.choice')].every(row => {
            const box = row.querySelector('input').getBoundingClientRect();
            const label = row.querySelector('label').getBoundingClientRect();
            return box.right <= label.left && box.top < label.bottom && box.bottom > label.top;
        })"""
    )
    assert beside, "every checkbox and radio button sits to the left of its label, on its line"
    heading = phone.get_by_role("heading", level=1)
    line_height = float(heading.evaluate("h => parseFloat(getComputedStyle(h).lineHeight)"))
    assert heading.bounding_box()["height"] < 1.5 * line_height, "the heading is one line, not 'E-/mailvoorkeuren'"
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_no_topics_means_what_the_page_said(live_server, phone, topics):
    contact = ContactFactory(locale="en", topics=[topics[0]])
    phone.goto(preferences_url(live_server, contact))

    phone.get_by_label("Saving").uncheck()
    phone.get_by_role("button", name="Save my choices").click()
    alert = phone.get_by_role("alert")
    assert "Nothing was saved yet" in alert.inner_text()
    saving = phone.get_by_label("Saving")
    assert saving.get_attribute("aria-invalid") == "true"
    message = phone.locator(f"#{saving.get_attribute('aria-describedby')}")
    assert message.is_visible() and "choose general updates" in message.inner_text()
    assert contact.topics.count() == 1

    phone.get_by_label("No particular topics: send me general updates about everything").check()
    phone.get_by_role("button", name="Save my choices").click()
    assert "general updates about everything" in phone.get_by_role("status").inner_text()
    contact.refresh_from_db()
    assert contact.general_updates and not contact.topics.exists()
    assert phone.get_by_label("No particular topics: send me general updates about everything").is_checked()


def test_a_policy_capped_contact_is_told_why(live_server, phone, topics, low_capped_monthly):
    contact = ContactFactory(locale="en", potential="low", frequency="biweekly", topics=[topics[0]])
    phone.goto(preferences_url(live_server, contact))

    note = phone.locator("#policy-note")
    assert note.is_visible()
    assert "You chose: every 2 weeks. For now we email you monthly." in note.inner_text()
    assert "not something you did" in note.inner_text()
    assert phone.get_by_label("Monthly").is_checked()
    assert phone.get_by_label("Every 2 weeks").count() == 0


def test_less_often_offers_only_less_frequent_options_then_a_reason_in_one_tap(live_server, phone, topics):
    contact = ContactFactory(locale="en", frequency="monthly", topics=topics[:2])
    phone.goto(unsubscribe_url(live_server, contact))

    less = phone.get_by_role("region", name="Hear from us less often")
    assert [b.inner_text() for b in less.get_by_role("button").all()] == ["Quarterly"]
    assert phone.get_by_role("button", name="Pause for 1 month").is_visible()
    assert phone.get_by_label("Mortgages").is_visible()  # per-topic stop
    less.get_by_role("button", name="Quarterly").click()

    assert "From now on we will email you: quarterly." in phone.get_by_role("status").inner_text()
    phone.get_by_role("button", name="Too often").click()
    assert "Thank you for telling us." in phone.get_by_role("status").inner_text()
    contact.refresh_from_db()
    assert contact.frequency == "quarterly" and contact.status == Contact.Status.CONFIRMED
    feedback = LeaveFeedback.objects.get()
    assert (feedback.outcome, feedback.reason) == ("less_often", "too_often")


def test_someone_already_on_the_least_frequent_cadence_gets_no_less_often_option(live_server, phone, topics):
    contact = ContactFactory(locale="en", frequency="quarterly", topics=[topics[0]])
    phone.goto(unsubscribe_url(live_server, contact))
    assert phone.get_by_role("region", name="Hear from us less often").count() == 0
    assert phone.get_by_role("button", name="Pause for 6 months").is_visible()


def test_the_reason_survey_after_leaving(live_server, phone, topics):
    contact = ContactFactory(locale="nl", topics=[topics[0]])
    phone.goto(unsubscribe_url(live_server, contact))
    phone.get_by_role("button", name="Afmelden voor alle e-mails").click()

    assert phone.get_by_role("heading", name="U bent afgemeld").is_visible()
    buttons = phone.get_by_role("region", name="Wilt u ons vertellen waarom? (niet verplicht)").get_by_role("button")
    assert [b.inner_text() for b in buttons.all()] == [
        "Te vaak",
        "Niet interessant voor mij",
        "Nooit aangemeld",
        "Iets anders",
    ]
    phone.get_by_role("button", name="Nooit aangemeld").click()
    assert "Bedankt" in phone.get_by_role("status").inner_text()
    feedback = LeaveFeedback.objects.get()
    assert (feedback.outcome, feedback.reason) == ("left", "never_signed_up")


def test_a_lost_link_can_be_asked_for_again(live_server, phone):
    ContactFactory(email="eva@example.com")
    phone.goto(f"{live_server.url}/preferences/broken/?lang=en")
    phone.get_by_role("link", name="Send me a new link").click()
    phone.get_by_label("Email address").fill("eva@example.com")
    phone.get_by_role("button", name="Send me a new link").click()
    assert "If we know this address" in phone.get_by_role("status").inner_text()


@pytest.fixture
def low_capped_monthly(db) -> None:
    """The default policy for low potential (transactional tests lose the data migration's rows)."""
    CadencePolicy.objects.update_or_create(potential="low", defaults={"max_frequency": "monthly"})


def public_pages(live_server, topics) -> list[tuple[str, str]]:
    contact = ContactFactory.create(topics=[topics[0]], potential="low", frequency="biweekly")
    pending = ContactFactory.create(status="pending")
    pages = [
        ("signup", f"{live_server.url}/subscribe/"),
        ("link request", f"{live_server.url}/link/"),
        ("confirm", f"{live_server.url}/confirm/{make_token(pending, Purpose.CONFIRM)}/"),
        ("invalid link", f"{live_server.url}/preferences/broken/"),
        ("unsubscribe", unsubscribe_url(live_server, contact)),
    ]
    for lang in ("en", "nl"):
        pages.append((f"preference centre {lang}", preferences_url(live_server, contact, lang)))
    return pages


def test_axe_finds_no_serious_or_critical_violation_on_any_public_page(live_server, phone, topics, low_capped_monthly):
    for name, url in public_pages(live_server, topics):
        phone.goto(url)
        assert serious_violations(phone) == [], name


def test_axe_passes_the_pages_after_an_action(live_server, phone, topics):
    contact = ContactFactory(locale="en", topics=[topics[0]])
    phone.goto(preferences_url(live_server, contact))
    phone.get_by_label("Saving").uncheck()
    phone.get_by_role("button", name="Save my choices").click()
    assert serious_violations(phone) == [], "form with errors"
    phone.get_by_role("button", name="Email me a link to my data").click()
    assert serious_violations(phone) == [], "dossier link mailed"
    phone.goto(f"{live_server.url}/dossier/{make_token(contact, Purpose.DOSSIER)}/")
    phone.get_by_role("button", name="Show my data").click()
    assert phone.get_by_role("heading", name="Your data").is_visible()
    assert serious_violations(phone) == [], "your data"
    phone.goto(unsubscribe_url(live_server, contact))
    phone.get_by_role("button", name="Unsubscribe from all emails").click()
    assert serious_violations(phone) == [], "unsubscribed, with the reason survey"
    phone.goto(f"{live_server.url}/subscribe/")
    phone.get_by_role("button", name="Sign up").click()
    assert serious_violations(phone) == [], "signup with errors"


def test_the_preference_centre_works_at_desktop_size(live_server, desktop, topics):
    contact = ContactFactory(locale="en", topics=[topics[0]])
    desktop.goto(preferences_url(live_server, contact))
    desktop.get_by_label("Quarterly").check()
    desktop.get_by_role("button", name="Save my choices").click()
    assert "quarterly" in desktop.get_by_role("status").inner_text()
    assert serious_violations(desktop) == []


def test_screenshots_of_the_main_pages(live_server, browser, topics, low_capped_monthly, tmp_path):
    """Take the README's screenshots; SCREENSHOT_DIR=docs/screenshots refreshes them, else they go to a temp folder."""
    context = browser.new_context(**{**PHONE, "device_scale_factor": 1})  # small files for the README
    phone = context.new_page()
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    contact = ContactFactory(
        email="eva.jansen@example.nl", first_name="Eva", topics=topics[:2], potential="low", frequency="biweekly"
    )
    shots = [
        ("preference-centre-en", preferences_url(live_server, contact, "en")),
        ("preference-centre-nl", preferences_url(live_server, contact, "nl")),
        ("unsubscribe-en", unsubscribe_url(live_server, contact) + "?lang=en"),
        ("signup-nl", f"{live_server.url}/subscribe/?lang=nl"),
    ]
    for name, url in shots:
        phone.goto(url)
        phone.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    phone.goto(unsubscribe_url(live_server, contact) + "?lang=en")
    phone.get_by_role("button", name="Unsubscribe from all emails").click()
    phone.screenshot(path=str(folder / "unsubscribed-reason-en.png"), full_page=True)
    context.close()
    for name in [*(name for name, _ in shots), "unsubscribed-reason-en"]:
        assert (folder / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
