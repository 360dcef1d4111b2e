"""An invited person has not signed up: the invitation, the confirm page, the preference centre and the
data page say they were invited, in Dutch and English, until they say yes."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail

from preferences import services
from preferences.models import Contact
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

# Words that say a person subscribed or asked for mail, which an invited person did not do.
SIGNED_UP = {
    "nl": re.compile(
        r"ingeschreven|inschrijving|aangemeld|aanmelding|aanmeldde|u hebt gevraagd|u heeft gevraagd", re.I
    ),
    "en": re.compile(r"\bsubscri|signed up|sign-up|you asked", re.I),
}


@pytest.fixture
def invited(client, celery_eager, django_capture_on_commit_callbacks, settings):
    """Two pending contacts, Dutch and English, invited from the admin as after an import; their mails."""
    settings.BRAND_NAME = "Voorbeeldbank"
    people = {
        locale: ContactFactory(
            email=f"{locale}@example.com", locale=locale, status=Contact.Status.PENDING, confirmed_at=None
        )
        for locale in ("nl", "en")
    }
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/preferences/contact/",
            {"action": "invite", "_selected_action": [str(c.pk) for c in people.values()]},
        )
    client.logout()
    return people


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("locale", ["nl", "en"])
def test_the_invitation_mail_asks_and_never_says_they_subscribed(invited, locale):
    message = next(m for m in mail.outbox if m.to == [f"{locale}@example.com"])
    html = _text(message.alternatives[0][0])
    for part in (message.subject, message.body, html):
        assert not SIGNED_UP[locale].search(part), part
    # The brand and the plain link, in the text part as in the HTML part.
    confirm = re.search(r"https?://\S+/confirm/\S+/", message.body).group(0)
    assert "Voorbeeldbank" in message.body and "Voorbeeldbank" in html
    assert confirm in html
    expected = {"nl": "Wilt u per e-mail van ons horen?", "en": "Would you like to hear from us by email?"}
    assert message.subject == expected[locale]


@pytest.mark.parametrize(
    ("locale", "heading", "button", "after"),
    [
        ("nl", "Wilt u per e-mail van ons horen?", "Ja, houd mij op de hoogte", "U bent aangemeld"),
        ("en", "Would you like to hear from us by email?", "Yes, keep me informed", "You are subscribed"),
    ],
)
def test_the_confirm_page_of_an_invited_person_asks_and_only_says_subscribed_once_they_said_yes(
    client, invited, locale, heading, button, after
):
    contact = invited[locale]
    url = f"/confirm/{make_token(contact, Purpose.CONFIRM)}/"
    page = client.get(url).content.decode()
    shown = _text(page.split("<main", 1)[-1])
    assert f"<h1>{heading}</h1>" in page and button in page
    assert not SIGNED_UP[locale].search(shown), shown

    done = client.post(url).content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED and f"<h1>{after}</h1>" in done


@pytest.mark.parametrize(
    ("locale", "said"),
    [
        ("nl", "U hebt nog geen ja gezegd op onze e-mails: gebruik de knop in onze uitnodiging."),
        ("en", "You have not said yes to our emails yet: use the button in our invitation email."),
    ],
)
def test_the_preference_centre_and_data_page_of_an_invited_person_say_invited(client, invited, locale, said):
    url = f"/preferences/{make_token(invited[locale], Purpose.PREFERENCES)}/"
    assert said in client.get(url).content.decode()
    dossier = f"/dossier/{make_token(invited[locale], Purpose.DOSSIER)}/"
    data = _text(client.post(dossier, {"action": "show"}).content.decode())
    meaning = {
        "nl": "We hebben u uitgenodigd om onze e-mails te ontvangen en u hebt nog geen ja gezegd",
        "en": "We invited you to receive our emails and you have not said yes yet",
    }
    assert meaning[locale] in data
    assert {"nl": "In ons bestand sinds", "en": "In our records since"}[locale] in data


def test_a_person_who_signed_up_after_an_invitation_confirms_a_subscription(client, invited, topics):
    contact = services.contact_subscribe(
        email="nl@example.com",
        locale="nl",
        frequency="monthly",
        topics=[topics[0]],
        evidence=services.Evidence(source="signup-form"),
    )
    page = client.get(f"/confirm/{make_token(contact, Purpose.CONFIRM)}/", HTTP_ACCEPT_LANGUAGE="nl")
    assert "<h1>Bevestig uw aanmelding</h1>" in page.content.decode()
    centre = client.get(f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/").content.decode()
    assert "gebruik de knop in onze bevestigingsmail" in centre
