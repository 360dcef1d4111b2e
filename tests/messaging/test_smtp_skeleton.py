"""SMTP: a person's bytes from the group's MIME skeleton parse exactly as Django's own message does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage as ParsedMessage
from email.parser import BytesParser
from typing import Any

import pytest
import time_machine
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bench.smtp_sink import SmtpSink
from cadence.batch import batch_send
from cadence.models import Schedule
from messaging.esp import mime
from messaging.models import Delivery
from messaging.rendering import RenderedGroup, placeholder, render_group, split_context
from messaging.services import TransientSendError
from tests.factories import ContactFactory, ContentItemFactory

FROM = '"Example Bank" <hello@example.com>'
NAME = placeholder("first_name")
UNSUBSCRIBE = placeholder("unsubscribe_url")


def group(subject: str = f"News for {NAME}") -> RenderedGroup:
    return RenderedGroup(
        subject=subject,
        text=f"Dear {NAME},\n\nYour digest.\n. a line starting with a dot\nLeave: {UNSUBSCRIBE}\n",
        html=f'<p style="color: #123">Dear {NAME},</p>\n<p><a href="{UNSUBSCRIBE}">Leave</a> ☕</p>\n',
    )


def django_bytes(rendered: RenderedGroup, values: dict[str, str], *, to: str, marketing: bool, msgid: str) -> bytes:
    """The message as the project sent it before the skeleton: Django builds it whole."""
    merged = rendered.merge(values)
    headers = {"Message-ID": msgid}
    if marketing:
        headers = {
            "List-Unsubscribe": f"<{values['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            **headers,
        }
    message = EmailMultiAlternatives(merged.subject, merged.text, FROM, [to], headers=headers)
    message.attach_alternative(merged.html, "text/html")
    return message.message().as_bytes(linesep="\r\n")  # type: ignore[call-arg]


def skeleton_bytes(
    rendered: RenderedGroup, values: dict[str, str], *, to: str, marketing: bool, msgid: str
) -> bytes | None:
    skeleton = mime.MimeSkeleton.build(rendered, from_email=FROM, marketing=marketing)
    assert skeleton is not None
    mail = mime.PersonalMail(
        skeleton=skeleton,
        values=values,
        to=to,
        from_email=FROM,
        list_unsubscribe=f"<{values.get('unsubscribe_url', '')}>",
        fallback=lambda: pytest.fail("no fallback here"),
        extra_headers={"Message-ID": msgid},
    )
    return skeleton.render(mail)


def parsed(data: bytes) -> dict[str, Any]:
    """What a mail client sees: every header decoded, the MIME structure and each part's decoded body."""
    message: ParsedMessage = BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[assignment]
    assert not message.defects

    def part(node: ParsedMessage) -> dict[str, Any]:
        params = {k: v for k, v in node["Content-Type"].params.items() if k != "boundary"}
        headers = sorted((name.lower(), str(value)) for name, value in node.items() if name.lower() != "content-type")
        children = [part(child) for child in node.iter_parts()]  # type: ignore[arg-type]
        body = None if children else node.get_content()
        return {"type": node.get_content_type(), "params": params, "headers": headers, "parts": children, "body": body}

    return part(message)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with time_machine.travel("2026-12-05 10:00:00 +0000", tick=False):
        yield


VALUES = {"first_name": "Zoë", "unsubscribe_url": "https://example.com/unsubscribe/abc:def/"}


@pytest.mark.parametrize("marketing", [True, False])
@pytest.mark.parametrize("values", [VALUES, {"first_name": "Anna", "unsubscribe_url": "https://e.com/u/x/"}])
def test_the_bytes_parse_as_djangos_message_headers_structure_and_bodies(marketing, values):
    rendered = group()
    theirs = django_bytes(rendered, values, to="zoe@example.com", marketing=marketing, msgid="<1.2@host>")
    ours = skeleton_bytes(rendered, values, to="zoe@example.com", marketing=marketing, msgid="<1.2@host>")

    assert ours is not None
    assert parsed(ours) == parsed(theirs)
    names = [h for h, _ in parsed(ours)["headers"]]
    assert {"subject", "from", "to", "date", "message-id", "mime-version"} <= set(names)
    assert ("list-unsubscribe" in names) == marketing
    assert ("list-unsubscribe-post" in names) == marketing


def test_a_real_rendering_parses_as_djangos_message(contact_factory=ContactFactory):
    shared, values = split_context(
        {"first_name": "José", "unsubscribe_url": "https://e.com/u/1/", "preferences_url": "https://e.com/p/1/",
         "topics": ["Sparen"], "frequency_label": "maandelijks", "is_marketing": True, "items": []}
    )  # fmt: skip
    rendered = render_group("nurture", shared, "nl")
    theirs = django_bytes(rendered, values, to="j@example.com", marketing=True, msgid="<9@h>")
    ours = skeleton_bytes(rendered, values, to="j@example.com", marketing=True, msgid="<9@h>")

    assert ours is not None
    assert parsed(ours) == parsed(theirs)


def test_a_line_break_in_a_personal_subject_is_refused_as_django_refuses_it():
    with pytest.raises(BadHeaderError):
        django_bytes(
            group(), {**VALUES, "first_name": "Eve\r\nBcc: x@evil"}, to="e@e.com", marketing=True, msgid="<1@h>"
        )
    with pytest.raises(BadHeaderError):
        skeleton_bytes(
            group(), {**VALUES, "first_name": "Eve\r\nBcc: x@evil"}, to="e@e.com", marketing=True, msgid="<1@h>"
        )


