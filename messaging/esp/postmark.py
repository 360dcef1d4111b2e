"""Postmark's /email/batch: many distinct messages in one call, built by anymail's own payload code."""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
from anymail.backends.base_requests import AnymailRequestsBackend, RequestsPayload
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.exceptions import AnymailRequestsAPIError
from anymail.message import AnymailRecipientStatus, AnymailStatus
from anymail.signals import pre_send
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from messaging.esp.outcomes import PLAIN_ADDRESS, SendOutcome, _outcome_for_sent, _send_built, outcome_for_error

logger = logging.getLogger(__name__)


class BatchEndpointMissing(Exception):
    """The ESP answered its batch endpoint with 404 or 405: a compatible server that has none."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class BatchEntry:
    """One message built for a batch call: its part of the body, and what the call must share."""

    message: EmailMessage
    payload: RequestsPayload
    json: str  # this message's JSON object, as anymail serialised it
    key: tuple[str, ...]  # messages share a call only when their keys are equal (e.g. the server token)


class MessageBatchApi:
    """An ESP endpoint that takes many distinct messages in one call and answers for each.

    A subclass names the anymail backend it serves and its size setting, builds each message's part
    with that backend's own payload code (`prepare`), and maps the answer back to one `SendOutcome`
    per message (`post`). A server that answers the endpoint with 404/405 is sent one message per
    call from then on, for the rest of the process.
    """

    backend_class: type[AnymailRequestsBackend]
    endpoint: str  # joined to the backend's API URL
    size_setting: str  # settings name: messages per call, 0 turns batching off
    max_size: int  # the most the ESP takes in one call

    def __init__(self) -> None:
        self._missing: set[str] = set()  # endpoint URLs that answered 404/405
        self._lock = threading.Lock()

    def batch_size(self) -> int:
        return max(0, min(int(getattr(settings, self.size_setting, self.max_size)), self.max_size))

    def url(self, backend: AnymailRequestsBackend) -> str:
        return urljoin(backend.api_url, self.endpoint)

    def serves(self, backend: BaseEmailBackend) -> bool:
        return isinstance(backend, self.backend_class) and self.batch_size() > 0 and self.available(backend)

    def available(self, backend: AnymailRequestsBackend) -> bool:
        return self.url(backend) not in self._missing

    def mark_missing(self, backend: AnymailRequestsBackend, status: int) -> None:
        url = self.url(backend)
        with self._lock:
            if url in self._missing:
                return
            self._missing.add(url)
        logger.warning(
            "the ESP has no batch endpoint; sending one message per call from now on",
            extra={"url": url, "http_status": status},
        )

    def prepare(self, backend: AnymailRequestsBackend, message: EmailMessage) -> BatchEntry | SendOutcome:
        """Build the message's part of a call, or send it on its own and return its outcome."""
        raise NotImplementedError

    def single_payload(self, backend: AnymailRequestsBackend, entry: BatchEntry) -> RequestsPayload:
        """Return the entry's payload as anymail builds it for a call of its own."""
        if isinstance(entry.payload, RequestsPayload):
            return entry.payload
        return backend.build_message_payload(entry.message, backend.send_defaults)

    def release(self, backend: AnymailRequestsBackend) -> None:
        """Forget what was kept for the backend's calls (its lane is done with it)."""

    def post(self, backend: AnymailRequestsBackend, entries: list[BatchEntry]) -> list[SendOutcome]:
        """Make one call with these entries and return their outcomes in order."""
        raise NotImplementedError


