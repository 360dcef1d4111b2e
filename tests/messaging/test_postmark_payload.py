"""Postmark: the batch payload built per shape is, message for message, the JSON anymail builds."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.mail import get_connection

from messaging.esp.postmark import PostmarkBatchApi, _DerivedPayload
from messaging.models import Delivery
from messaging.rendering import RenderedGroup, placeholder
from messaging.services import _Mail, _message
from preferences.models import Contact

NAME, UNSUBSCRIBE = placeholder("first_name"), placeholder("unsubscribe_url")
GROUP = RenderedGroup(
    subject=f"News for {NAME}",
    text=f"Dear {NAME},\nLeave: {UNSUBSCRIBE}\n",
    html=f'<p>Dear {NAME}, "ü" &amp; more</p><a href="{UNSUBSCRIBE}">x</a>',
)
PEOPLE = [
    (uuid.uuid4(), name, email)
    for name, email in [("Anna", "anna@example.com"), ("Zoë <b>", "zoe@example.nl"), ('O"B=\n', "o.b+x@example.co.uk")]
]


def messages(*, marketing: bool, kind: str = "nurture") -> list:
    """The pipe's messages for PEOPLE; each call makes new message objects with the same content."""
    made = []
    for delivery_id, name, email in PEOPLE:
        delivery = Delivery(id=delivery_id, contact=Contact(email=email), kind=kind, marketing=marketing)
        values = {"first_name": name, "unsubscribe_url": f"https://example.com/u/{delivery_id.hex}/"}
        made.append(_message(_Mail(delivery=delivery, values=values), GROUP.merge(values)))
    return made


@pytest.fixture
def backend(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_MESSAGE_STREAM": "broadcast",
        "POSTMARK_SEND_DEFAULTS": {"metadata": {"app": "cadence"}, "track_opens": True},
    }
    return get_connection()


@pytest.mark.parametrize("marketing", [True, False])
def test_each_messages_json_is_anymails_own(backend, marketing):
    api = PostmarkBatchApi()
    ours = [api.prepare(backend, message) for message in messages(marketing=marketing)]
    anymails = [
        backend.build_message_payload(message, backend.send_defaults).serialize_data()
        for message in messages(marketing=marketing)
    ]

    assert [isinstance(entry.payload, _DerivedPayload) for entry in ours] == [False, True, True]  # type: ignore[union-attr]
    for entry, theirs in zip(ours, anymails, strict=True):
        assert entry.json == theirs  # type: ignore[union-attr]
        mine = json.loads(entry.json)  # type: ignore[union-attr]
        assert mine["MessageStream"] == "broadcast"
        assert mine["Metadata"]["app"] == "cadence"
        assert any(h["Name"] == "List-Unsubscribe" for h in mine.get("Headers", [])) == marketing


def test_the_same_message_gives_the_same_bytes(backend):
    api = PostmarkBatchApi()
    [first, *rest] = messages(marketing=True)
    api.prepare(backend, first)  # the shape's prototype
    for message in rest:
        entry = api.prepare(backend, message)
        assert entry.json == backend.build_message_payload(message, backend.send_defaults).serialize_data()  # type: ignore[union-attr]


def test_a_message_outside_the_pipes_shapes_is_built_by_anymail(backend):
    api = PostmarkBatchApi()
    plain = messages(marketing=True)
    for message in plain:
        del message.batch_shape
    entries = [api.prepare(backend, message) for message in plain]

    assert not any(isinstance(entry.payload, _DerivedPayload) for entry in entries)  # type: ignore[union-attr]
