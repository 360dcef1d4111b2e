from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings

from cadence.batch import batch_send
from preferences.tokens import Purpose, contact_url
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The project's LOGGING with LOG_JSON=true, its console handler writing to a buffer."""
    stream = io.StringIO()
    config: dict[str, Any] = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"]["formatter"] = "json"
    config["handlers"]["console"]["stream"] = stream
    config["root"]["level"] = "INFO"
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(settings.LOGGING)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_send_logs_json_with_uuids_and_never_the_address(json_log, monkeypatch):
    ok, refused = ContactFactory(email="anna.jansen@bank.example.nl"), ContactFactory(email="piet+x@example.com")
    first = DeliveryFactory.create(contact=ok, kind="welcome")
    second = DeliveryFactory.create(contact=refused, kind="welcome")
    batch_send(delivery_ids=[first.id])

    def refuse(self, messages, *args, **kwargs):
        raise AnymailRecipientsRefused(f"The ESP refused {messages[0].to[0]} (invalid)")

    monkeypatch.setattr("anymail.backends.test.EmailBackend.send_messages", refuse)
    batch_send(delivery_ids=[second.id])

    output = json_log.getvalue()
    assert "anna.jansen" not in output and "bank.example.nl" not in output
    assert "piet+x@example.com" not in output and "@example.com" not in output
    lines = records(json_log)
    assert not any(line["message"] == "delivery sent" for line in lines)  # sent mail: one line per batch
    sent = next(line for line in lines if line["message"] == "batch sent")
    assert (sent["sent"], sent["failed"], sent["cancelled"], sent["requeued"]) == (1, 0, 0, 0)
    failed = next(line for line in lines if line.get("delivery_id") == str(second.id))
    assert failed["levelname"] == "WARNING" and failed["contact_id"] == str(refused.id)
    assert "[email]" in failed["error"]


def test_addresses_and_link_tokens_are_redacted_wherever_they_appear(json_log):
    contact = ContactFactory(email="geheim@example.org")
    link = contact_url(contact, Purpose.UNSUBSCRIBE)
    logger = logging.getLogger("cadence.test")

    logger.info("mail for %s with %s", contact.email, link, extra={"to": [contact.email], "url": link})
    try:
        raise ValueError(f"cannot send to {contact.email}")
    except ValueError:
        logger.exception("send failed; Authorization: Bearer abc.def.ghi")

    output = json_log.getvalue()
    assert "geheim" not in output
    assert link.rstrip("/").rsplit("/", 1)[-1] not in output
    assert "abc.def.ghi" not in output
    first, second = records(json_log)
    assert first["message"] == "mail for [email] with http://127.0.0.1:8000/unsubscribe/[token]/"
    assert first["to"] == ["[email]"]
    assert "ValueError: cannot send to [email]" in second["exc_info"]
