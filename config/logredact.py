"""A logging filter that keeps email addresses and secrets out of every log line.

It rewrites the record itself (message, arguments, extra fields, traceback text), so whatever
formatter or handler comes after it, plain or JSON, only ever sees the redacted text.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

EMAIL_MASK = "[email]"
TOKEN_MASK = "[token]"

# An address ends in a top-level domain of letters, so "user:**@127.0.0.1" in a broker URL stays.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
# Contact link tokens (`<22 chars>.<timestamp>.<signature>`) wherever they appear, and secrets
# after a key that names them (token=..., Authorization: Bearer ..., api_key: ...).
_LINK_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
# A token already cut short for the access log (config/accesslog.py: "AbCdEf…") is left as it is.
_LINK_PATH = re.compile(r"(/(?:confirm|preferences|unsubscribe)/)(?![^/\s\"'?#]{1,6}…)[^/\s\"'?#]+")
_NAMED_SECRET = re.compile(
    r"(?i)\b(token|secret|password|api[_-]?key|authorization|bearer)(\s*[=:]\s*|\s+)(bearer\s+)?[^\s,;&\"']+"
)
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Return `text` with email addresses and tokens masked."""
    text = _EMAIL.sub(EMAIL_MASK, text)
    text = _LINK_PATH.sub(rf"\1{TOKEN_MASK}", text)
    text = _LINK_TOKEN.sub(TOKEN_MASK, text)
    return _NAMED_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{TOKEN_MASK}", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    return value


class RedactFilter(logging.Filter):
    """Mask addresses and tokens in a record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), ()
        if record.exc_info:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRIBUTES:
                setattr(record, name, _redact_value(value))
        return True