def test_a_line_that_would_pass_the_smtp_limit_goes_the_django_way():
    values = {**VALUES, "first_name": "x" * 990}

    assert skeleton_bytes(group(subject="Hello"), values, to="z@e.com", marketing=True, msgid="<1@h>") is None


typed = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(["\r", "\n", "\r\n", "=", "--", "=_", "==", "=?utf-8?q?x?=", "\t", ".", "Bcc: a@b", "é"]),
    ),
    max_size=15,
).map("".join)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=typed, boundary_like=st.booleans(), personal_subject=st.booleans())
def test_nothing_a_person_types_breaks_a_header_or_a_boundary(name: str, boundary_like: bool, personal_subject: bool):
    rendered = group() if personal_subject else group(subject="Your news")
    skeleton = mime.MimeSkeleton.build(rendered, from_email=FROM, marketing=True)
    assert skeleton is not None
    if boundary_like:
        name = f"{name}\r\n--{skeleton.boundary.decode()}\r\nContent-Type: text/html\r\n\r\n<script>"
    values = {**VALUES, "first_name": name}
    try:
        theirs = django_bytes(rendered, values, to="p@example.com", marketing=True, msgid="<1@h>")
    except BadHeaderError:
        with pytest.raises(BadHeaderError):
            skeleton_bytes(rendered, values, to="p@example.com", marketing=True, msgid="<1@h>")
        return
    mail = mime.PersonalMail(
        skeleton=skeleton, values=values, to="p@example.com", from_email=FROM,
        list_unsubscribe=f"<{VALUES['unsubscribe_url']}>", fallback=lambda: pytest.fail("unused"),
        extra_headers={"Message-ID": "<1@h>"},
    )  # fmt: skip
    ours = skeleton.render(mail)
    if ours is None:  # Django's own build takes it: the boundary appeared
        assert boundary_like
        return
    mine, django = parsed(ours), parsed(theirs)
    assert mine == django
    assert [p["type"] for p in mine["parts"]] == ["text/plain", "text/html"]
    assert sorted(h for h, _ in mine["headers"]) == sorted(
        ["subject", "from", "to", "date", "message-id", "mime-version", "list-unsubscribe", "list-unsubscribe-post"]
    )


# ------------------------------------------------------------------- through the pipe and a relay


@pytest.fixture
def relay(settings) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        sink.keep_messages = True
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
        settings.ESP_MAX_SEND_RATE = 0
        yield sink


@pytest.mark.django_db
def test_a_batch_over_smtp_arrives_as_django_would_have_sent_it(relay, topics):
    ContentItemFactory(topic=topics[0], title="Rates go up")
    contacts = [
        ContactFactory(first_name=name, topics=[topics[0]], locale="nl") for name in ("Zoë", "Jan=Piet", "Ann\nMarie")
    ]
    now = timezone.now()
    Schedule.objects.bulk_create(
        Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9, slot=1)
        for c in contacts
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(contact=c, kind="nurture", template="nurture", idempotency_key=f"n:{c.id}", marketing=True)
        for c in contacts
    )

    result = batch_send(delivery_ids=[d.id for d in deliveries])

    assert len(result.sent) == 3
    assert len(relay.messages) == 3
    by_address = {recipients[0]: data for recipients, data in relay.messages}
    for contact in contacts:
        message = BytesParser(policy=policy.default).parsebytes(by_address[contact.email])
        delivery = Delivery.objects.get(contact=contact)
        assert message["To"] == contact.email
        assert message["Message-ID"] == delivery.esp_message_id
        assert message["List-Unsubscribe"].startswith("<http")
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert contact.first_name.replace("\n", " ").split()[0] in text
        assert "mrg" not in message.as_string()


@pytest.mark.django_db
def test_a_refused_and_a_deferred_recipient_are_classified_as_smtplib_reports_them(relay, topics):
    contacts = [
        ContactFactory(email=email, topics=[topics[0]])
        for email in ("a@example.com", "b+rejected@example.com", "c+deferred@example.com", "d@example.com")
    ]
    now = timezone.now()
    Schedule.objects.bulk_create(
        Schedule(contact=c, next_due_at=now, last_sent_at=now - timedelta(days=40), welcome_step=9, slot=1)
        for c in contacts
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(contact=c, kind="nurture", template="nurture", idempotency_key=f"n:{c.id}", marketing=True)
        for c in contacts
    )

    with pytest.raises(TransientSendError):
        batch_send(delivery_ids=[d.id for d in deliveries])

    status = {d.contact.email: (d.status, d.error) for d in Delivery.objects.select_related("contact")}
    assert status["a@example.com"][0] == status["d@example.com"][0] == Delivery.Status.SENT
    assert status["b+rejected@example.com"][0] == Delivery.Status.FAILED
    assert status["b+rejected@example.com"][1].startswith("recipient refused: 550")
    assert status["c+deferred@example.com"][0] == Delivery.Status.QUEUED
    assert status["c+deferred@example.com"][1].startswith("transient: recipient deferred: 451")
    assert sorted(r[0] for r, _ in relay.messages) == ["a@example.com", "d@example.com"]
