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

# An address: a local part (letters of any script, RFC 6531, or "quoted, even with spaces"), "@", one or
# more labels with a dot (any script, or punycode) and a top-level domain of letters or punycode (xn--),
# so "user:**@127.0.0.1" in a broker URL stays.
# Linear time on any input: every repetition is possessive (`++`, no backtracking into it), an unquoted
# local part starts only where a run of its characters starts (the lookbehind), a label takes its dot
# only when another label follows (so "bob@example.com." still ends at "com"), and the quoted part has
# two alternatives that no character can match both of.
_LOCAL_CHAR = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(
    rf'(?:(?<!{_LOCAL_CHAR}){_LOCAL_CHAR}++|"(?:[^"\\\r\n]|\\.){{1,64}}+")'
    r"@(?:[\w-]++\.(?=[\w-]))++(?:xn--[A-Za-z0-9-]++|[^\W\d_]{2,}+)(?![\w-])"
)
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
