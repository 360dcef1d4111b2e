"""SMTP: a group's message built once as MIME bytes, each person's copy made by substitution.

Django builds every message from scratch (`EmailMessage.message()`, then `as_bytes()`, which scans
the whole body for a boundary collision): about a millisecond of CPU per mail, most of the SMTP
path's cost. A `MimeSkeleton` is that same Django message built once per rendered group, with
tokens where each person's values go (the To, Subject, Date, Message-ID and List-Unsubscribe
headers, and the rendering's placeholders in the bodies), cut into literal pieces. A person's bytes
are the pieces joined with their values: raw in the text part, HTML-escaped in the HTML part, line
breaks as CRLF. The bodies stay 7bit/8bit (never quoted-printable or base64), so a value needs no
re-encoding of the part; each part's Content-Transfer-Encoding is chosen per person exactly as Django
chooses it (7bit when all ASCII). Header values go through Django's own checks and the email
package's folding, so a person's text can never add a header (a line break is refused, as Django
refuses it). The boundary holds a random part no person can know, and a value that contains it or
makes a line longer than SMTP allows makes that person's message the ordinary Django way instead.
"""

from __future__ import annotations

import html
import re
import secrets
import smtplib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.utils import formatdate, parseaddr
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.message import forbid_multi_line_headers, sanitize_address
from django.utils.module_loading import import_string

from messaging.esp.outcomes import PLAIN_ADDRESS
from messaging.rendering import PLACEHOLDER_PREFIX, RenderedGroup

# RFC 5322's limit for a line, without its CRLF; Django switches a part to quoted-printable above it.
LINE_LIMIT = 998

_NONCE = secrets.token_hex(8)
_HEADER_PREFIX = f"hdr{_NONCE}"
_HEADER_FIELDS = frozenset({"to", "subject_line", "date", "message_id", "unsubscribe", "cte_text", "cte_html"})
_TOKEN = re.compile(f"(?:{_HEADER_PREFIX}|{PLACEHOLDER_PREFIX})x([a-z_]+)x".encode())
_PLACEHOLDER = re.compile(f"{PLACEHOLDER_PREFIX}x([a-z_]+)x")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def _token(name: str) -> str:
    return f"{_HEADER_PREFIX}x{name}x"


@dataclass(frozen=True)
class _Piece:
    literal: bytes
    field: str  # "" after the last literal
    part: str  # "header", "text" or "html": how the field's value is written