class PostmarkBatchApi(MessageBatchApi):
    """Postmark's `POST /email/batch`: up to 500 distinct messages, one result per message.

    https://postmarkapp.com/developer/api/email-api#send-batch-emails
    """

    backend_class = PostmarkBackend
    endpoint = "email/batch"
    size_setting = "ESP_POSTMARK_BATCH_SIZE"
    max_size = 500

    def prepare(self, backend: AnymailRequestsBackend, message: EmailMessage) -> BatchEntry | SendOutcome:
        # The first steps of anymail's own send (AnymailBaseBackend._send), then PostmarkPayload.
        message.anymail_status = AnymailStatus()  # type: ignore[attr-defined]
        if not backend.run_pre_send(message) or not message.recipients():
            return _outcome_for_sent(message)  # cancelled by a pre_send receiver, or nobody to send to
        shape = _shape(message)
        with _prototypes_lock:  # lanes are threads, each with a backend of its own
            prototypes = _prototypes.setdefault(backend, {})
        prototype = prototypes.get(shape) if shape is not None else None
        if prototype is not None:
            return _from_prototype(prototype, message)
        payload = backend.build_message_payload(message, backend.send_defaults)
        if payload.get_api_endpoint() != "email":  # a stored template, merge_data, the bulk API
            return _send_built(backend, payload, message)
        entry = BatchEntry(message=message, payload=payload, json=payload.serialize_data(), key=(payload.server_token,))
        if shape is not None and _derivable(payload, message):
            prototypes[shape] = entry
        return entry

    def release(self, backend: AnymailRequestsBackend) -> None:
        # A prototype's payload refers to its backend: left in the weak dictionary, the backend (its
        # session, its last request body) would never be collected, one per lane and batch.
        with _prototypes_lock:
            _prototypes.pop(backend, None)

    def post(self, backend: AnymailRequestsBackend, entries: list[BatchEntry]) -> list[SendOutcome]:
        first = entries[0].payload
        headers = {**first.headers, "X-Postmark-Server-Token": first.server_token}  # type: ignore[attr-defined]
        body = ("[" + ",".join(entry.json for entry in entries) + "]").encode()
        assert backend.session is not None
        try:
            response = backend.session.post(self.url(backend), data=body, headers=headers, timeout=backend.timeout)
        except requests.RequestException as exc:
            return [SendOutcome("transient", error=f"connection: {type(exc).__name__}: {exc}"[:1000])] * len(entries)
        if response.status_code in (404, 405):
            raise BatchEndpointMissing(response.status_code)
        if not 200 <= response.status_code < 300:  # the whole call: 429 and 5xx transient, 422 failed
            error = AnymailRequestsAPIError(response=response, backend=backend)
            return [outcome_for_error(error)] * len(entries)
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if (
            not isinstance(answers, list)
            or len(answers) != len(entries)
            or not all(isinstance(a, dict) for a in answers)
        ):
            error_text = f"{response.status_code}: not one answer per message from Postmark's batch call"
            return [SendOutcome("failed", error=error_text)] * len(entries)
        return [self._outcome(backend, entry, answer, response) for entry, answer in zip(entries, answers, strict=True)]

    def _outcome(
        self, backend: AnymailRequestsBackend, entry: BatchEntry, answer: dict[str, Any], response: requests.Response
    ) -> SendOutcome:
        """One message's outcome from its element of the answer, read as anymail reads a single answer."""
        code = answer.get("ErrorCode", 0)
        text = str(answer.get("Message", ""))
        if code == 0 and answer.get("MessageID"):
            message_id = str(answer["MessageID"])
            state = "queued" if "delivery may be delayed" in text else "sent"
            inactive = set(PostmarkBackend._addr_specs_from_error_msg(text, POSTMARK_INACTIVE_PATTERN))
            recipients = {
                address.addr_spec: (
                    AnymailRecipientStatus(message_id=None, status="rejected")
                    if address.addr_spec.lower() in inactive
                    else AnymailRecipientStatus(message_id=message_id, status=state)
                )
                for address in entry.payload.to_emails + entry.payload.cc_and_bcc_emails  # type: ignore[attr-defined]
            }
            status: AnymailStatus = entry.message.anymail_status  # type: ignore[attr-defined]
            status.esp_response = response
            status.set_recipient_status(recipients)
            try:
                backend.run_post_send(entry.message)
            except Exception:  # the message is out; a failing receiver must not make it look unsent
                logger.exception("a post_send receiver failed")
            return _outcome_for_sent(entry.message)
        if code == 406 or (code == 300 and POSTMARK_RECIPIENT_ERROR.match(text)):
            return SendOutcome("failed", error=f"recipient refused: {code} {text.strip()}"[:1000])
        return SendOutcome("failed", error=f"Postmark error {code}: {text.strip()}"[:1000])


