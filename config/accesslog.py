"""Access log lines that never hold a whole link token.

Links in mails carry a signed token in their path (/confirm/<token>/, /preferences/<token>/,
/unsubscribe/<token>/, /link/...) or in a `token=` query: whoever reads the access log must not be able to
replay them. `shorten_tokens` keeps the first characters, enough to match a line to a support request.
Used by gunicorn's access log (config/gunicorn_logging.py) and by a filter on runserver's `django.server`
logger.
"""

from __future__ import annotations

import logging
import re

KEEP = 6
ELLIPSIS = "…"

# The path's first segment: at the start, after a space or quote, or after a URL's host.
_START = r"(?:^|(?<=[\s\"'])|(?<=://)[^/\s\"]+)"
_TOKEN_PATH = re.compile(rf"({_START}/+(?:confirm|preferences|unsubscribe)/)([^/\s?#\"]+)")
_LINK_PATH = re.compile(rf"({_START}/+link/)([^\s?#\"]+)")
_TOKEN_QUERY = re.compile(r"((?:^|[?&;])[A-Za-z_]*token=)([^&;\s#\"]+)", re.IGNORECASE)
# What a text must hold for one of the patterns to match: most atoms of most lines hold none, and
# looking for these costs a tenth of the three substitutions (every atom of every access log line).
_MARKERS = ("/confirm/", "/preferences/", "/unsubscribe/", "/link/", "token=")


def _short(value: str) -> str:
    return value if len(value) <= KEEP else value[:KEEP] + ELLIPSIS


def shorten_tokens(text: str) -> str:
    """Return `text` with each link token cut to its first KEEP characters and "…"."""
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    for pattern in (_TOKEN_PATH, _LINK_PATH, _TOKEN_QUERY):
        text = pattern.sub(lambda match: match.group(1) + _short(match.group(2)), text)
    return text


class ShortenTokensFilter(logging.Filter):
    """Shorten the tokens of a request line logged by runserver (`django.server`); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = shorten_tokens(message), ()
        return True