class MimeSkeleton:
    """One group's message as literal pieces with a hole for each person's value."""

    def __init__(
        self,
        group: RenderedGroup,
        pieces: list[_Piece],
        *,
        boundary: bytes,
        ascii_parts: dict[str, bool],
        longest_line: int,
    ) -> None:
        self.group = group
        self.pieces = pieces
        self.boundary = boundary
        self.ascii_parts = ascii_parts
        self.part_fields = {part: sorted({p.field for p in pieces if p.part == part}) for part in ("text", "html")}
        self.fields = {piece.field for piece in pieces}
        # The longest line, tokens counted: values longer together than what is left get their lines checked.
        self.room = LINE_LIMIT - longest_line
        self.personal_subject = _PLACEHOLDER.search(group.subject) is not None
        self._subject_line: bytes | None = None

    @classmethod
    def build(cls, group: RenderedGroup, *, from_email: str, marketing: bool) -> MimeSkeleton | None:
        """Return the group's skeleton, or None when a part is not 7bit/8bit (a line over the limit)."""
        headers = {"Date": _token("date"), "Message-ID": _token("message_id")}
        if marketing:
            headers = {
                "List-Unsubscribe": _token("unsubscribe"),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                **headers,
            }
        message = EmailMultiAlternatives(
            subject=_token("subject"), body=group.text, from_email=from_email, to=[_token("to")], headers=headers
        )
        message.attach_alternative(group.html, "text/html")
        mime = message.message()
        ascii_parts = {}
        for part, name in zip(mime.get_payload(), ("text", "html"), strict=True):
            encoding = str(part["Content-Transfer-Encoding"]).lower()
            if encoding not in ("7bit", "8bit"):
                return None  # quoted-printable: substitution would need the part encoded again
            ascii_parts[name] = encoding == "7bit"
            part.replace_header("Content-Transfer-Encoding", _token(f"cte_{name}"))
        # A boundary of our own choosing, with a random part nobody outside this process knows.
        boundary = f"=_{_NONCE}{secrets.token_hex(12)}"
        mime.set_boundary(boundary)
        raw = mime.as_bytes(linesep="\r\n")  # type: ignore[call-arg]  # Django's SafeMIME* take it
        raw = raw.replace(f"Subject: {_token('subject')}\r\n".encode(), _token("subject_line").encode(), 1)
        delimiter = f"\r\n--{boundary}\r\n".encode()
        first = raw.index(delimiter)
        second = raw.index(delimiter, first + 1)
        pieces: list[_Piece] = []
        position = 0
        for found in _TOKEN.finditer(raw):
            name = found.group(1).decode()
            if found.group(0).startswith(_HEADER_PREFIX.encode()):
                part = "header"
            elif first < found.start() < second:
                part = "text"
            elif second < found.start():
                part = "html"
            else:
                return None  # a rendering placeholder in a header: only the subject has one, and it is whole
            if part == "header" and name not in _HEADER_FIELDS:
                return None
            pieces.append(_Piece(raw[position : found.start()], name, part))
            position = found.end()
        pieces.append(_Piece(raw[position:], "", ""))
        longest = max(len(line) for line in raw.split(b"\r\n"))
        return cls(group, pieces, boundary=boundary.encode(), ascii_parts=ascii_parts, longest_line=longest)

    def render(self, mail: PersonalMail) -> bytes | None:
        """Return the person's message bytes, or None when only Django's own build may make them.

        A line break in a header value raises Django's BadHeaderError, as Django's build would.
        """
        values = mail.values
        encoded: dict[tuple[str, str], bytes] = {}
        total = 0
        for part in ("text", "html"):
            for name in self.part_fields[part]:
                value = values.get(name, "")
                if part == "html":
                    value = html.escape(value)
                data = _NEWLINES.sub("\r\n", value).encode("utf-8", "surrogateescape")
                if self.boundary in data:
                    return None
                total += len(data)
                encoded[(part, name)] = data
        header_values = {
            "to": _address(mail.to).encode(),
            "subject_line": self._subject(values),
            "date": _date().encode(),
            "message_id": _header_value("Message-ID", mail.message_id).encode(),
            "cte_text": self._cte("text", encoded),
            "cte_html": self._cte("html", encoded),
        }
        if "unsubscribe" in self.fields:
            header_values["unsubscribe"] = _header_value("List-Unsubscribe", mail.list_unsubscribe).encode()
        out = []
        for piece in self.pieces:
            out.append(piece.literal)
            if piece.part == "header":
                out.append(header_values[piece.field])
            elif piece.part:
                out.append(encoded[(piece.part, piece.field)])
        data = b"".join(out)
        if total > self.room and any(len(line) > LINE_LIMIT for line in data.split(b"\r\n")):
            return None  # Django would make that part quoted-printable
        return data

    def _cte(self, part: str, encoded: dict[tuple[str, str], bytes]) -> bytes:
        plain = self.ascii_parts[part] and all(v.isascii() for (p, _), v in encoded.items() if p == part)
        return b"7bit" if plain else b"8bit"

    def _subject(self, values: Mapping[str, str]) -> bytes:
        """The Subject line as Django writes it (refused with a line break, encoded, folded)."""
        if self._subject_line is not None:
            return self._subject_line
        subject = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), self.group.subject)
        line = _header_line("Subject", subject)
        if not self.personal_subject:
            self._subject_line = line
        return line


_SMTP_POLICY = policy.compat32.clone(linesep="\r\n")


def _header_line(name: str, value: str) -> bytes:
    """Return `Name: value` CRLF as Django's message and the email package write it."""
    name, value = forbid_multi_line_headers(name, value, settings.DEFAULT_CHARSET)
    return _SMTP_POLICY.fold_binary(name, value)


def _header_value(name: str, value: str) -> str:
    """Return the header's value as Django sets it; a line break in it raises BadHeaderError."""
    return forbid_multi_line_headers(name, value, settings.DEFAULT_CHARSET)[1]