# ------------------------------------------------------------- one payload per shape, not per message
#
# anymail builds each message's payload from scratch, parsing the same sender and every address
# again: most of the Postmark path's CPU. Messages the pipe makes for one group (messaging.services,
# `_message`) differ only in their recipient, subject, bodies, header values and metadata values; the
# pipe marks them with `batch_shape`. The first message of a shape is built by anymail (its send
# defaults, esp_extra, message stream and tracking included) and the rest are that payload with
# their own values put in, as anymail would put them.

_prototypes_lock = threading.Lock()
_prototypes: weakref.WeakKeyDictionary[AnymailRequestsBackend, dict[Hashable, BatchEntry]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Recipient:
    addr_spec: str


class _DerivedPayload:
    """What the batch call reads from a payload: its recipients, token and headers."""

    def __init__(self, prototype: RequestsPayload, to: str) -> None:
        self.to_emails = [_Recipient(to)]
        self.cc_and_bcc_emails: list[_Recipient] = []
        self.server_token = prototype.server_token  # type: ignore[attr-defined]
        self.headers = prototype.headers


def _shape(message: EmailMessage) -> Hashable | None:
    """What a message shares with the others of its shape, or None when anymail must build it whole."""
    shape = getattr(message, "batch_shape", None)
    if shape is None or pre_send.has_listeners() or len(message.to) != 1 or not PLAIN_ADDRESS.fullmatch(message.to[0]):
        return None
    metadata = getattr(message, "metadata", None) or {}
    return (shape, message.from_email, tuple(message.extra_headers), tuple(metadata))


def _derivable(payload: RequestsPayload, message: EmailMessage) -> bool:
    """Whether anymail's payload holds the message's own values where a shape expects them, and only there."""
    data: dict[str, Any] = payload.data  # type: ignore[attr-defined]
    headers = [(h["Name"], h["Value"]) for h in data.get("Headers", [])]
    return (
        data.get("To") == message.to[0]
        and data.get("Subject") == message.subject
        and data.get("TextBody") == message.body
        and data.get("HtmlBody") == _html(message)
        and headers[-len(message.extra_headers) or len(headers) :] == list(message.extra_headers.items())
        and all(data.get("Metadata", {}).get(k) == v for k, v in (getattr(message, "metadata", None) or {}).items())
    )


def _html(message: EmailMessage) -> str | None:
    return next((str(c) for c, mimetype in getattr(message, "alternatives", []) if mimetype == "text/html"), None)


def _from_prototype(prototype: BatchEntry, message: EmailMessage) -> BatchEntry:
    data = dict(prototype.payload.data)  # type: ignore[attr-defined]
    data["To"] = message.to[0]
    data["Subject"] = message.subject
    data["TextBody"] = message.body
    html = _html(message)
    if html is not None:
        data["HtmlBody"] = html
    if message.extra_headers:
        data["Headers"] = [
            {"Name": h["Name"], "Value": message.extra_headers.get(h["Name"], h["Value"])} for h in data["Headers"]
        ]
    metadata = getattr(message, "metadata", None)
    if metadata:
        data["Metadata"] = {**data["Metadata"], **metadata}
    payload = _DerivedPayload(prototype.payload, message.to[0])
    return BatchEntry(message=message, payload=payload, json=json.dumps(data), key=prototype.key)  # type: ignore[arg-type]


# Postmark's texts about recipients, as anymail's Postmark backend reads them.
POSTMARK_INACTIVE_PATTERN = r"inactive addresses:\s*(.*)\.\s*Inactive recipients"


POSTMARK_RECIPIENT_ERROR = re.compile(r"^(Invalid|Error\s+parsing)\s+'(To|Cc|Bcc)'", re.IGNORECASE)


# The ESP endpoints that take many distinct messages per call, tried in order.
MESSAGE_BATCH_APIS: tuple[MessageBatchApi, ...] = (PostmarkBatchApi(),)


def _batch_api_for(backend: BaseEmailBackend) -> MessageBatchApi | None:
    return next((api for api in MESSAGE_BATCH_APIS if api.serves(backend)), None)