def _address(address: str) -> str:
    """Return the To header's value for one address, as Django writes it."""
    if PLAIN_ADDRESS.fullmatch(address) and len(address) < 900:
        return address
    return _header_value("To", address)


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    """The Date header Django sets, made once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, localtime=settings.EMAIL_USE_LOCALTIME))
    return _date_cache[1]


@dataclass
class PersonalMail:
    """One person's message from a group's skeleton; `fallback()` makes it the ordinary Django way."""

    skeleton: MimeSkeleton
    values: Mapping[str, str]
    to: str
    from_email: str
    list_unsubscribe: str  # the List-Unsubscribe value, "<https://…>"; unused when the group is not marketing
    fallback: Callable[[], EmailMessage]
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return self.extra_headers.get("Message-ID", "")


def send_personal(connection: Any, mail: PersonalMail) -> None:
    """Send the person's message over the lane's open SMTP connection, as Django's backend sends one.

    Errors are raised as Django's backend raises them; a message the skeleton cannot make goes the Django way.
    """
    data = mail.skeleton.render(mail) if getattr(connection, "connection", None) is not None else None
    if data is None:
        message = mail.fallback()
        message.extra_headers.update(mail.extra_headers)
        connection.send_messages([message])
        return
    sender, recipient = envelope_sender(mail.from_email), envelope_recipient(mail.to)
    sender_spec = _addr_spec(sender)
    if sender_spec is not None and PLAIN_ADDRESS.fullmatch(recipient):
        _sendmail_one(connection.connection, sender_spec, recipient, data)
    else:
        connection.connection.sendmail(sender, [recipient], data)


def _sendmail_one(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """smtplib's `sendmail` for one plain (ASCII) recipient, without parsing both addresses again per mail.

    The same commands, answers and exceptions: MAIL FROM (with SIZE where offered), RCPT TO, DATA.
    """
    smtp.ehlo_or_helo_if_needed()
    size = f" size={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    smtp.putcmd("mail", f"FROM:<{sender}>{size}")
    code, answer = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    smtp.putcmd("rcpt", f"TO:<{recipient}>")
    code, answer = smtp.getreply()
    if code not in (250, 251):
        _abandon(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, answer)})
    code, answer = smtp.data(data)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, answer)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """End the mail transaction as smtplib does: the server closing (421) closes, anything else resets."""
    if code == 421:
        smtp.close()
    else:
        smtp._rset()  # type: ignore[attr-defined]


@lru_cache(maxsize=8)
def _addr_spec(sender: str) -> str | None:
    """The sender's bare address as smtplib's quoteaddr finds it, when it is a plain one; parsed once."""
    _name, address = parseaddr(sender)
    return address if PLAIN_ADDRESS.fullmatch(address) else None


@lru_cache(maxsize=8)
def envelope_sender(from_email: str) -> str:
    """Return MAIL FROM as Django's SMTP backend gives it, parsed once per sender."""
    return sanitize_address(from_email, settings.DEFAULT_CHARSET)


def envelope_recipient(address: str) -> str:
    """Return RCPT TO as Django's SMTP backend gives it (a plain address needs no parsing)."""
    if PLAIN_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, settings.DEFAULT_CHARSET)


def smtp_configured() -> bool:
    """Whether EMAIL_BACKEND is Django's SMTP backend (or one built on it): the skeleton's path."""
    from django.core.mail.backends.smtp import EmailBackend

    backend = import_string(settings.EMAIL_BACKEND)
    return isinstance(backend, type) and issubclass(backend, EmailBackend)


# Skeletons kept per process, by group rendering (itself kept by messaging.rendering), sender and kind.
SKELETON_CACHE_SIZE = 256
_skeletons: OrderedDict[tuple[int, str, bool], tuple[RenderedGroup, MimeSkeleton | None]] = OrderedDict()
_skeletons_lock = threading.Lock()


def skeleton_for(group: RenderedGroup, *, from_email: str, marketing: bool) -> MimeSkeleton | None:
    """Return the group's skeleton, built once per process (None: the group goes the Django way)."""
    key = (id(group), from_email, marketing)
    with _skeletons_lock:
        known = _skeletons.get(key)
        if known is not None and known[0] is group:
            _skeletons.move_to_end(key)
            return known[1]
    skeleton = MimeSkeleton.build(group, from_email=from_email, marketing=marketing)
    with _skeletons_lock:
        _skeletons[key] = (group, skeleton)
        while len(_skeletons) > SKELETON_CACHE_SIZE:
            _skeletons.popitem(last=False)
    return skeleton
